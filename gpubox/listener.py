"""Who listens on a user's Jupyter port on the workstation, from the kernel's socket tables.

While a user's JupyterLab is down (a restart, a crash, a boot), any local account can listen on
its loopback port; a tunnel to that port would hand the user's token to that account through the
browser. So before the URL is shown, and before every reconnect, the tunnel proves that every
listener on the port belongs to the user. /proc/net/tcp and tcp6 carry each socket's state, local
port and owner's uid for every account, need no tool on the host, and are read in the same SSH
login that reads the token.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpubox.errors import GpuboxError

# Printed by the remote command between the token and settings and the socket tables.
MARKER = "--gpubox-listeners--"
# What the remote command appends: the marker, the caller's uid, then both socket tables.
# A kernel without IPv6 has no tcp6 table: its absence is not a failure.
REMOTE_COMMAND = f'echo {MARKER} && id -u && {{ cat /proc/net/tcp; cat /proc/net/tcp6 2>/dev/null; true; }}'
_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    port: int
    uid: int


class PortNotTheirs(GpuboxError):
    """Another account listens on the user's Jupyter port: the tunnel must not be opened."""


class NothingListens(GpuboxError):
    """The user's JupyterLab is not running (nothing listens on its port)."""


def parse_tables(text: str) -> list[Listener]:
    """The listening TCP sockets in /proc/net/tcp(6) text (header lines and others skipped)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        # sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
        if len(fields) < 8 or fields[3] != _LISTEN or ":" not in fields[1]:
            continue
        try:
            found.append(Listener(port=int(fields[1].rsplit(":", 1)[1], 16), uid=int(fields[7])))
        except ValueError:
            continue
    return found


def split_output(lines: list[str]) -> tuple[list[str], int | None, list[Listener]]:
    """The remote command's lines before the marker, the uid printed after it (None when the
    marker or uid is missing) and the listeners in the tables after that."""
    if MARKER not in lines:
        return lines, None, []
    at = lines.index(MARKER)
    rest = lines[at + 1:]
    uid = int(rest[0]) if rest and rest[0].strip().isdigit() else None
    return lines[:at], uid, parse_tables("\n".join(rest[1:]))


def require_own_listener(listeners: list[Listener], port: int, uid: int | None, user: str, alias: str) -> None:
    """Refuse unless something listens on PORT and every listener on it belongs to UID."""
    if uid is None:
        raise GpuboxError(f"Could not check who listens on the Jupyter port of {user} on {alias}.",
                          "The workstation did not report its sockets; check `python runner.py status` and retry.")
    on_port = [listener for listener in listeners if listener.port == port]
    foreign = sorted({listener.uid for listener in on_port if listener.uid != uid})
    if foreign:
        raise PortNotTheirs(
            f"Another account (uid {', '.join(map(str, foreign))}) listens on the Jupyter port {port} of {user} on "
            f"{alias}: {user}'s JupyterLab is down and the port was taken, so no tunnel was opened (the token "
            "would go to that account).",
            "Wait until JupyterLab starts again, or run `python runner.py configure` to restart it; if it persists, "
            "tell IT which account holds the port.")
    if not on_port:
        raise NothingListens(
            f"JupyterLab of {user} is not running on {alias} (nothing listens on its port {port}).",
            "It starts with the workstation: wait a minute and retry, or run `python runner.py configure`.")
