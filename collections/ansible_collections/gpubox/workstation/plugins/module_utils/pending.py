# Copyright: gpubox
# Apache-2.0
"""Pending applies: a configuration written to disk but not yet live is recorded on disk too.

A handler (reload sshd, nft -f, sysctl --system, daemon-reload, restart) dies with a killed run,
and the next run sees the file already right and would notify nothing: the service keeps the old
configuration. So the writer records the apply as owed, durably and before the file itself
changes; the next run finds the marker and applies again; the marker goes only after the apply
succeeded. A marker without a changed file costs one extra apply, never a missed one.
"""

from __future__ import annotations

import os
import re
import tempfile

PENDING_DIR = "/var/lib/gpubox/pending"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def marker(name: str, directory: str = PENDING_DIR) -> str:
    """The marker's path; a name is a plain word, never a path."""
    if not _NAME.match(name):
        raise ValueError("pending name must match %s: %r" % (_NAME.pattern, name))
    return os.path.join(directory, name)


def make_dirs(directory: str) -> None:
    """The directory and its missing parents, 0755 whatever the umask (state under /var/lib/gpubox)."""
    if os.path.isdir(directory):
        return
    make_dirs(os.path.dirname(directory))
    os.mkdir(directory)
    os.chmod(directory, 0o755)


def _sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: str, text: str, mode: int) -> None:
    """Replace path with text: written, synced and renamed into place, then the directory synced,
    so a power loss leaves the old file or the new one, never a part."""
    directory = os.path.dirname(path)
    make_dirs(directory)
    fd, candidate = tempfile.mkstemp(dir=directory, prefix=".gpubox-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(candidate, mode)
        os.rename(candidate, path)
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)
    _sync_dir(directory)


def owe(name: str, reason: str, directory: str = PENDING_DIR) -> None:
    """Record the apply as owed, durably."""
    write_durably(marker(name, directory), reason.rstrip("\n") + "\n", 0o644)


def is_owed(name: str, directory: str = PENDING_DIR) -> bool:
    return os.path.lexists(marker(name, directory))


def settle(name: str, directory: str = PENDING_DIR) -> bool:
    """Remove the marker after its apply succeeded; True when there was one."""
    path = marker(name, directory)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    _sync_dir(directory)
    return True
