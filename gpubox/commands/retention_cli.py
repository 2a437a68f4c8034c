"""The command line of `snapshots` and `cleanup`: their parsers and what they print
(commands/retention.py does the work)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gpubox.cloud import regions
from gpubox.commands import confirm, retention
from gpubox.errors import GpuboxError
from gpubox.flags import Flags, add_confirm


def add_parser(subparsers: Any, flags: Flags) -> None:
    kept = flags.verb(subparsers, "snapshots", "your workstations' snapshots (what destroy keeps): list, or prune old ones",
                      cmd_snapshots, "region")
    kept.add_argument("action", choices=["list", "prune"],
                      help="list them, or delete all but the newest --keep of each disk of each workstation")
    kept.add_argument("--name", help="only this workstation's")
    kept.add_argument("--keep", type=int, help="prune: how many snapshots of each workstation's disk to keep (the newest)")
    add_confirm(kept.add_argument_group("prune"))
    sweep = flags.verb(subparsers, "cleanup", "snapshot and destroy workstations stopped longer than autostop_stopped_days "
                                              "(for IT, or yourself)", cmd_cleanup, "region", "owner")
    sweep.add_argument("--days", type=int, help="stopped longer than this many days (default: autostop_stopped_days, 14)")
    add_confirm(sweep, done="snapshotted and deleted")


def cmd_snapshots(args: argparse.Namespace) -> int:
    if args.action == "list":
        lines = retention.listing(args.region, args.name)
        print("\n".join(lines) if lines else "You have no gpubox snapshots there.")
        return 0
    if args.keep is None:
        raise GpuboxError("snapshots prune needs --keep N.", "Example: python runner.py snapshots prune --keep 2", exit_code=2)
    plans = retention.plan_prune(args.region, args.name, args.keep)
    doomed = [(plan.region, snap) for plan in plans for snap in plan.doomed]
    if not doomed:
        print(f"Nothing to prune: no workstation of yours has more than {args.keep} snapshot(s).")
        return 0
    lines = [f"{'Would delete' if args.dry_run else 'This deletes'} for good "
             f"(keeping the newest {args.keep} of each disk of each workstation):"]
    lines += [f"  - snapshot {snap.line(region)} in {region}" for region, snap in doomed]
    return confirm.list_confirm_act(lines, dry_run=args.dry_run, yes=args.yes, word="prune", what="delete snapshots",
                                    act=lambda: print(f"Deleted {retention.prune(plans)} snapshot(s)."))


def cmd_cleanup(args: argparse.Namespace) -> int:
    planned = retention.plan_cleanup(args.region, args.days, any_owner=args.any_owner)
    whose = "" if args.any_owner else " of yours"
    if args.any_owner:
        print(f"Every owner's workstations, {regions.searched(planned.regions)}.")
    if not planned.overdue:
        print(f"No workstation{whose} has been stopped longer than {planned.days} days.")
        return 0
    lines = [f"Stopped longer than {planned.days} days{whose}: each gets a final snapshot of its disks, then "
             f"{'would be' if args.dry_run else 'is'} deleted:"]
    for entry, plan in zip(planned.overdue, planned.plans):
        lines.append(f"  {plan.name} ({plan.region}), stopped since {entry.since:%Y-%m-%d %H:%M} UTC, "
                     f"owner {entry.workstation.owner or '?'}:")
        lines += [f"    - deletes {kind}: {item}" for kind, items in plan.resources.items() for item in items]
        lines += [f"    - keeps {line}" for line in plan.kept]

    def act() -> None:
        done = retention.run_cleanup(planned, sys.stdout)
        print(f"\nCleaned up {len(done)}: {', '.join(done)}. `python runner.py snapshots list` shows what was kept.")

    return confirm.list_confirm_act(lines, dry_run=args.dry_run, yes=args.yes, word="cleanup", what="clean up", act=act)
