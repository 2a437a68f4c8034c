#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts for the base role, with the bounded wait for cloud-init and the dpkg lock."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: base_info
short_description: Look at a host for the base role, after waiting for cloud-init and the dpkg lock
description:
  - Reports whether the host is a container, whether the wanted time zone exists, whether apt has
    package lists, which CA certificates gpubox installed earlier, the current time zone and which
    of the wanted packages are missing, so a no-change run skips apt entirely.
  - With O(wait_seconds) above 0 it first waits, boundedly, until cloud-init has finished and no
    other apt/dpkg process holds the lock. Fresh EC2 instances run cloud-init and unattended-upgrades
    at boot, holding the dpkg lock for minutes, the most common first-run failure. When the wait runs
    out it fails with advice.
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  timezone:
    description: The IANA time zone the host should have (checked against /usr/share/zoneinfo).
    type: str
    required: true
  packages:
    description: Packages the role wants installed.
    type: list
    elements: str
    default: []
  ca_dir:
    description: The directory where gpubox installs CA certificates (C(*.crt)).
    type: path
    required: true
  wait_seconds:
    description: How long to wait for cloud-init and the dpkg/apt locks; V(0) does not wait.
    type: int
    default: 0
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at the host
  gpubox.workstation.base_info:
    wait_seconds: 600
    timezone: Etc/UTC
    ca_dir: /usr/local/share/ca-certificates/gpubox
    packages: [curl, chrony]
  register: base_probe
"""

RETURN = r"""
container:
  description: The container technology (V(podman), V(docker), V(lxc), ...), empty on a machine or VM.
  returned: always
  type: str
timezone_known:
  description: Whether O(timezone) exists in /usr/share/zoneinfo.
  returned: always
  type: bool
cloud_init:
  description: V(done), V(not waited for), or V(error:) and what cloud-init said.
  returned: always
  type: str
cloud_init_installed:
  description: Whether cloud-init's configuration directory (/etc/cloud/cloud.cfg.d) exists.
  returned: always
  type: bool
login_user:
  description: The account this run logged in with.
  returned: always
  type: str
login_user_lingers:
  description: Whether systemd keeps that account's user manager running without a session.
  returned: always
  type: bool
waited_seconds:
  description: How long the wait took.
  returned: always
  type: float
ca_files:
  description: The C(*.crt) files in O(ca_dir), sorted.
  returned: success
  type: list
  elements: str
timezone:
  description: The current time zone (from the /etc/localtime link), empty when unknown.
  returned: success
  type: str
missing_packages:
  description: The wanted packages that are not installed.
  returned: success
  type: list
  elements: str
apt_lists:
  description: How many apt package lists exist (0 on a host that never ran apt-get update).
  returned: success
  type: int
dpkg_interrupted:
  description: >-
    What an interrupted dpkg run left (a power loss or a killed apt): C(dpkg --audit)'s lines, or that
    dpkg's journal is not empty; empty when dpkg is consistent. apt refuses to work until
    C(dpkg --configure -a) has finished it.
  returned: success
  type: list
  elements: str
"""

import fcntl
import glob
import os
import shutil
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.host import container_type, login_name
from ansible_collections.gpubox.workstation.plugins.module_utils.packages import apt_list_count, missing

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")


def lock_free(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def current_timezone() -> str:
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return ""
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else ""


def wait_for_boot(module: AnsibleModule, report: dict, timeout: int, started: float) -> None:
    """Wait for cloud-init, then for the dpkg/apt locks; fail with advice when time runs out."""
    if timeout > 0 and shutil.which("cloud-init"):
        try:
            result = subprocess.run(["cloud-init", "status", "--wait"], capture_output=True, text=True,
                                    timeout=timeout, check=False)
            # 0: done, 2: done with recoverable errors (newer cloud-init); both mean it is finished.
            report["cloud_init"] = "done" if result.returncode in (0, 2) else "error: " + result.stdout.strip()
        except subprocess.TimeoutExpired:
            module.fail_json(msg="cloud-init was still running after %ds. Check /var/log/cloud-init-output.log on the "
                                 "host, or raise base_wait_timeout and re-run." % timeout, **report)
    while timeout > 0:
        busy = [path for path in LOCKS if not lock_free(path)]
        if not busy:
            break
        if time.monotonic() - started > timeout:
            module.fail_json(msg="Another apt/dpkg process still held %s after %ds (see `ps aux | grep -E 'apt|dpkg'` "
                                 "on the host). Wait for it to finish, or raise base_wait_timeout, and re-run."
                                 % (", ".join(busy), timeout), **report)
        time.sleep(2)


def dpkg_interrupted(updates: str = "/var/lib/dpkg/updates") -> list[str]:
    """What dpkg would complain about: its journal not replayed, or packages left half-done."""
    found = []
    if os.path.isdir(updates) and any(name.isdigit() for name in os.listdir(updates)):
        found.append("dpkg was interrupted (its journal in %s is not empty)" % updates)
    if shutil.which("dpkg"):
        audit = subprocess.run(["dpkg", "--audit"], capture_output=True, text=True, check=False)
        found += [" ".join(line.split()) for line in audit.stdout.splitlines() if line.startswith(" ")]
    return found


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "wait_seconds": {"type": "int", "default": 0},
            "timezone": {"type": "str", "required": True},
            "ca_dir": {"type": "path", "required": True},
            "packages": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    started = time.monotonic()
    report = {
        "container": container_type(),
        "login_user": login_name(),
        "timezone_known": os.path.isfile(os.path.join("/usr/share/zoneinfo", params["timezone"])),
        "cloud_init": "not waited for",
        "cloud_init_installed": os.path.isdir("/etc/cloud/cloud.cfg.d"),
        "waited_seconds": 0,
    }
    wait_for_boot(module, report, params["wait_seconds"], started)
    report["login_user_lingers"] = os.path.exists(os.path.join("/var/lib/systemd/linger", report["login_user"]))
    report["waited_seconds"] = round(time.monotonic() - started, 1)
    report["ca_files"] = sorted(glob.glob(os.path.join(params["ca_dir"], "*.crt")))
    report["timezone"] = current_timezone()
    report["missing_packages"] = missing([name for name in params["packages"] if name])
    report["apt_lists"] = apt_list_count()
    report["dpkg_interrupted"] = dpkg_interrupted()
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
