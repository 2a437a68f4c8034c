"""Filters for the hardening role: which settings the probe found different from policy.

Only those are edited, so a no-change run does no per-setting work.
"""

from __future__ import annotations


def hardening_login_defs_wrong(wanted: dict, seen: dict[str, str]) -> dict:
    """The /etc/login.defs keys (key -> wanted value) whose value on the host differs.

    `seen` is what the probe read (key -> value as text); a key missing there is wrong, since
    login.defs falls back to a built-in default that policy does not control.
    """
    return {key: value for key, value in wanted.items() if seen.get(key, "") != str(value)}


def hardening_file_modes_wrong(wanted: dict[str, str], seen: dict[str, str]) -> dict[str, str]:
    """The paths (path -> wanted mode) whose mode on the host differs.

    `seen` holds only the paths present on the host (path -> mode as four octal digits); missing
    ones are left alone rather than created, and paths policy does not list are not touched.
    """
    return {path: mode for path, mode in wanted.items() if path in seen and seen[path] != mode}


class FilterModule:
    def filters(self):
        return {
            "hardening_login_defs_wrong": hardening_login_defs_wrong,
            "hardening_file_modes_wrong": hardening_file_modes_wrong,
        }
