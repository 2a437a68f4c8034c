# Copyright: gpubox
# Apache-2.0
"""What a virtualenv holds and whether every user may run it."""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.gpubox.workstation.plugins.module_utils.host import run

# Runs inside the virtualenv's own Python, so it sees exactly what pip installed there.
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"
)


def python(venv: str) -> str:
    """The virtualenv's interpreter, "" when there is none it could run."""
    path = os.path.join(venv, "bin", "python")
    return path if os.access(path, os.X_OK) else ""


def distributions(venv: str) -> dict[str, str] | None:
    """Normalised name -> version of everything installed; None without a working interpreter."""
    interpreter = python(venv)
    if not interpreter:
        return None
    code, out = run(interpreter, "-c", LIST_DISTRIBUTIONS)
    return json.loads(out) if code == 0 else None


def readable_by_all(venv: str) -> bool:
    """Whether other users can use it: a root umask of 027 (the hardening role's) makes files only
    root can read, and users' servers and kernels run from here. Stops at the first such file.

    Links are neither followed nor judged. One lstat per entry (scandir knows what is a link):
    a TensorFlow virtualenv has tens of thousands of files, walked on every run.
    """
    try:
        if os.stat(venv).st_mode & 0o005 != 0o005:
            return False
    except OSError:
        return True
    pending = [venv]
    while pending:
        try:
            with os.scandir(pending.pop()) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                if mode & 0o005 != 0o005:
                    return False
                pending.append(entry.path)
            elif not mode & 0o004:
                return False
    return True
