"""Writing the user's own files (~/.ssh/config and gpubox's entries) so that a crash or a full
disk never leaves half a file: write a private temporary file next to it, then rename over."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

BACKUP_SUFFIX = ".before-gpubox"


def atomic_write(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def backup_once(path: Path) -> Path | None:
    """A copy of the user's own file, made before gpubox first changes it, and never overwritten."""
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    if backup.exists() or not path.exists():
        return None
    shutil.copy2(path, backup)
    backup.chmod(0o600)
    return backup
