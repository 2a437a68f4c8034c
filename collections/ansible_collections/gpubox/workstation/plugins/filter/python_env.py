"""Filters for the tensorflow role: which pinned requirements a virtualenv does not satisfy yet.

Comparing against the installed distributions (read by the role's probe) lets a no-change run
skip pip entirely.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[A-Za-z0-9,._-]+)\])?==(?P<version>[A-Za-z0-9.+!_-]+)$")
# Distributions an extra pulls in that mark it as installed.
EXTRA_MARKERS = {("tensorflow", "and-cuda"): "nvidia-cudnn-cu12"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_unsatisfied(requirements: list[str], installed: dict[str, str]) -> list[str]:
    """The requirements (name[extras]==version) that `installed` (name -> version) lacks."""
    have = {normalize(name): version for name, version in installed.items()}
    missing = []
    for requirement in requirements:
        match = PINNED.match(requirement)
        if not match:
            raise AnsibleFilterError(f"requirement {requirement!r} is not pinned as name==version")
        name = normalize(match.group("name"))
        extras = [normalize(extra) for extra in (match.group("extras") or "").split(",") if extra]
        markers = [EXTRA_MARKERS.get((name, extra)) for extra in extras]
        if have.get(name) != match.group("version") or any(marker and marker not in have for marker in markers):
            missing.append(requirement)
    return missing


class FilterModule:
    def filters(self) -> dict:
        return {"pip_unsatisfied": pip_unsatisfied}
