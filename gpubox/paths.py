"""Where gpubox keeps the user's local files (XDG base directories), and where the project is."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else Path.home() / fallback


def state_dir() -> Path:
    """Run artifacts and logs: $XDG_STATE_HOME/gpubox."""
    return _xdg("XDG_STATE_HOME", ".local/state") / "gpubox"


def config_dir() -> Path:
    """User settings and known_hosts for workstations: $XDG_CONFIG_HOME/gpubox."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "gpubox"


def ssh_dir() -> Path:
    return Path.home() / ".ssh"
