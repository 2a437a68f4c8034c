#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts for the hardening role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hardening_info
short_description: Look at a host for the hardening role
description:
  - Reports who logged in to run Ansible and from where (for the lockout guard and the operator's
    fail2ban exemption), the algorithms this OpenSSH supports, which host keys exist, which packages
    are missing or removable, service states, C(/etc/login.defs) values, file modes, whether an AIDE
    database exists, whether the host is a container, whether apt has package lists and whether root may manage nftables.
  - The login user's C(authorized_keys) are read without following links in their home.
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  packages:
    description: Packages the role installs; RV(missing_packages) lists those not installed.
    type: list
    elements: str
    default: []
  removable_packages:
    description: Packages the role removes; RV(removable_installed) lists those installed.
    type: list
    elements: str
    default: []
  services:
    description: Services whose enabled and active states to report.
    type: list
    elements: str
    default: []
  login_defs_keys:
    description: Keys of C(/etc/login.defs) whose values to report.
    type: list
    elements: str
    default: []
  paths:
    description: Paths whose permission bits to report (missing ones are left out).
    type: list
    elements: path
    default: []
  managed_keys_group:
    description:
      - Group whose keys sshd reads only from the root-owned C(/etc/ssh/authorized_keys/<user>); when the
        login user is a member, its keys are counted there instead of in its home. Empty for none.
    type: str
    default: ""
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at the host
  gpubox.workstation.hardening_info:
    packages: [fail2ban, nftables]
    removable_packages: [telnet]
    services: [ssh, auditd]
    login_defs_keys: [PASS_MAX_DAYS]
    paths: [/etc/crontab]
  register: hardening_probe
"""

RETURN = r"""
container:
  description: The container technology, empty on a machine or VM.
  returned: always
  type: str
login_user:
  description: The account this run logged in with, its groups and how many authorized keys it has.
  returned: always
  type: dict
  contains:
    name: {description: Login name., type: str, returned: always}
    groups: {description: Its groups, sorted., type: list, elements: str, returned: always}
    authorized_keys: {description: Key lines sshd would read for it (see O(managed_keys_group))., type: int, returned: always}
controller_address:
  description: The address this Ansible run connects from, empty when unknown.
  returned: always
  type: str
algorithms:
  description: What C(ssh -Q) lists for V(kex), V(cipher), V(mac) and V(key).
  returned: always
  type: dict
host_keys:
  description: The C(/etc/ssh/ssh_host_*_key) files.
  returned: always
  type: list
  elements: str
missing_packages:
  description: O(packages) that are not installed.
  returned: always
  type: list
  elements: str
removable_installed:
  description: O(removable_packages) that are installed.
  returned: always
  type: list
  elements: str
services:
  description: For each of O(services), its C(enabled) and C(active) state as systemctl says.
  returned: always
  type: dict
login_defs:
  description: The values of O(login_defs_keys) found in C(/etc/login.defs).
  returned: always
  type: dict
aide_database:
  description: Whether AIDE has a database or is building one.
  returned: always
  type: bool
modes:
  description: Path -> octal permission bits, for each of O(paths) that exists.
  returned: always
  type: dict
apt_lists:
  description: How many apt package lists exist (0 on a host that never ran apt-get update).
  returned: always
  type: int
firewall_problem:
  description:
    - Why root cannot manage nftables here, in the kernel's words (for example C(Operation not permitted) in a
      container without CAP_NET_ADMIN); empty when it can. Asked over netlink as nft does, before nft is installed.
  returned: always
  type: str
"""

import glob
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.host import container_type, controller_address, login_name, run
from ansible_collections.gpubox.workstation.plugins.module_utils.packages import apt_list_count, installed
from ansible_collections.gpubox.workstation.plugins.module_utils.authorized_keys import groups_of, login_key_blobs
from ansible_collections.gpubox.workstation.plugins.module_utils.netfilter import nftables_problem


# Root-owned key files of the data scientists (ssh_access role, sshd Match Group).
def login_user(managed_keys_group: str) -> dict:
    name = login_name()
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"name": name, "groups": [], "authorized_keys": 0}
    return {"name": name, "groups": sorted(groups_of(entry)), "authorized_keys": len(login_key_blobs(entry, managed_keys_group))}


def login_defs(keys: list[str]) -> dict[str, str]:
    values = {}
    try:
        with open("/etc/login.defs") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in keys:
                    values[parts[0]] = parts[1]
    except OSError:
        pass
    return values


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "removable_packages": {"type": "list", "elements": "str", "default": []},
            "services": {"type": "list", "elements": "str", "default": []},
            "login_defs_keys": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
            "managed_keys_group": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    packages, removable = module.params["packages"], module.params["removable_packages"]
    have = installed(packages + removable)
    services = {}
    for service in module.params["services"]:
        services[service] = {"enabled": run("systemctl", "is-enabled", service)[1].strip(),
                             "active": run("systemctl", "is-active", service)[1].strip()}
    module.exit_json(
        changed=False,
        container=container_type(),
        login_user=login_user(module.params["managed_keys_group"]),
        controller_address=controller_address(),
        algorithms={kind: run("ssh", "-Q", kind)[1].split() for kind in ("kex", "cipher", "mac", "key")},
        host_keys=sorted(glob.glob("/etc/ssh/ssh_host_*_key")),
        missing_packages=[p for p in packages if p not in have],
        removable_installed=[p for p in removable if p in have],
        services=services,
        login_defs=login_defs(module.params["login_defs_keys"]),
        aide_database=os.path.exists("/var/lib/aide/aide.db")
        or run("systemctl", "is-active", "gpubox-aide-init.service")[1].strip() in ("active", "activating"),
        modes={path: "%04o" % (os.stat(path).st_mode & 0o7777) for path in module.params["paths"] if os.path.exists(path)},
        apt_lists=apt_list_count(),
        firewall_problem=nftables_problem(),
    )


if __name__ == "__main__":
    main()
