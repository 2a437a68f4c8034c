# Copyright: gpubox
# Apache-2.0
"""Debian package state from dpkg and apt, read-only."""

from __future__ import annotations

import glob

from ansible_collections.gpubox.workstation.plugins.module_utils.host import run


def parse_installed(output: str) -> set[str]:
    """Names from `dpkg-query -f '${Package} ${db:Status-Status}'` output whose state is installed."""
    return {line.split()[0] for line in output.splitlines() if line.endswith(" installed")}


def installed(names: list[str]) -> set[str]:
    """Which of the names are installed (unknown names simply are not)."""
    if not names:
        return set()
    _, out = run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n", *names)
    return parse_installed(out)


def missing(names: list[str]) -> list[str]:
    """The names that are not installed, in the given order."""
    have = installed(names)
    return [name for name in names if name not in have]


def parse_abbrev(output: str, names: list[str]) -> dict[str, dict]:
    """Installed version and hold state from `dpkg-query -f '${Package} ${db:Status-Abbrev} ${Version}'`."""
    report = {name: {"installed": "", "candidate": "", "held": False} for name in names}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in report:
            # Status-Abbrev: first letter is the selection (h = hold), second the state (i = installed).
            report[parts[0]]["held"] = parts[1].startswith("h")
            if len(parts[1]) > 1 and parts[1][1] == "i":
                report[parts[0]]["installed"] = parts[-1]
    return report


def parse_candidates(output: str) -> dict[str, str]:
    """Candidate version per package from `apt-cache policy` output ("" for none)."""
    candidates, current = {}, None
    for line in output.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif current is not None and line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            candidates[current] = "" if candidate == "(none)" else candidate
    return candidates


def states(names: list[str]) -> dict[str, dict]:
    """For each name: installed version ("" if not), apt candidate ("" if none) and whether it is held."""
    if not names:
        return {}
    report = parse_abbrev(run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\\n", *names)[1], names)
    for name, candidate in parse_candidates(run("apt-cache", "policy", *names)[1]).items():
        if name in report:
            report[name]["candidate"] = candidate
    return report


def apt_list_count() -> int:
    """How many apt package lists exist (0 on a host that never ran apt-get update)."""
    return len(glob.glob("/var/lib/apt/lists/*_Packages*"))
