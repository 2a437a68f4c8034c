# Copyright: gpubox
# Apache-2.0
"""Who and what the host is: container detection, the login user of this run, running commands.

Every role's facts module asks for itself (a few milliseconds), so no role depends on another
having run first.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess

# Left by podman and docker where systemd's own detection is not installed.
CONTAINER_MARKERS = (("/run/.containerenv", "podman"), ("/.dockerenv", "docker"))


def run(*argv: str, timeout: float | None = None) -> tuple[int, str]:
    """Exit code and standard output of a command; 127 and "" when it is not installed."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return 127, ""
    return result.returncode, result.stdout


def container_type() -> str:
    """The container technology this host runs in (podman, docker, lxc, ...), "" on a machine or VM."""
    code, out = run("systemd-detect-virt", "--container")
    if code != 127:
        return out.strip() if code == 0 else ""
    for marker, kind in CONTAINER_MARKERS:
        if os.path.exists(marker):
            return kind
    return ""


def login_name() -> str:
    """The account this Ansible run logged in with (sudo keeps it in SUDO_USER)."""
    return os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name


def read_text(path: str) -> str:
    """A small root-owned file (sysfs, procfs, /etc), stripped; "" when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _parent(pid: int) -> tuple[str, int]:
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)
    return fields[0].split("(", 1)[1], int(fields[1].split()[1])


def _environ_address(pid: int) -> str:
    try:
        with open("/proc/%d/environ" % pid, "rb") as handle:
            for item in handle.read().split(b"\0"):
                if item.startswith(b"SSH_CONNECTION="):
                    return item.split(b"=", 1)[1].split()[0].decode()
    except OSError:
        pass
    return ""


def controller_address() -> str:
    """The address this Ansible run connects from, for the operator's own fail2ban exemption.

    Our environment (when sudo keeps SSH_CONNECTION), else the environment of the login shell
    above us (root can read it where it holds CAP_SYS_PTRACE), else what sshd logged when it
    accepted the session above us.
    """
    if os.environ.get("SSH_CONNECTION"):
        return os.environ["SSH_CONNECTION"].split()[0]
    pid, sshd_pids = os.getppid(), []
    for _ in range(16):
        if pid <= 1:
            break
        address = _environ_address(pid)
        if address:
            return address
        try:
            name, parent = _parent(pid)
        except (OSError, ValueError, IndexError):
            break
        if name == "sshd" or name.startswith("sshd-"):
            sshd_pids.append(pid)
        pid = parent
    if sshd_pids:
        code, out = run("journalctl", "-q", "-o", "cat", "--no-pager", *("_PID=%d" % p for p in sshd_pids))
        found = re.findall(r"Accepted \S+ for \S+ from (\S+) port", out) if code == 0 else []
        if found:
            return found[-1]
    return ""
