"""`runner.py tunnel`: the data scientist's SSH tunnel to their JupyterLab, kept up until Ctrl-C.

JupyterLab listens on a Unix socket in a directory of the user's alone on the workstation (no TCP
port); OpenSSH forwards a local port to that socket (`ssh -L 127.0.0.1:PORT:/run/.../jupyter.sock`)
with the user's own key, and sshd connects to it as that user, so the kernel's file permissions
decide who reaches it, on every connection. The token is read over the same SSH login, from the
0600 file in their home, together with the socket's facts (gpubox.listener) for a clear message
when the server is down; that check is repeated before every reconnect.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from gpubox import contract, listener
from gpubox.errors import GpuboxError
from gpubox.ssh import client_config_args

KEEPALIVE = ["-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "ExitOnForwardFailure=yes",
             "-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR"]


@dataclass(frozen=True)
class Endpoint:
    user: str
    preferred_port: int  # the local port this user's URL uses when it is free here
    token: str

    @property
    def socket(self) -> str:
        return contract.jupyter_socket(self.user)


def jupyter_endpoint(alias: str, user: str | None) -> Endpoint:
    """Ask the workstation, as the user, for their Jupyter token, preferred local port and socket."""
    login = ["-l", user] if user else []
    result = subprocess.run(
        ["ssh", *client_config_args(), *KEEPALIVE, *login, alias,
         f'id -un && cat {contract.JUPYTER_TOKEN_FILE} && cat "{contract.jupyter_settings_file("$(id -un)")}" && {listener.REMOTE_COMMAND}'],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    lines, uid, directory, socket_entry = listener.split_output(result.stdout.splitlines())
    port = next((line.split("=", 1)[1] for line in lines if line.startswith(f"{contract.JUPYTER_PORT_SETTING}=")), "")
    if result.returncode != 0 or len(lines) < 2 or not port.isdigit():
        who = user or "you"
        if result.returncode == 255:
            raise GpuboxError(f"Could not log in to {alias} as {who}: {result.stderr.strip()}",
                              "Check that the workstation is running (`python runner.py status`) and that your key is "
                              "in gpubox_users.")
        raise GpuboxError(f"{alias} has no JupyterLab for {who} yet.",
                          f"Run `python runner.py configure` for it (or ask IT to add {who} to gpubox_users), then retry.")
    endpoint = Endpoint(user=lines[0].strip(), preferred_port=int(port), token=lines[1].strip())
    listener.require_own_socket(uid, directory, socket_entry, endpoint.user, alias)
    return endpoint


def jupyter_endpoint_when_up(alias: str, user: str | None, *, attempts: int = 15, delay: float = 2.0,
                             sleep: Callable[[float], None] = time.sleep) -> Endpoint:
    """jupyter_endpoint, waiting up to attempts x delay for a server that is still starting (just
    after a provision or a reboot) rather than failing at once."""
    for attempt in range(1, attempts + 1):
        try:
            return jupyter_endpoint(alias, user)
        except listener.NothingListens:
            if attempt == attempts:
                raise
            sleep(delay)
    raise AssertionError("unreachable")


def check_socket(alias: str, endpoint: Endpoint) -> None:
    """Look again, as the user, that their JupyterLab's socket is up and theirs (before a reconnect)."""
    result = subprocess.run(
        ["ssh", *client_config_args(), *KEEPALIVE, "-l", endpoint.user, alias, listener.REMOTE_COMMAND],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise GpuboxError(f"Could not log in to {alias} as {endpoint.user}: {result.stderr.strip()}",
                          "Check that the workstation is running (`python runner.py status`).")
    _, uid, directory, socket_entry = listener.split_output(result.stdout.splitlines())
    listener.require_own_socket(uid, directory, socket_entry, endpoint.user, alias)


def pick_local_port(preferred: int) -> int:
    """The user's own Jupyter port when it is free here (the URL stays the same), else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", candidate))
                return sock.getsockname()[1]
    raise GpuboxError("No free local port for the tunnel.", "Close something listening on 127.0.0.1 and retry.")


def keep_tunnel(
    alias: str,
    endpoint: Endpoint,
    local_port: int,
    out: TextIO,
    *,
    retry_delay: float = 3.0,
    start: Callable[[list[str]], subprocess.Popen] = lambda argv: subprocess.Popen(argv, stdin=subprocess.DEVNULL),
    verify: Callable[[], None] | None = None,
) -> int:
    """Run `ssh -N -L` until Ctrl-C, reconnecting after a drop; returns the exit code for the CLI.

    Before each reconnect `verify` (default: check_socket) looks at the user's socket again: one
    that is not theirs ends the tunnel; a server or host not back yet is retried."""
    verify = verify or (lambda: check_socket(alias, endpoint))
    argv = ["ssh", *client_config_args(), "-N", *KEEPALIVE, "-L", f"127.0.0.1:{local_port}:{endpoint.socket}",
            "-l", endpoint.user, alias]
    failures = 0
    first = True
    while True:
        if not first:
            try:
                verify()
            except listener.SocketNotTheirs:
                raise
            except GpuboxError as error:
                failures += 1
                if failures >= 5:
                    raise
                print(f"{error.message} Retrying in {retry_delay:.0f} s (Ctrl-C to stop)...", file=out, flush=True)
                try:
                    time.sleep(retry_delay)
                except KeyboardInterrupt:
                    print("\nTunnel closed.", file=out, flush=True)
                    return 0
                continue
        first = False
        started = time.monotonic()
        process = start(argv)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            print("\nTunnel closed.", file=out, flush=True)
            return 0
        # A tunnel that could not even start (login refused, port taken) will not fix itself.
        lasted = time.monotonic() - started
        failures = failures + 1 if lasted < 10 else 1
        if failures >= 5:
            raise GpuboxError(f"The tunnel to {alias} keeps failing (ssh exit code {code}).",
                              f"Try `ssh {alias}` to see why; check `python runner.py status`.")
        print(f"Connection to {alias} lost (ssh exit code {code}); reconnecting in {retry_delay:.0f} s "
              "(Ctrl-C to stop)...", file=out, flush=True)
        try:
            time.sleep(retry_delay)
        except KeyboardInterrupt:
            print("\nTunnel closed.", file=out, flush=True)
            return 0
