#!/usr/bin/python3
"""Give each user a valid Jupyter token on the host: 0600 in a 0700 directory of their home.

A valid token is exactly what this script writes: 64 lowercase hex digits and a newline, in a
regular file the user owns. Anything else there (empty, whitespace, another length or alphabet,
a symlink, a FIFO, a directory, someone else's file) is replaced, because Jupyter reads that file
as the user's password and an empty one turns authentication off.

Everything in a home is done as its owner (a forked child that has dropped to the user's uid and
gid), never as root: a link the user planted then leads only where the user could write anyway.
The token never leaves the host through this script: it prints only which users got a new one.
Usage: make_token.py [--owe MARKER] [--timeout SECONDS] TOKEN_FILE USER... (TOKEN_FILE relative to
the home). A user whose home defeats it (say ~/.local is a file) is listed under "failed": their
server refuses to start, and the run goes on for everyone else.

Root never waits unbounded on a process the user can stop: the child runs as the user, so they may
SIGSTOP it (or make it block on their files). After SECONDS (default 10) the child is killed, the
user is listed under "failed" and "timed_out", and the next user is served.

A running server keeps the token it read when it started, so a replaced token owes a restart. With
--owe, the restart is recorded as owed in MARKER (root's pending-apply marker) before any token is
replaced: a run killed between the new token and the restart still restarts on the next run.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import signal
import stat
import sys
import time

# The autostop checker and the server configuration accept exactly this (a test keeps them equal).
TOKEN_FORMAT = re.compile(r"[0-9a-f]{64}\n?")
KEPT, REPLACED, WANTED = 0, 10, 11
# as_user's result for a child that did not finish in time (no exit status is negative otherwise).
TIMED_OUT = -1000
DEFAULT_TIMEOUT = 10.0


def new_token() -> str:
    return secrets.token_hex(32) + "\n"


def is_valid(path: str, uid: int) -> bool:
    """Whether path is a regular file of uid holding a token, looked at without following it."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(descriptor)
        content = os.read(descriptor, 128) if stat.S_ISREG(info.st_mode) and info.st_uid == uid else b""
    finally:
        os.close(descriptor)
    return TOKEN_FORMAT.fullmatch(content.decode("ascii", "replace")) is not None and info.st_mode & 0o077 == 0


def ensure_token(home: str, relative: str, uid: int, write: bool = True) -> int:
    """As the user: KEPT when the token is valid, else REPLACED after writing a new one in its place
    (WANTED, writing nothing, when not write)."""
    os.umask(0o077)
    path = os.path.join(home, relative)
    if not write:
        return KEPT if is_valid(path, uid) else WANTED
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    if is_valid(path, uid):
        return KEPT
    if os.path.isdir(path) and not os.path.islink(path):
        os.rename(path, f"{path}.replaced-{secrets.token_hex(4)}")  # a directory cannot be renamed over
    temporary = f"{path}.new-{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(new_token())
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)  # replaces a symlink or FIFO itself, never what it points to
    return REPLACED


def as_user(name: str, relative: str, write: bool = True, timeout: float = DEFAULT_TIMEOUT) -> int:
    """ensure_token in a child process running with only the user's identity; its exit status, or
    TIMED_OUT when it did not end within timeout seconds (it is killed then)."""
    entry = pwd.getpwnam(name)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
            code = ensure_token(entry.pw_dir, relative, entry.pw_uid, write)
        except BaseException:  # noqa: BLE001  (the parent reports the user; details could quote their files)
            code = 1
        finally:
            os._exit(code)
    return wait_bounded(child, timeout)


def wait_bounded(child: int, timeout: float, poll: float = 0.05) -> int:
    """The exit code of child, or TIMED_OUT after killing it when it has not ended within timeout.

    The child runs as the user, who can stop it (SIGSTOP) or keep it waiting on their files; a
    blocking waitpid would then hold up root's whole run."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    # SIGKILL ends a stopped process too; the reap is bounded as well (a child stuck in the kernel,
    # say on a hung file system, is left to init rather than waited for).
    os.kill(child, signal.SIGKILL)
    reap_by = time.monotonic() + 5
    while time.monotonic() < reap_by:
        if os.waitpid(child, os.WNOHANG)[0]:
            break
        time.sleep(poll)
    return TIMED_OUT


def owe(marker: str) -> None:
    """Write root's marker durably (synced, renamed into place, directory synced)."""
    directory = os.path.dirname(marker)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temporary = f"{marker}.new-{secrets.token_hex(4)}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write("a Jupyter token is about to be replaced\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, marker)
    directory_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def main() -> int:
    arguments = sys.argv[1:]
    marker, timeout = "", DEFAULT_TIMEOUT
    while arguments[:1] in (["--owe"], ["--timeout"]):
        if arguments[0] == "--owe":
            marker = arguments[1]
        else:
            timeout = float(arguments[1])
        arguments = arguments[2:]
    relative, users = arguments[0], arguments[1:]
    looked = {user: as_user(user, relative, write=False, timeout=timeout) for user in users} if marker else {}
    if WANTED in looked.values():
        owe(marker)
    # A user whose look already timed out is not asked again: one stopped child costs one bound.
    results = {user: TIMED_OUT if looked.get(user) == TIMED_OUT else as_user(user, relative, timeout=timeout)
               for user in users}
    failed = [user for user, code in results.items() if code not in (KEPT, REPLACED)]
    print(json.dumps({"created": [user for user, code in results.items() if code == REPLACED], "failed": failed,
                      "timed_out": [user for user, code in results.items() if code == TIMED_OUT]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
