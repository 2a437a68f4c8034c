# Copyright: gpubox
# Apache-2.0
"""Who and what the host is: container detection, the login user of this run, running commands.

Every role's facts module asks for itself (a few milliseconds), so no role depends on another
having run first.
"""

from __future__ import annotations

import os
import pwd
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
