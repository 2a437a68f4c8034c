"""`snapshots list|prune` and `cleanup`: what outlives a workstation, and what is let go.

Only the caller's snapshots are listed or pruned (gpubox:owner is their ARN); cleanup takes the
caller's stopped workstations, or with --any-owner (IT) everyone's, and destroys each the way
`destroy` does: a final snapshot first, then the teardown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from gpubox import validate
from gpubox.cloud import aws, cleanup, ownership, snapshots
from gpubox.commands import lifecycle


@dataclass(frozen=True)
class Prune:
    region: str
    doomed: list[snapshots.Snapshot]
    kept: int


def plan_prune(region: str | None, name: str | None, keep: int) -> list[Prune]:
    """Per region: the caller's snapshots beyond the `keep` newest of each workstation."""
    name = validate.optional_name(name)
    regions = lifecycle.status_regions(region)
    me = ownership.caller(regions[0])
    plans = []
    for where in regions:
        mine = snapshots.listed(where, me.owner, name)
        doomed = snapshots.to_prune(mine, keep)
        plans.append(Prune(where, doomed, len(mine) - len(doomed)))
    return plans


def prune(plans: list[Prune]) -> int:
    for plan in plans:
        snapshots.delete(plan.region, plan.doomed)
    return sum(len(plan.doomed) for plan in plans)


def listing(region: str | None, name: str | None) -> list[str]:
    """The caller's snapshots in every region this machine provisioned in (a destroy removes the
    record, not the region from that list: what it kept is still found)."""
    name = validate.optional_name(name)
    regions = lifecycle.status_regions(region)
    me = ownership.caller(regions[0])
    return list(lifecycle.snapshot_lines(regions, me.owner, name))


@dataclass(frozen=True)
class Cleanup:
    days: int
    overdue: list[cleanup.Overdue]
    plans: list[lifecycle.DestroyPlan]
    regions: list[str] = field(default_factory=list)  # where it looked (IT's --any-owner: every enabled region)


def plan_cleanup(region: str | None, days: int | None, *, any_owner: bool = False, now: datetime | None = None) -> Cleanup:
    """The workstations stopped longer than `days` (default: autostop_stopped_days), each with
    its destroy plan (disks by ID and size, the snapshot each keeps)."""
    days = cleanup.stopped_days() if days is None else days
    regions = lifecycle.status_regions(region, everyone=any_owner)
    me = ownership.caller(regions[0])
    items = [item for where in regions for item in aws.workstations(where) if any_owner or item.owner == me.owner]
    late = cleanup.overdue(items, days, now)
    plans = [lifecycle.plan_destroy(entry.workstation.name, entry.workstation.region, any_owner=any_owner) for entry in late]
    return Cleanup(days, late, plans, regions)


def run_cleanup(planned: Cleanup, out: TextIO) -> list[str]:
    """Destroy each, snapshot first; returns the names destroyed. One started again (or stopped
    anew) since it was listed is skipped: its owner is back, and it was not what was confirmed."""
    done = []
    for entry, plan in zip(planned.overdue, planned.plans):
        print(f"\n{plan.name} ({plan.region}):", file=out, flush=True)
        now = [item for item in aws.workstations(plan.region, plan.name) if item.instance_id == entry.workstation.instance_id]
        if not now or cleanup.stopped_since(now[0]) != entry.since:
            print(f"  skipped: {plan.name} is no longer stopped since {entry.since:%Y-%m-%d %H:%M} UTC "
                  f"({now[0].state if now else 'gone'}); nothing was deleted.", file=out, flush=True)
            continue
        lifecycle.destroy_ec2(plan, out)
        done.append(plan.name)
    return done
