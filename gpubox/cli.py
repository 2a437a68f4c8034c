"""`python runner.py ...`: builds the parser from each verb family's `add_parser` (gpubox/commands/
*_cli.py, with the shared option groups of gpubox/flags.py) and runs the verb's handler, turning
errors into a readable message and an exit code."""

from __future__ import annotations

import argparse
import sys
import traceback

from gpubox.ansible import ShowTaskNames
from gpubox.commands import budget_cli, document_cli, env_cli, image_cli, lifecycle_cli, provision_cli, retention_cli, session_cli
from gpubox.commands import sync_cli
from gpubox.errors import GpuboxError
from gpubox.examples import EXAMPLES  # noqa: F401  (tests and docs read the examples from here)
from gpubox.flags import Flags

# Each family registers its verbs; a new verb family adds its module here (one line).
VERB_FAMILIES = (provision_cli, session_cli, lifecycle_cli, retention_cli, document_cli, image_cli, budget_cli, env_cli, sync_cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python runner.py",
        description="gpubox: a hardened GPU workstation, ready for data science.",
        epilog="Run `python runner.py COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    parser.add_argument("--verbose", action=ShowTaskNames, help="show each Ansible task as it runs (always in the run's log)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    flags = Flags()
    for family in VERB_FAMILIES:
        family.add_parser(subparsers, flags)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
