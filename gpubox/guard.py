"""The hardening role's lockout guard, met before the run for `--host` targets.

sshd will admit only members of hardening_ssh_allow_groups. Corporate images often give their
admin account sudo through a sudoers file without membership of `sudo`, so the guard would stop
the run. When the login account has a group of its own (named like it, as useradd makes), runner.py
adds that group for the run: only that account gains nothing it did not have. Otherwise the role's
refusal stands, and says which line to add to the inventory."""

from __future__ import annotations

import subprocess
from typing import Callable

from gpubox import settings, ssh

ALLOW_GROUPS_VAR = "hardening_ssh_allow_groups"


def login_groups(connection: ssh.Connection, timeout: float = 60) -> list[str] | None:
    """The login account's groups on the host, as sshd's AllowGroups sees them; None when unknown."""
    try:
        result = subprocess.run(connection.ssh_command("id -Gn"), capture_output=True, text=True, timeout=timeout,
                                check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout.split() if result.returncode == 0 else None


def allow_groups_for(user: str, groups: list[str] | None, allowed: list[str]) -> list[str] | None:
    """The allowed groups this run needs so `user` can still log in afterwards; None: no change
    (already allowed, unknown, or no group of its own to add)."""
    if groups is None or set(groups) & set(allowed) or user not in groups:
        return None
    return [*allowed, user]


def extravars(connection: ssh.Connection, *, ask: Callable[[ssh.Connection], list[str] | None] = login_groups,
              allowed: list[str] | None = None) -> dict[str, list[str]]:
    """{hardening_ssh_allow_groups: [...]} when the login account needs its own group allowed, else {}."""
    current = allowed if allowed is not None else settings.load().get(ALLOW_GROUPS_VAR)
    needed = allow_groups_for(connection.user, ask(connection), list(current or []))
    return {ALLOW_GROUPS_VAR: needed} if needed else {}
