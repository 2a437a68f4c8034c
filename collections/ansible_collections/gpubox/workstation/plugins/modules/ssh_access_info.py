#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts about accounts for the ssh_access role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ssh_access_info
short_description: Look at the accounts of a host for the ssh_access role
description:
  - Reports the login user of this run and its authorized key blobs (for the lockout guard) and, for
    each named user, whether the account exists, its home, shell, home mode, expiry, group membership,
    how many processes it runs, whether systemd keeps its user manager (linger) and the exact lines of
    its root-owned key file C(/etc/ssh/authorized_keys/<user>); and whether the host is a container
    (where the role lingers the users).
  - Every member of O(group) is reported in RV(users) too, listed or not, and in RV(members), since the
    role revokes the members the list does not name.
  - The data scientists' keys are read only from C(/etc/ssh/authorized_keys), never from their homes.
    The login user's keys come from there when it is in O(group) and has such a file (sshd reads that
    file for the group), else from its home, read without following links and only when the user or
    root owns them (a symlink or a foreign file reads as absent).
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  users:
    description: The account names to report on.
    type: list
    elements: str
    default: []
  group:
    description: The group whose membership to report.
    type: str
    required: true
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at the accounts
  gpubox.workstation.ssh_access_info:
    users: [alice, bob]
    group: gpubox
  register: ssh_access_probe
"""

RETURN = r"""
group_exists:
  description: Whether O(group) exists.
  returned: always
  type: bool
container:
  description: The container type (for example V(podman)), empty on a VM or bare metal.
  returned: always
  type: str
login_user:
  description: The account this run logged in with.
  returned: always
  type: str
login_user_keys:
  description: The key blobs (base64 field) the login user logs in with now (see the description).
  returned: always
  type: list
  elements: str
nft_installed:
  description: Whether nftables' C(nft) is installed (the metadata guard needs it).
  returned: always
  type: bool
metadata_guard_file:
  description: Whether the metadata guard's file C(/etc/nftables.d/gpubox-metadata.nft) exists.
  returned: always
  type: bool
members:
  description: The members of O(group), sorted.
  returned: always
  type: list
  elements: str
users:
  description: For each of O(users) and each member of O(group), what the host has.
  returned: always
  type: dict
  contains:
    exists: {description: Whether the account exists., type: bool, returned: always}
    home: {description: Its home directory., type: str, returned: always}
    shell: {description: Its login shell., type: str, returned: always}
    home_mode: {description: Octal mode of the home, empty when it is missing., type: str, returned: always}
    expire: {description: Account expiry in days since 1970, -1 for never., type: int, returned: always}
    processes:
      description: How many processes run as its uid (read from /proc; a minimal host has no procps).
      type: int
      returned: always
    in_group: {description: Whether it is a member of O(group)., type: bool, returned: always}
    linger: {description: Whether systemd keeps its user manager running without a session., type: bool, returned: always}
    key_lines: {description: The lines of /etc/ssh/authorized_keys/<user>, stripped and sorted., type: list, elements: str, returned: always}
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.authorized_keys import login_key_blobs, managed_keys
from ansible_collections.gpubox.workstation.plugins.module_utils.host import container_type, login_name

METADATA_GUARD_FILE = "/etc/nftables.d/gpubox-metadata.nft"
ABSENT = {"exists": False, "home": "", "expire": -1, "processes": 0, "key_lines": [], "in_group": False, "shell": "",
          "home_mode": "", "linger": False}


# Root-owned, one file per data scientist; sshd reads it for the group (hardening's Match block).
def key_lines(name: str) -> list[str]:
    """The exact lines of the user's managed key file, sorted; empty when there is no such file."""
    text = managed_keys(name) or ""  # never the home's: sshd does not read those for this group
    return sorted(line.strip() for line in text.splitlines() if line.strip())


def shadow_expiry(name: str) -> int:
    """Account expiry in days since 1970 from /etc/shadow (-1: never)."""
    with open("/etc/shadow") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name and len(fields) > 7:
                return int(fields[7]) if fields[7] else -1
    return -1


def process_count(uid: int) -> int:
    """Processes whose real, effective, saved or filesystem uid is uid."""
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as handle:
                uids = next((line.split()[1:5] for line in handle if line.startswith("Uid:")), [])
        except OSError:
            continue
        count += str(uid) in uids
    return count


def user_state(name: str, members: set[str]) -> dict:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return dict(ABSENT)
    return {"exists": True, "home": entry.pw_dir, "expire": shadow_expiry(name),
            "processes": process_count(entry.pw_uid), "key_lines": key_lines(name),
            "in_group": name in members, "shell": entry.pw_shell,
            "linger": os.path.exists(os.path.join("/var/lib/systemd/linger", name)),
            "home_mode": "%04o" % (os.stat(entry.pw_dir).st_mode & 0o7777) if os.path.isdir(entry.pw_dir) else ""}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "users": {"type": "list", "elements": "str", "default": []},
            "group": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        members, group_exists = set(grp.getgrnam(module.params["group"]).gr_mem), True
    except KeyError:
        members, group_exists = set(), False
    login = login_name()
    try:
        keys = login_key_blobs(pwd.getpwnam(login), module.params["group"])
    except KeyError:
        keys = []
    names = [name for name in module.params["users"] if name] + sorted(members - set(module.params["users"]))
    module.exit_json(changed=False, group_exists=group_exists, container=container_type(), login_user=login, login_user_keys=keys,
                     members=sorted(members), nft_installed=os.path.exists("/usr/sbin/nft"),
                     metadata_guard_file=os.path.exists(METADATA_GUARD_FILE),
                     users={name: user_state(name, members) for name in names})


if __name__ == "__main__":
    main()
