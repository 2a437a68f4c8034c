"""The team policy's verbs and options: `cost` (month-to-date spend against the budget), `budget
raise|enforce` (a manager or IT lifts an owner's budget for one month, recorded with who and why), and
the request options provision and plan share (--tag, --plan-ref)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gpubox.cloud import budget, cost, ownership, policy, regions
from gpubox.flags import Flags


def add_request_options(group: argparse._ActionsContainer, *, plan_ref: bool = True) -> None:
    """--tag (the team policy's required tags) and, for provision, --plan-ref."""
    group.add_argument("--tag", action="append", metavar="KEY=VALUE",
                       help="a tag for the workstation and its disks, e.g. cost-center=CC-1234 or project=churn "
                            "(repeatable; the team policy may require some: docs/policy.md)")
    if plan_ref:
        group.add_argument("--plan-ref", default="", metavar="REFERENCE",
                           help="the approved plan page's reference, kept as the gpubox:plan tag")


def add_parser(subparsers: Any, flags: Flags) -> None:
    """`cost` and `budget` (gpubox/cli.py's VERB_FAMILIES lists this module)."""
    spent = flags.verb(subparsers, "cost", "month-to-date spend per workstation and owner (running, stopped disks, snapshots) "
                                           "against the budget", _cost, "region")
    spent.add_argument("--month", metavar="YYYY-MM", help="a month (default: this one, to now)")
    spent.add_argument("--all", action="store_true", help="every owner (for IT; with Cost Explorer's billed figures where the "
                                                          "account has the gpubox:owner tag activated)")
    spent.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    made = flags.verb(subparsers, "budget", "monthly budgets: raise one for a month (a manager or IT), or run the budget job (IT)",
                      _budget)
    actions = made.add_subparsers(dest="action", required=True, metavar="ACTION")
    lift = actions.add_parser("raise", parents=[flags.debug], help="raise an owner's budget for this month, recorded with who and why")
    lift.add_argument("--owner", required=True, help="the owner as `cost --all` shows it (the gpubox:owner tag)")
    lift.add_argument("--to", required=True, type=float, metavar="USD", help="the month's new budget")
    lift.add_argument("--reason", required=True, help="why (kept with the raise)")
    lift.add_argument("--month", metavar="YYYY-MM", help="default: this month")
    job = actions.add_parser("enforce", parents=[flags.debug, flags.region],
                             help="the budget job: warn at the thresholds, stop over-budget owners' workstations (IT's scheduler)")
    job.add_argument("--dry-run", action="store_true", help="only say what would be stopped")
    job.add_argument("--json", action="store_true", help="the decisions as JSON")


def _cost(args: argparse.Namespace) -> int:
    team, unread = policy.load_offline()
    where = budget.search_regions(team, args.region, everyone=args.all)
    owner = None if args.all else ownership.caller(where[0]).owner
    found = cost.spend(where, args.month, owner, cost_explorer=args.all)
    owners = found.owners() if args.all else [owner or ""]
    standings = {who: budget.standing(team, who, found.of(who), found.month) if team else None for who in owners}
    if args.json:
        print(json.dumps({
            "month": found.month, "from": found.start.isoformat(), "to": found.end.isoformat(), "regions": found.regions,
            "workstations": [line.as_json() for line in found.lines],
            "owners": [{"owner": who, "spent_usd": round(found.of(who), 2), "source": found.source(who),
                        "budget_usd": standings[who].limit if standings[who] else None,
                        "percent": round(standings[who].percent, 1) if standings[who] else None} for who in owners],
            "policy": team.source if team else None}, indent=2))
        return 0
    print(f"Spend in {found.month}, {found.start:%Y-%m-%d} to {found.end:%Y-%m-%d %H:%M} UTC, {regions.searched(found.regions)}:")
    for line in found.lines:
        what = f"{line.state} {line.instance_type}".strip()
        print(f"  {line.name} ({line.region}, {what}{', owner ' + line.owner if args.all else ''}): "
              f"instance {line.instance_hours:.1f} h ${line.instance_usd:,.2f}, disks {line.disk_gb} GB ${line.disk_usd:,.2f}, "
              f"snapshots {line.snapshot_count} ({line.snapshot_gb} GB) ${line.snapshot_usd:,.2f} = ${line.total:,.2f}")
    if not found.lines:
        print("  nothing of yours bills there." if not args.all else "  no gpubox resources bill there.")
    for who in owners:
        mine = standings[who]
        against = mine.line().removeprefix("budget: ") if mine else f"${found.of(who):,.2f} (no budget in the team policy)"
        print(f"{'Owner ' + who if args.all else 'You'}: {against}")
        print(f"  ({found.source(who)})")
    if unread:
        print(f"note: the team policy could not be read ({unread}); no budget is shown.")
    return 0


def _budget(args: argparse.Namespace) -> int:
    if args.action == "raise":
        done = budget.raise_budget(args.owner, args.to, args.reason, args.month)
        print(f"Raised {done.owner}'s budget for {done.month} to ${done.to:,.2f}; recorded by {done.by} at {done.at}: {done.reason}")
        print(f"(SSM parameter {budget.raise_name(done.month, done.owner)}; its history keeps every change and who made it.)")
        return 0
    decided = budget.enforce(sys.stderr if args.json else sys.stdout, region=args.region, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(budget.as_json(decided), indent=2))
    stopped = sum(len(action.stopped) for action in decided)
    print(f"Budget job: {len(decided)} owner(s) with a budget, {stopped} workstation(s) {'would be ' if args.dry_run else ''}stopped.",
          file=sys.stderr if args.json else sys.stdout)
    return 0
