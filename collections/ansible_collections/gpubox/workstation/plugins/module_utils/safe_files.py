# Copyright: gpubox
# Apache-2.0
"""Reading a file under a user's home as root without following anything the user controls.

The walk starts at the home's parent directory, which must be root-owned and not writable by
others (the anchor). From there each step is opened with O_NOFOLLOW relative to the previous
one and checked with fstat: directories and the file itself must be owned by the user or root,
and the last step must be a regular file. A symlink, a FIFO, a device or someone else's file
anywhere below the anchor reads as "no such file", so a user cannot make root read
/etc/shadow or block on a pipe by planting a link in their home.
"""

from __future__ import annotations

import os
import stat

# Larger than any sane authorized_keys; a user must not make root read gigabytes.
MAX_BYTES = 1024 * 1024
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _anchor(home: str) -> int:
    """An open descriptor of the home's parent, after checking that only root controls it."""
    fd = os.open(os.path.dirname(os.path.normpath(home)) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    info = os.fstat(fd)
    if info.st_uid != 0 or (info.st_mode & stat.S_IWOTH and not info.st_mode & stat.S_ISVTX):
        os.close(fd)
        raise PermissionError("%s is not a root-owned anchor" % os.path.dirname(home))
    return fd


def _step(parent: int, name: str, flags: int, owners: tuple[int, ...]) -> int:
    fd = os.open(name, flags, dir_fd=parent)
    if os.fstat(fd).st_uid not in owners:
        os.close(fd)
        raise PermissionError("%s is owned by someone else" % name)
    return fd


def read_user_file(home: str, relative: str, uid: int, max_bytes: int = MAX_BYTES) -> str | None:
    """The text of HOME/RELATIVE (relative like ".ssh/authorized_keys"), or None when it is
    missing, unreadable, not a regular file, reached through a symlink or owned by another user."""
    owners = (uid, 0)
    names = [os.path.basename(os.path.normpath(home))] + [part for part in relative.split("/") if part]
    if any(name in ("", ".", "..") for name in names):
        return None
    opened: list[int] = []
    try:
        opened.append(_anchor(home))
        for name in names[:-1]:
            opened.append(_step(opened[-1], name, _DIRECTORY, owners))
        opened.append(_step(opened[-1], names[-1], _FILE, owners))
        if not stat.S_ISREG(os.fstat(opened[-1]).st_mode):
            return None
        data = b""
        while len(data) <= max_bytes:
            chunk = os.read(opened[-1], max_bytes + 1 - len(data))
            if not chunk:
                return data.decode("utf-8", errors="replace")
            data += chunk
        return None
    except OSError:
        return None
    finally:
        for fd in opened:
            os.close(fd)
