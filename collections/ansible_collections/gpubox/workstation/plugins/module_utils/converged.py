# Copyright: gpubox
# Apache-2.0
"""What a role left on the host when its body last succeeded, and whether the host still matches.

A role's body runs to fix drift. When the host is exactly as the body left it (the same files,
packages, units and a few host facts) and the role's inputs are the same, running the body again
can change nothing, so the role skips it. The record is written only after the body (and its
handlers) succeeded and is removed when a body starts, so a failed or killed body never leaves a
record behind. Pending apply markers of the role always force the body.

Root reads only root-owned system paths here and never follows a symbolic link: a link is
recorded as its target text, a directory by owner and mode (or by its listing when asked).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import stat

from ansible_collections.gpubox.workstation.plugins.module_utils import pending
from ansible_collections.gpubox.workstation.plugins.module_utils.host import controller_address, run

STATE_DIR = "/var/lib/gpubox/converged"
FORMAT = 1


def _paths(patterns: list[str]) -> list[str]:
    """Patterns with glob characters expand to what exists now; plain paths stay as given."""
    found = []
    for pattern in patterns:
        found.extend(sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
    return found


def fingerprint(path: str) -> str:
    """Type, owner, mode and content of one path, without following a link ('absent' if none)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except NotADirectoryError:
        return "absent"
    owner = "%d:%d:%04o" % (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode))
    if stat.S_ISLNK(info.st_mode):
        return "link %s -> %s" % (owner, os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return "dir " + owner
    if not stat.S_ISREG(info.st_mode):
        return "other " + owner
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "file %s %s" % (owner, digest.hexdigest())


def listing(path: str) -> str:
    """The sorted names in a directory ('absent' when it is none)."""
    try:
        return "\n".join(sorted(os.listdir(path)))
    except (FileNotFoundError, NotADirectoryError):
        return "absent"


def package_states(names: list[str]) -> dict[str, str]:
    """dpkg's selection and state per package ('hi': held and installed, '' when unknown)."""
    if not names:
        return {}
    _, out = run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\\n", *names)
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            found[parts[0]] = parts[1][:2]
    return {name: found.get(name, "") for name in names}


def unit_states(units: list[str]) -> dict[str, str]:
    """systemd's 'active/enabled' pair per unit, asked in one call."""
    if not units:
        return {}
    _, out = run("systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--", *units)
    states = [block for block in out.split("\n\n") if block.strip()]
    report = {}
    for unit, block in zip(units, states):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        report[unit] = "%s/%s" % (fields.get("ActiveState", ""), fields.get("UnitFileState", ""))
    return report


def process_owners() -> set[int]:
    """The uids that own a running process."""
    owners = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                owners.add(os.stat("/proc/" + entry).st_uid)
            except OSError:
                continue
    return owners


def uids(names: list[str]) -> dict[str, int]:
    found = {}
    for name in names:
        try:
            found[name] = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
    return found


def host_context() -> dict[str, str]:
    """Facts of the host a role's output can depend on: the running kernel, and the address this
    run comes from (hardening exempts it from fail2ban)."""
    return {"kernel": os.uname().release, "controller_address": controller_address()}


def observe(watch: dict, context: dict) -> dict:
    """The host as it is now, for the things a record watches."""
    without = watch.get("no_processes", [])
    running = process_owners() if without else set()
    return {
        "files": {path: fingerprint(path) for path in _paths(watch.get("files", []))},
        "dirs": {path: listing(path) for path in _paths(watch.get("dirs", []))},
        "packages": package_states(watch.get("packages", [])),
        "units": unit_states(watch.get("units", [])),
        "processes": sorted(name for name, uid in uids(without).items() if uid in running),
        "context": {key: context.get(key, "") for key in watch.get("context", [])},
    }


def differences(recorded: dict, now: dict, limit: int = 5) -> list[str]:
    """What differs between a record and the host now, one short phrase each (at most limit)."""
    found = []
    for kind in ("files", "dirs", "packages", "units"):
        before, after = recorded.get(kind, {}), now.get(kind, {})
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                found.append("%s %s" % (kind[:-1], key))
    if now.get("processes"):
        found.append("processes of " + ", ".join(now["processes"]))
    for key, value in sorted(recorded.get("context", {}).items()):
        if now.get("context", {}).get(key) != value:
            found.append(key)
    return found[:limit]


def record_path(role: str, directory: str = STATE_DIR) -> str:
    pending.marker(role, directory)  # the same rule for names: a plain word, never a path
    return os.path.join(directory, role + ".json")


def ledger_path(role: str, directory: str = STATE_DIR) -> str:
    pending.marker(role, directory)
    return os.path.join(directory, role + ".ledger")


def read_record(role: str, directory: str = STATE_DIR) -> dict | None:
    try:
        with open(record_path(role, directory), encoding="utf-8") as handle:
            data = json.load(handle)
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def write_record(role: str, data: dict, directory: str = STATE_DIR) -> str:
    """Atomically, root-only (0600): the record is bookkeeping, not for other users."""
    path = record_path(role, directory)
    pending.write_durably(path, json.dumps(dict(data, format=FORMAT, role=role), sort_keys=True), 0o600)
    return path


def forget(role: str, directory: str = STATE_DIR) -> bool:
    """A body starts: its old record and ledger go; True when there was a record."""
    had = False
    for path in (record_path(role, directory), ledger_path(role, directory)):
        try:
            os.unlink(path)
            had = had or path.endswith(".json")
        except FileNotFoundError:
            continue
    return had


def add_to_ledger(role: str, paths: list[str], directory: str = STATE_DIR) -> None:
    """Remember the files a role's config_files tasks manage (their state is recorded at the end)."""
    if not paths:
        return
    pending.make_dirs(directory)
    fd = os.open(ledger_path(role, directory), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        for path in paths:
            handle.write(json.dumps(path) + "\n")


def read_ledger(role: str, directory: str = STATE_DIR) -> list[str]:
    try:
        with open(ledger_path(role, directory), encoding="utf-8") as handle:
            return sorted({json.loads(line) for line in handle if line.strip()})
    except FileNotFoundError:
        return []


def owed_applies(role: str, directory: str = pending.PENDING_DIR) -> list[str]:
    """Pending markers of this role: named after it (hardening-sshd, ssh-access-sshd)."""
    prefix = role.replace("_", "-") + "-"
    try:
        return sorted(name for name in os.listdir(directory) if name.startswith(prefix))
    except FileNotFoundError:
        return []
