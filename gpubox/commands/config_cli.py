"""`config show`: each setting gpubox would use now, and where it came from (a flag, the user's
config file with its line, the environment, or the built-in default)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gpubox import contract, userconfig, which
from gpubox.errors import GpuboxError
from gpubox.flags import Flags, add_ec2


def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "config", "your settings (~/.config/gpubox/config.toml): each value and where it comes from",
                      cmd_config, "region")
    made.add_argument("action", choices=["show"], help="show: print each effective value and its source")
    made.add_argument("--name", help="a workstation name, to see which one a verb would act on")
    add_ec2(made, "--instance-type", "--allow-cidr", "--data")
    made.add_argument("--idle-stop", type=int, metavar="MINUTES", help="idle minutes before autostop")


def _shown(value: Any) -> str:
    if value is None:
        return "(not set)"
    return value.replace(",", ", ") if isinstance(value, str) else ", ".join(value) if isinstance(value, list) else str(value)


def _region(effective: dict[str, Any]) -> tuple[str, str]:
    found = effective["region"]
    if found.value is not None:
        return found.value, found.source
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if os.environ.get(variable):
            return os.environ[variable], f"environment ({variable})"
    return contract.DEFAULT_REGION, "built-in default"


def _workstation(name: str | None, config: userconfig.UserConfig) -> tuple[str, str]:
    """Which workstation a verb would act on now, by gpubox/which.py's rule."""
    try:
        picked = which.resolve(name, None if name else config.value("default_name"))
    except GpuboxError as exc:
        return "(none: a verb would ask for --name)", exc.message
    if name:
        return picked.name, "command line (--name)"
    if len(which.known()) == 1:
        return picked.name, f"the only workstation you have ({picked.kind})"
    return picked.name, config.source("default_name")


def cmd_config(args: argparse.Namespace) -> int:
    config = userconfig.load()
    print(f"Config file: {config.file}{'' if config.file.exists() else ' (none yet; every key is optional)'}")
    rows: list[tuple[str, str, str]] = []
    default_name = config.value("default_name")
    rows.append(("default_name", _shown(default_name), config.source("default_name") if default_name else "built-in default"))
    rows.append(("workstation", *_workstation(args.name, config)))
    try:
        rows.append(("new workstation name", which.new_name(None, default_name),
                     config.source("default_name") if default_name else "your login name (alice_smith -> alice-smith)"))
    except GpuboxError as exc:
        rows.append(("new workstation name", "(none)", exc.message))
    effective = args.effective  # main() filled each option and noted where it came from (flags.apply_config)
    rows.append(("region", *_region(effective)))
    for key in ("instance_type", "allow_cidr", "data", "idle_stop"):
        value = effective[key].value
        shown = _shown(value)
        if key == "allow_cidr" and value is None:
            shown = "(this machine's public address /32, looked up at provision time)"
        if key == "idle_stop" and value is None:
            shown = "(IT's setting, 60 minutes unless IT changed it)"
        rows.append((key, shown, effective[key].source))
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        print(f"  {key:<{width}}  {value}\n  {'':<{width}}    from: {source}")
    return 0
