"""Which workstation a verb acts on, by one rule for every verb:

1. --name, when given;
2. else the only workstation this machine knows of (a local container, a --host machine, or an
   EC2 workstation provisioned from here);
3. else `default_name` from the user's config file (~/.config/gpubox/config.toml);
4. else an error that lists the names there are.

A new workstation (provision, plan) is named --name, else `default_name`, else after the login
name by `from_login`: lower case, each run of characters other than a-z and 0-9 becomes one '-'
(alice_smith -> alice-smith, john.doe -> john-doe), cut to 31 characters. A login that leaves no
valid name (one that does not start with a letter) is an error that asks for --name: two people
never share a made-up placeholder."""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass

from gpubox import contract, ssh, status, userconfig, validate
from gpubox.cloud import records
from gpubox.errors import GpuboxError

LOCAL, HOST, EC2 = "local container", "SSH host", "EC2"


@dataclass(frozen=True)
class Known:
    name: str
    kind: str  # LOCAL, HOST or EC2
    address: str = ""  # a local container's or host's SSH address (HostName)
    port: int = 22


def from_login(login: str | None = None) -> str:
    """The workstation name for a login name (the rule above); GpuboxError when none can be made."""
    login = getpass.getuser() if login is None else login
    name = re.sub(r"[^a-z0-9]+", "-", login.lower()).strip("-")[:31].rstrip("-")
    if not contract.NAME_PATTERN.fullmatch(name):
        raise GpuboxError(f"Your login name {login!r} makes no workstation name (1-31 lower-case letters, digits or '-', "
                          "starting with a letter).", "Pass --name, e.g. --name alice-gpu, or set default_name in "
                                                      "~/.config/gpubox/config.toml.", exit_code=2)
    return name


def entry_field(text: str, key: str) -> str:
    found = re.search(rf"^\s*{key}\s+(\S+)", text, re.MULTILINE)
    return found.group(1) if found else ""


def known() -> list[Known]:
    """Every workstation this machine knows of, by name. An SSH entry with an EC2 record is an EC2
    workstation; one whose container gpubox started is local; any other is a --host machine."""
    recorded = records.read_records()[0]
    found = {name: Known(name, EC2) for name in recorded}
    for path in sorted(ssh.entries_dir().glob(f"{contract.RESOURCE_PREFIX}*.conf")):
        name = path.name.removesuffix(".conf").removeprefix(contract.RESOURCE_PREFIX)
        if name in found or not contract.NAME_PATTERN.fullmatch(name):
            continue
        text = path.read_text()
        port = entry_field(text, "Port")
        kind = LOCAL if status.container_state(contract.alias(name)) is not None else HOST
        found[name] = Known(name, kind, entry_field(text, "HostName"), int(port) if port.isdigit() else 22)
    return sorted(found.values(), key=lambda item: item.name)


def listed(items: list[Known]) -> str:
    return ", ".join(f"{item.name} ({item.kind})" for item in items)


def resolve(name: str | None, default: str | None = None, *, candidates: list[Known] | None = None) -> Known:
    """The workstation a verb acts on (the rule above); `default` is the config file's default_name."""
    items = known() if candidates is None else candidates
    by_name = {item.name: item for item in items}
    if name is not None:
        validate.name(name)
        return by_name.get(name) or Known(name, "")  # "" : not known here (AWS may still know it)
    if len(items) == 1:
        return items[0]
    if default:
        validate.name(default, "default_name")
        return by_name.get(default) or Known(default, "")
    if not items:
        raise GpuboxError("You have no workstation on this machine yet.",
                          "Create one: `python runner.py provision` (EC2) or `python runner.py provision --local`.", exit_code=2)
    raise GpuboxError(f"Which workstation? You have {len(items)}: {listed(items)}.",
                      f"Pass --name, e.g. --name {items[0].name}, or set default_name in ~/.config/gpubox/config.toml.",
                      exit_code=2)


def new_name(name: str | None, default: str | None = None) -> str:
    """The name of a workstation about to be made (provision on EC2, plan)."""
    if name is not None:
        return validate.name(name)
    if default:
        return validate.name(default, "default_name")
    return from_login()


def configured_default() -> str | None:
    """default_name from the user's config file (gpubox/userconfig.py), None when unset."""
    return userconfig.load().value("default_name")


def pick(name: str | None) -> Known:
    """The workstation a verb acts on: `resolve` with the config file's default."""
    return resolve(name, configured_default() if name is None else None)
