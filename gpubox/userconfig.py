"""The data scientist's own settings: ~/.config/gpubox/config.toml ($XDG_CONFIG_HOME/gpubox/config.toml
when that is set), read with the standard library's tomllib. Every key is optional:

    default_name = "alice-gpu"                          # the workstation a verb acts on when there are several
    region = "eu-west-1"
    instance_type = "g5.xlarge"
    allow_cidr = ["198.51.100.0/24", "203.0.113.0/24"]  # who may SSH in (office, VPN); one range or a list
    data = ["s3://team-data/churn"]                     # S3 data for provision --data; one URL or a list
    idle_stop = 30                                      # idle minutes before autostop (0: never)
    requester_name = "Alice Martin"                     # who asks, on the plan page (the request)
    requester_email = "alice@example.com"

A flag given on the command line wins over the file; the file wins over the environment
(AWS_REGION) and the built-in defaults. `python runner.py config show` prints each effective
value and where it came from. A bad file is refused before anything runs, naming the file, the
key, its line and the fix."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpubox import data_access, validate
from gpubox.errors import GpuboxError


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _idle_stop(value: int) -> int:
    if value < 0:
        raise GpuboxError(f"{value} is negative.", "Give minutes (60 is the default), or 0 to never stop.")
    return value


def _ranges(value: Any) -> list[str]:
    return [str(validate.cidr(item, "allow_cidr")) for item in _listed(value)]


def _text(key: str) -> Callable[[Any], str]:
    def checked(value: str) -> str:
        if not value.strip() or "\n" in value:
            raise GpuboxError(f"{key} {value!r} is empty or spans lines.", f"Write one line of text, e.g. {key} = \"...\".")
        return value.strip()
    return checked


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value.strip()):
        raise GpuboxError(f"requester_email {value!r} is not an e-mail address.", 'Write it as requester_email = "you@example.com".')
    return value.strip()


def _data(value: Any) -> list[str]:
    items = _listed(value)
    data_access.parse_all(items)
    return items


@dataclass(frozen=True)
class Key:
    """One setting: the TOML types it takes, how it is checked (returns the value to use), an example."""
    types: tuple[type, ...]
    check: Callable[[Any], Any]
    example: str
    item_type: type | None = None  # a list's element type, when a list is allowed


KEYS: dict[str, Key] = {
    "default_name": Key((str,), lambda value: validate.name(value, "default_name"), 'default_name = "alice-gpu"'),
    "region": Key((str,), validate.region, 'region = "eu-west-1"'),
    "instance_type": Key((str,), validate.instance_type, 'instance_type = "g5.xlarge"'),
    "allow_cidr": Key((str, list), _ranges, 'allow_cidr = ["198.51.100.0/24", "203.0.113.0/24"]', item_type=str),
    "data": Key((str, list), _data, 'data = ["s3://team-data/churn", "s3://team-scratch/alice:rw"]', item_type=str),
    "idle_stop": Key((int,), _idle_stop, "idle_stop = 30"),
    "requester_name": Key((str,), _text("requester_name"), 'requester_name = "Alice Martin"'),
    "requester_email": Key((str,), _email, 'requester_email = "alice@example.com"'),
}


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpubox" / "config.toml"


@dataclass(frozen=True)
class UserConfig:
    file: Path
    values: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def value(self, key: str) -> Any:
        return self.values.get(key)

    def source(self, key: str) -> str:
        return f"{self.file} line {self.lines.get(key, '?')}"


def _line_of(text: str, key: str) -> int:
    """The line a top-level key (or table) is written on; tomllib does not say."""
    found = re.search(rf"^[ \t]*(\[+[ \t]*)?[\"']?{re.escape(key)}[\"']?[ \t]*(=|\])", text, re.MULTILINE)
    return text.count("\n", 0, found.start()) + 1 if found else 0


def _refuse(file: Path, line: int, key: str, what: str, fix: str) -> GpuboxError:
    return GpuboxError(f"{file} line {line}: {key}: {what}", fix, exit_code=2)


def _checked(file: Path, text: str, key: str, value: Any) -> Any:
    line = _line_of(text, key)
    spec = KEYS.get(key)
    if spec is None:
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f"Did you mean {close[0]} (e.g. {KEYS[close[0]].example})? " if close else ""
        raise _refuse(file, line, key, "unknown key.", f"{hint}Known keys: {', '.join(KEYS)}.")
    wrong_type = not isinstance(value, spec.types) or isinstance(value, bool) or (
        isinstance(value, list) and (not value or not all(isinstance(item, spec.item_type) for item in value)))
    if wrong_type:
        raise _refuse(file, line, key, f"{value!r} is not the right kind of value.", f"Write it like: {spec.example}")
    try:
        return spec.check(value)
    except GpuboxError as exc:
        raise _refuse(file, line, key, exc.message, f"{exc.fix} In the file: {spec.example}") from exc


def load(file: Path | None = None) -> UserConfig:
    """The config file, checked; an empty one when there is none."""
    file = file or path()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return UserConfig(file)
    except (OSError, UnicodeDecodeError) as exc:
        raise GpuboxError(f"Cannot read {file}: {exc.__class__.__name__}.", "Make it a readable UTF-8 text file, or remove it.",
                          exit_code=2) from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GpuboxError(f"{file} is not valid TOML: {exc}.", 'Write one setting a line, e.g. region = "eu-west-1" '
                                                               "(strings in double quotes).", exit_code=2) from exc
    values, lines = {}, {}
    for key, value in raw.items():
        values[key], lines[key] = _checked(file, text, key, value), _line_of(text, key)
    return UserConfig(file, values, lines)
