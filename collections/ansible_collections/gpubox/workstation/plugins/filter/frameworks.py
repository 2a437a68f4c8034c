"""Filters for the framework roles (tensorflow, pytorch): which release fits the host.

Pure functions of the host's facts, tested with pytest (tests/test_frameworks.py) without a GPU.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.gpubox.workstation.plugins.module_utils import nvidia


def _release_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def pytorch_release(wanted: str, releases: dict, python: str, driver: str) -> str:
    """The PyTorch release to install: `wanted` itself, or for 'auto' the newest release that has
    wheels for `python` and whose CUDA the loaded `driver` runs (any, where no driver is loaded:
    a CPU host, or a GPU host before the driver's reboot). '' when none fits (validate says why)."""
    if wanted != "auto":
        return wanted
    if not releases:
        raise AnsibleFilterError("pytorch_releases is empty")
    fitting = [version for version, needs in releases.items()
               if python in needs["python"] and (not driver or nvidia.version_at_least(driver, needs["driver_min"]))]
    return max(fitting, key=_release_key) if fitting else ""


class FilterModule:
    def filters(self) -> dict:
        return {"pytorch_release": pytorch_release}
