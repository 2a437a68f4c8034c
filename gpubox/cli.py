"""`python runner.py ...`: builds the parser from each verb family's `add_parser` (gpubox/commands/
*_cli.py, with the shared option groups of gpubox/flags.py) and runs the verb's handler, turning
errors into a readable message and an exit code."""

from __future__ import annotations

import argparse
import sys
import tomllib
import traceback
from pathlib import Path

from gpubox import userconfig
from gpubox.ansible import ShowTaskNames
from gpubox.commands import (autostop_cli, budget_cli, completion_cli, config_cli, document_cli, env_cli, image_cli, lifecycle_cli,
                             provision_cli, retention_cli, session_cli, sync_cli)
from gpubox.errors import GpuboxError
from gpubox.examples import EXAMPLES  # noqa: F401  (tests and docs read the examples from here)
from gpubox.flags import Flags, Parser, apply_config

# Each family registers its verbs; a new verb family adds its module here (one line).
VERB_FAMILIES = (provision_cli, session_cli, lifecycle_cli, retention_cli, document_cli, image_cli, budget_cli, config_cli,
                 completion_cli, autostop_cli, env_cli, sync_cli)


def version() -> str:
    """The project's version, from pyproject.toml (gpubox runs from its checkout, not installed)."""
    try:
        return tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python runner.py",
        description="gpubox: a hardened GPU workstation, ready for data science.",
        epilog="Run `python runner.py COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors (also after the verb)")
    parser.add_argument("--verbose", action=ShowTaskNames, help="show each Ansible task as it runs (always in the run's log)")
    parser.add_argument("--version", action="version", version=f"gpubox {version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = Flags()
    for family in VERB_FAMILIES:
        family.add_parser(subparsers, flags)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.root_parser = parser  # for `completion`, which writes every verb and option out
    try:
        args.effective = apply_config(args, userconfig.load())  # each value's source, for `config show`
        return args.func(args)
    except GpuboxError as exc:
        print(f"\nerror: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  -> {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the last line of defence: a readable message, not a traceback)
        if args.debug:
            traceback.print_exc()
        print(f"\nerror: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  -> Re-run with --debug for details, and include them when you report the problem.", file=sys.stderr)
        return 1
