"""`ssh`, `tunnel`, `hold` and `release`: what runs on a workstation through its SSH entry."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NoReturn, TextIO

from gpubox import contract, ssh, targets, tunnel
from gpubox.cloud import ownership, records
from gpubox.errors import GpuboxError

CREATE_IT = "Create it with `python runner.py provision --local` (or --host)."
# Hold files start with the name of whoever logs in (the remote shell says who that is); autostop
# attributes a hold by the file's owner, so the name is only for people reading the directory.
REMOTE_USER = '"$(id -un)"'
# A year: longer is a typo (or inf), and a hold without --hours already lasts until release.
MAX_HOLD_HOURS = 24 * 365


def require_entry(name: str, fix: str = CREATE_IT) -> str:
    """The SSH alias of a workstation set up on this machine, or a readable error naming the fix."""
    alias = targets.alias(targets.check_name(name))
    if not ssh.config_entry_path(alias).exists():
        raise GpuboxError(f"No workstation named '{name}' is set up on this machine.", fix)
    return alias


def login(name: str, remote: list[str]) -> NoReturn:
    """Replace this process with `ssh gpubox-NAME [command]`."""
    alias = require_entry(name)
    ssh.require_ssh_client()
    os.execvp("ssh", login_argv(alias, remote))


def login_argv(alias: str, remote: list[str]) -> list[str]:
    command = remote[1:] if remote[:1] == ["--"] else remote
    # A command's output is the user's result: no login banner in it. A login shell shows it, as any SSH login does.
    quiet = ["-o", "LogLevel=ERROR"] if command else []
    return ["ssh", *ssh.client_config_args(), *quiet, alias, *command]


@dataclass(frozen=True)
class Tunnel:
    alias: str
    endpoint: tunnel.Endpoint
    local_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.local_port}/lab?token={self.endpoint.token}"


def open_tunnel(name: str, user: str | None, local_port: int | None) -> Tunnel:
    """Find the user's JupyterLab on the workstation and a local port for it (the tunnel is not up yet)."""
    alias = require_entry(name)
    if local_port is not None and not 0 < local_port < 65536:
        raise GpuboxError(f"--local-port {local_port} is not a TCP port.", "Pass a port between 1024 and 65535.", exit_code=2)
    ssh.require_ssh_client()
    endpoint = tunnel.jupyter_endpoint_when_up(alias, user)
    return Tunnel(alias, endpoint, local_port or tunnel.pick_local_port(endpoint.preferred_port))


def keep_tunnel(opened: Tunnel, out: TextIO) -> int:
    """Keep the tunnel up until Ctrl-C; the exit code for the CLI."""
    return tunnel.keep_tunnel(opened.alias, opened.endpoint, opened.local_port, out)


def hold_until(hours: float | None, now: datetime | None = None) -> str:
    """The hold's expiry as the autostop checker reads it (UTC, ISO 8601), or "" for no expiry."""
    if hours is not None and not 0 < hours <= MAX_HOLD_HOURS:  # also refuses nan and inf
        raise GpuboxError(f"--hours {hours} is not a duration.",
                          f"Give hours up to {MAX_HOLD_HOURS}, e.g. --hours 8, or leave it out (a hold until release).", exit_code=2)
    if not hours:
        return ""
    return ((now or datetime.now(timezone.utc)) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def hold_command(until: str) -> str:
    """Place the caller's hold: a new file of theirs (any name in the sticky directory may already be
    taken by someone else), then their older holds removed."""
    return (f'hold=$(mktemp {contract.hold_file(REMOTE_USER)}.XXXXXX) && printf "%s\\n" "{until}" > "$hold" && '
            f'find {contract.HOLDS_DIR} -maxdepth 1 -type f -user "$(id -u)" ! -path "$hold" -delete')


def release_command() -> str:
    """Remove every hold of the caller's (the sticky bit leaves others' alone)."""
    return f'find {contract.HOLDS_DIR} -maxdepth 1 -type f -user "$(id -u)" -delete'


@dataclass(frozen=True)
class Hold:
    alias: str
    until: str  # "" until released


def hold(name: str, hours: float | None, *, now: datetime | None = None, any_owner: bool = False) -> Hold:
    """Keep the workstation up (autostop leaves a held host running), for `hours` or until released.
    An EC2 workstation must be the caller's (or --any-owner): a hold keeps someone's bill running."""
    alias = require_entry(name, "See `python runner.py status`.")
    until = hold_until(hours, now)
    if records.load_record(name):
        ownership.mine(name, None, any_owner=any_owner)
    _run(alias, hold_command(until))
    return Hold(alias, until)


def release(name: str) -> str:
    """End the caller's hold; returns the workstation's alias."""
    alias = require_entry(name, "See `python runner.py status`.")
    _run(alias, release_command())
    return alias


def _run(alias: str, remote: str) -> None:
    result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", alias, remote],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise GpuboxError(f"Could not reach {alias}: {result.stderr.strip()}", "Check `python runner.py status`; is it running?")
