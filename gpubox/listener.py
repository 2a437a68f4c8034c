"""Whether a user's JupyterLab socket on the workstation is theirs and up, as that user sees it.

Each JupyterLab listens on a Unix socket in a directory that systemd makes for its user alone
(0700, under root-owned parents): the kernel lets no other account enter it, create anything in it
or connect to the socket, and the SSH tunnel connects to it as the user. That is the boundary; this
check only gives a clear message first: "not running yet" (wait and retry) apart from "not yours"
(a broken host, said plainly rather than forwarded to). It runs in the same SSH login that reads
the token, and again before every reconnect.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpubox import contract
from gpubox.errors import GpuboxError

# Printed by the remote command between the token and settings and the socket facts.
MARKER = "--gpubox-socket--"
MISSING = "missing"
# What the remote command appends: the marker, the caller's uid, then "uid mode type" of the
# socket's directory and of the socket (never following a link), or "missing" for each.
REMOTE_COMMAND = (
    f'me=$(id -un) && echo {MARKER} && id -u && '
    f'{{ stat -c "%u %a %F" "{contract.jupyter_socket_dir("$me")}" 2>/dev/null || echo {MISSING}; }} && '
    f'{{ stat -c "%u %a %F" "{contract.jupyter_socket("$me")}" 2>/dev/null || echo {MISSING}; }}'
)


@dataclass(frozen=True)
class Entry:
    uid: int
    mode: str  # octal permission bits, as stat prints them (e.g. "1700": Jupyter sets the sticky bit)
    kind: str  # stat's %F: "directory", "socket", "symbolic link", ...


class SocketNotTheirs(GpuboxError):
    """The user's Jupyter directory or socket belongs to someone else or is no socket: no tunnel."""


class NothingListens(GpuboxError):
    """The user's JupyterLab is not running (no socket)."""


def parse_entry(line: str) -> Entry | None:
    """stat's "uid mode type" line; None for "missing" or anything unreadable."""
    fields = line.strip().split(" ", 2)
    if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    return Entry(uid=int(fields[0]), mode=fields[1], kind=fields[2])


def split_output(lines: list[str]) -> tuple[list[str], int | None, Entry | None, Entry | None]:
    """The remote command's lines before the marker, the uid printed after it (None when the
    marker or uid is missing), and the directory's and the socket's entries (None: missing)."""
    if MARKER not in lines:
        return lines, None, None, None
    at = lines.index(MARKER)
    rest = [*lines[at + 1:], "", "", ""]
    uid = int(rest[0]) if rest[0].strip().isdigit() else None
    return lines[:at], uid, parse_entry(rest[1]), parse_entry(rest[2])


def require_own_socket(uid: int | None, directory: Entry | None, socket: Entry | None, user: str, alias: str) -> None:
    """Refuse unless the user's socket directory is theirs alone (no access for group or others)
    and holds their socket."""
    if uid is None:
        raise GpuboxError(f"Could not check the Jupyter socket of {user} on {alias}.",
                          "The workstation did not answer as expected; check `python runner.py status` and retry.")
    where = contract.jupyter_socket_dir(user)
    if directory is not None and (directory.kind != "directory" or directory.uid != uid or int(directory.mode, 8) & 0o077):
        raise SocketNotTheirs(
            f"{where} on {alias} is not a private directory of {user} (uid {directory.uid}, mode {directory.mode}, "
            f"{directory.kind}), so no tunnel was opened.",
            "Tell IT: the jupyter role makes it for each user at every start of their JupyterLab.")
    if directory is None or socket is None:
        raise NothingListens(
            f"JupyterLab of {user} is not running on {alias} (no socket in {where}).",
            "It starts with the workstation: wait a minute and retry, or run `python runner.py configure`.")
    if socket.kind != "socket" or socket.uid != uid:
        raise SocketNotTheirs(
            f"{contract.jupyter_socket(user)} on {alias} is not a socket of {user} ({socket.kind}, uid {socket.uid}), "
            "so no tunnel was opened.",
            "Restart your JupyterLab (`python runner.py configure`), or tell IT if it persists.")
