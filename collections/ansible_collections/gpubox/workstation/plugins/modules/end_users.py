#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""End everything that runs as revoked users, and sweep what they left where every user writes."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: end_users
short_description: Stop every unit and process of revoked accounts and sweep their files in shared temporary places
description:
  - For each revoked account it is given, finds every process whose real, effective, saved or filesystem uid is
    the account's (read from C(/proc), so no procps or D-Bus is needed), and the systemd unit each
    runs in (from its cgroup). System services that run as the account (for example a
    C(jupyter@<user>.service) with C(Restart=always), which came back 2 s after its process was
    killed) are stopped, which no C(Restart=) undoes; the role that enabled such a unit disables it
    with its settings (the jupyter role, for a user no longer present). The account's user slice is
    stopped; whatever still runs is killed. Every C(systemctl) call is bounded by O(timeout).
  - Then removes the account's files from O(sweep), the shared places such as C(/tmp), C(/var/tmp),
    C(/dev/shm), the autostop holds and idle-limit wishes, where a revoked user could leave a setuid program, a FIFO or
    a hold. Nothing is followed; symbolic links are removed as links, and only entries the account
    owns go (a directory it owns goes whole; in one it does not own, only its own entries).
  - Fails, naming the account and its remaining processes, when they cannot all be ended within O(timeout).
  - A present account is never touched (the role passes only revoked ones), and root is refused.
version_added: 1.3.0
author: gpubox
options:
  users:
    description: The revoked account names (missing accounts are skipped).
    type: list
    elements: str
    required: true
  sweep:
    description:
      - Directories whose entries owned by the accounts are removed.
      - Searched without following links, on their own filesystem.
    type: list
    elements: path
    default: [/tmp, /var/tmp, /dev/shm, /var/lib/gpubox/holds, /var/lib/gpubox/idle-limits]
  timeout:
    description: Seconds allowed for each systemctl call, and for the accounts' processes to end.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: End everything that runs as bob and erin
  gpubox.workstation.end_users:
    users: [bob, erin]
"""

RETURN = r"""
ended:
  description: Per account, the units stopped, the processes killed and the paths swept (would be, in check mode).
  returned: always
  type: dict
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

# Where every user may write: a revoked user's setuid program, FIFO, hold or idle-limit wish.
SHARED_PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/var/lib/gpubox/holds", "/var/lib/gpubox/idle-limits"]

def process_uids(pid: str) -> set[int]:
    """Real, effective, saved and filesystem uid of a process; empty when it is gone."""
    try:
        with open("/proc/%s/status" % pid) as handle:
            for line in handle:
                if line.startswith("Uid:"):
                    return {int(value) for value in line.split()[1:5]}
    except (OSError, ValueError):
        pass
    return set()


def processes_of(uid: int) -> list[int]:
    return [int(pid) for pid in os.listdir("/proc") if pid.isdigit() and uid in process_uids(pid)]


def unit_of(pid: int) -> str:
    """The systemd unit (service or scope) a process runs in, from its cgroup path; "" if none."""
    try:
        with open("/proc/%d/cgroup" % pid) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return ""


def systemctl(timeout: int, *args: str) -> tuple[int, str]:
    try:
        result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return 127, "systemctl is not installed"
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s" % timeout
    return result.returncode, (result.stderr or result.stdout).strip()


def units_of(uid: int, pids: list[int]) -> tuple[list[str], bool]:
    """System units running as the account (not its own user manager or sessions), and whether it has a user slice."""
    services, in_user_slice = set(), False
    for pid in pids:
        unit = unit_of(pid)
        if unit.startswith("user@") or unit.startswith("session-") or not unit:
            in_user_slice = in_user_slice or bool(unit)
            continue
        services.add(unit)
    return sorted(services), in_user_slice or os.path.isdir("/sys/fs/cgroup/user.slice/user-%d.slice" % uid)


def owned_entries(top: str, uid: int) -> list[str]:
    """Entries under top owned by uid, top-down, never following a link or leaving top's filesystem.
    A directory the account owns is listed once, as a whole."""
    found: list[str] = []
    try:
        device = os.lstat(top).st_dev
    except OSError:
        return found
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if info.st_uid == uid:
                found.append(path)
            elif stat.S_ISDIR(info.st_mode) and info.st_dev == device:
                pending.append(path)
    return sorted(found)


def remove(path: str) -> None:
    info = os.lstat(path)
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)  # never follows links inside (rmtree's own guard)
    else:
        os.unlink(path)


def end_user(module: AnsibleModule, name: str) -> dict:
    entry = pwd.getpwnam(name)
    uid, timeout = entry.pw_uid, module.params["timeout"]
    if uid == 0:
        module.fail_json(msg="end_users refuses to end %s: uid 0 is root" % name)
    pids = processes_of(uid)
    services, user_slice = units_of(uid, pids)
    swept = [path for top in module.params["sweep"] for path in owned_entries(top, uid)]
    report = {"uid": uid, "units": services + (["user-%d.slice" % uid] if user_slice and pids else []),
              "processes": len(pids), "swept": swept}
    if module.check_mode:
        return report
    errors = []
    for unit in services:
        # Stopped, not disabled: a stopped unit is not restarted (Restart= acts only when it ends on
        # its own), and the role that enabled it sees it enabled for a revoked user and removes it
        # with its settings (the jupyter role does, for jupyter@<user>).
        code, text = systemctl(timeout, "stop", unit)
        if code != 0:
            errors.append("%s: %s" % (unit, text))
    if user_slice and pids:
        code, text = systemctl(timeout, "stop", "user-%d.slice" % uid)
        if code not in (0, 5):  # 5: no such unit loaded (no session left)
            errors.append("user-%d.slice: %s" % (uid, text))
    deadline = time.monotonic() + timeout
    while True:
        left = processes_of(uid)
        if not left:
            break
        if time.monotonic() > deadline:
            module.fail_json(msg="processes of %s are still running after %d s: %s%s"
                             % (name, timeout, " ".join(map(str, left)), ("; " + "; ".join(errors)) if errors else ""),
                             ended=report)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    # Looked for again now that nothing of theirs runs to add more.
    report["swept"] = swept = [path for top in module.params["sweep"] for path in owned_entries(top, uid)]
    for path in swept:
        try:
            remove(path)
        except FileNotFoundError:
            pass
    return report


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "users": {"type": "list", "elements": "str", "required": True},
            "sweep": {"type": "list", "elements": "path", "default": SHARED_PLACES},
            "timeout": {"type": "int", "default": 30},
        },
        supports_check_mode=True,
    )
    ended = {}
    for name in module.params["users"]:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        ended[name] = end_user(module, name)
    changed = any(report["units"] or report["processes"] or report["swept"] for report in ended.values())
    module.exit_json(changed=changed, ended=ended)


if __name__ == "__main__":
    main()
