"""`autostop [--name N] MINUTES|off|status`: the data scientist's own idle limit on a live
workstation, set over SSH in seconds, without an Ansible run.

The wish is a file of the user's in the autostop role's idle-limits directory (root's, mode 1777
like the holds, so each user may only replace their own) holding MINUTES or `off`. The root
checker reads it on its next run and holds it to IT's bounds (autostop_max_idle_minutes,
autostop_allow_off): whatever a user writes, IT's cap wins, and the checker's log and status say
when it did. `status` reads the checker's status file back."""

from __future__ import annotations

import argparse
import json
import subprocess
from typing import Any

from gpubox import contract, ssh, which
from gpubox.commands import session
from gpubox.errors import GpuboxError
from gpubox.flags import Flags

# The checker's own bounds on a wish (IDLE_WISH in roles/autostop/files/gpubox_autostop.py): 1 to 6 digits.
MAX_MINUTES = 999_999
REMOTE_USER = '"$(id -un)"'


def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "autostop", "your idle limit on a running workstation: minutes, off, or status (no Ansible run)",
                      cmd_autostop, "named")
    made.add_argument("limit", metavar="MINUTES|off|status",
                      help="power off after this many idle minutes; off (if IT allows); status: what is in force and whose")


def wish(value: str) -> str:
    """The file's content for a limit: MINUTES or off; anything else is refused with the fix."""
    text = value.strip().lower()
    if text == "off" or (text.isdigit() and 1 <= int(text) <= MAX_MINUTES):
        return str(int(text)) if text != "off" else "off"
    raise GpuboxError(f"autostop {value!r} is neither minutes nor off.",
                      f"Give whole minutes from 1 to {MAX_MINUTES} (python runner.py autostop 30), off, or status.", exit_code=2)


def set_command(text: str) -> str:
    """Write the caller's wish as a new file of theirs (another user may hold any name in the
    sticky directory), then remove their older ones: the checker reads the latest."""
    return (f'wish=$(mktemp {contract.IDLE_LIMITS_DIR}/{REMOTE_USER}.XXXXXX) && printf "%s\\n" "{text}" > "$wish" && '
            f'find {contract.IDLE_LIMITS_DIR} -maxdepth 1 -type f -user "$(id -u)" ! -path "$wish" -delete')


def status_command() -> str:
    return f"cat {contract.AUTOSTOP_STATUS_PATH}"


def _remote(alias: str, command: str) -> str:
    result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                             "-o", "LogLevel=ERROR", alias, command],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise GpuboxError(f"Could not reach {alias}: {result.stderr.strip() or 'ssh failed'}",
                          "Check `python runner.py status`; is it running (and configured, with the autostop role)?")
    return result.stdout


def describe(checked: dict[str, Any]) -> list[str]:
    """The checker's status in words: the limit in force and whose, the state, IT's holds."""
    limit, by = checked.get("idle_limit"), checked.get("idle_limit_by", "IT")
    lines = [f"idle limit: {'off' if limit == 0 else f'{limit} min'} (set by {by})"]
    if checked.get("busy"):
        lines.append(f"busy: {'; '.join(checked.get('reasons', []))}")
    elif limit:
        lines.append(f"idle {checked.get('idle_minutes', 0):.0f} min, stops in {checked.get('stops_in_minutes', 0):.0f} min")
    lines += [f"note: {note}" for note in checked.get("notes", [])]
    lines.append(f"checked at {checked.get('checked_at', '?')}")
    return lines


def cmd_autostop(args: argparse.Namespace) -> int:
    asked = None if args.limit.strip().lower() == "status" else wish(args.limit)  # bad input first: exit 2
    alias = session.require_entry(which.pick(args.name).name, "See `python runner.py status`.")
    if asked is not None:
        text = asked
        _remote(alias, set_command(text))
        print(f"Asked {alias} for an idle limit of {'off' if text == 'off' else text + ' min'}. The checker applies it on "
              "its next run (within a minute), held to IT's bounds; `python runner.py autostop status` shows what is in force.")
        return 0
    try:
        checked = json.loads(_remote(alias, status_command()))
    except ValueError as exc:
        raise GpuboxError(f"{alias} has no autostop status yet.", "Wait a minute for the checker's first run, or "
                                                                 "configure the workstation (the autostop role).") from exc
    for line in describe(checked):
        print(line)
    return 0
