"""`status`, `stop`, `start` and `destroy`: a workstation's life, as AWS (or podman) sees it now."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from gpubox import ssh, targets, workstation
from gpubox.cloud import aws, cleanup, data_role, deadman, ec2, ownership, records, regions, snapshots, teardown
from gpubox.errors import GpuboxError


def describe(item: aws.Workstation, now: datetime, *, owner: bool = True) -> str:
    """One line: state, type, zone, address, uptime and the cost so far (and whose it is)."""
    price = item.hourly_price()
    hours = item.hours_up(now)
    cost = f", ~${price:.3f}/h, ~${price * hours:.2f} since started" if price is not None else ", price unknown"
    up = f", up {hours:.1f} h" if item.state == "running" else ""
    whose = f", owner {item.owner or '?'}" if owner else ""
    return (f"{item.name}: {item.state}, {item.instance_type} in {item.zone}, {item.public_ip or 'no public address'}{up}{cost}"
            f"{whose} ({item.instance_id})")


def deadman_line(item: aws.Workstation) -> str | None:
    """An instance gpubox has not finished configuring powers itself off at its deadline."""
    deadline = deadman.deadline(item.tags, item.state, item.launched)
    if deadline is None:
        return None
    return (f"  not configured yet: its dead-man's switch powers it off at {deadline:%Y-%m-%d %H:%M} UTC; "
            f"`python runner.py provision --name {item.name}` finishes it")


def stopped_lines(item: aws.Workstation, days: int, now: datetime) -> list[str]:
    """A spot interruption, and a workstation stopped so long that its disk bills for nothing."""
    lines = []
    if cleanup.interrupted(item):
        lines.append(f"  interrupted: AWS reclaimed the spot capacity and stopped it ({item.transition_reason or item.state_reason}); "
                     f"the disk and your data stay. `python runner.py start --name {item.name}` brings it back.")
    late = cleanup.overdue([item], days, now)
    if late:
        lines.append(f"  stopped {late[0].days:.0f} days (longer than autostop_stopped_days, {days}): its disk still bills. "
                     f"`python runner.py destroy --name {item.name}` keeps a snapshot of it (cheaper) and deletes the rest.")
    return lines


def snapshot_lines(where_to_look: list[str], owner: str | None, name: str | None) -> Iterator[str]:
    for where in where_to_look:
        for snap in snapshots.listed(where, owner, name):
            yield f"snapshot {snap.line(where)} in {where}"


def status_regions(region: str | None, *, everyone: bool = False) -> list[str]:
    """The region asked for, else every region this machine provisioned in (and the default one);
    for IT's views of everyone's (`everyone`), every region enabled in the account."""
    return regions.for_fleet(region) if everyone else regions.for_caller(region)


def status(region: str | None, name: str | None, *, everyone: bool = False, now: datetime | None = None,
           read_report: Callable[[str], str | None] = workstation.report) -> Iterator[str]:
    """The lines of `status`, one workstation at a time: each running one's own report (over SSH)
    follows its line as soon as it arrives. Only the caller's workstations unless `everyone` (IT)."""
    where_to_look = status_regions(region, everyone=everyone)
    me = ownership.caller(where_to_look[0])
    found = [item for where in where_to_look for item in aws.workstations(where, name) if everyone or item.owner == me.owner]
    yield from ec2.stale_lines(found, where_to_look, name)
    if everyone:
        yield f"(IT's view of every owner: {regions.searched(where_to_look)})"
    if not found:
        yield f"No gpubox workstations{'' if everyone else ' of yours'} in {', '.join(where_to_look)}."
        yield from snapshot_lines(where_to_look, None if everyone else me.owner, name)
        return
    now = now or datetime.now(timezone.utc)
    days = cleanup.stopped_days()
    for item in found:
        yield describe(item, now)
        line = deadman_line(item)
        if line:
            yield line
        yield from stopped_lines(item, days, now)
        yield f"  {data_role.status_line(item.region, item.name, item.instance_id)}"
        report = read_report(targets.alias(item.name)) if item.state == "running" and item.owner == me.owner else None
        if report:
            yield f"  {report}"
    yield from snapshot_lines(where_to_look, None if everyone else me.owner, name)


def _say(note: str | None, out: TextIO) -> None:
    if note:
        print(note, file=out, flush=True)


def stop(region: str | None, name: str, out: TextIO, *, any_owner: bool = False) -> aws.Workstation:
    """Stop the caller's instance (the disk stays), in its recorded region, and wait until it is stopped."""
    name = targets.check_name(name)
    _say(ec2.follow_region(name, region), out)
    found = ownership.mine(name, region, any_owner=any_owner)
    print(f"Stopping {name}...", file=out, flush=True)
    return aws.stop(found.place.region, name)


@dataclass(frozen=True)
class Started:
    workstation: aws.Workstation
    ssh_updated: bool  # the SSH entry now points at the instance's new public address


def start(region: str | None, name: str, out: TextIO, *, any_owner: bool = False) -> Started:
    """Start the caller's instance and point its SSH entry at its (usually new) public address."""
    name = targets.check_name(name)
    _say(ec2.follow_region(name, region), out)
    found = ownership.mine(name, region, any_owner=any_owner)
    print(f"Starting {name}...", file=out, flush=True)
    item = aws.start(found.place.region, name)
    record = records.load_record(name)
    entry = ssh.config_entry_path(targets.alias(name))
    # An instance reached through --connect keeps that address: only a public one moves.
    if not entry.exists() or record.get("connect") or not item.public_ip:
        return Started(item, ssh_updated=False)
    ssh.write_config_entry(ssh.Connection(alias=targets.alias(name), address=item.public_ip, port=22,
                                          user=workstation.owner_name(), key=Path(record.get("key") or ssh.ensure_key())))
    return Started(item, ssh_updated=True)


def destroy_local(name: str) -> bool:
    """Remove the local container and its SSH entry; False when there was neither."""
    removed = targets.remove_local(name)
    entry_removed = ssh.remove_config_entry(targets.alias(name))
    return removed or entry_removed


@dataclass(frozen=True)
class DestroyPlan:
    name: str
    region: str
    resources: dict[str, list[str]]
    # The disks a final snapshot is taken of first (none with --no-snapshot), for the owner below.
    disks: tuple[snapshots.Disk, ...] = ()
    snapshot: bool = True
    owner: str = ""

    @property
    def kept(self) -> list[str]:
        """What the destroy keeps: one snapshot per disk, with what it costs until pruned."""
        if not self.snapshot:
            return []
        return [f"a snapshot of {disk.volume_id} ({disk.size_gb} GB, {'root' if disk.root else 'data'} disk): up to "
                f"~${snapshots.monthly_cost(disk.size_gb, self.region):.2f}/month until you prune it" for disk in self.disks]

    @property
    def empty(self) -> bool:
        return not any(self.resources.values())

    @property
    def in_aws(self) -> bool:
        return any(items for kind, items in self.resources.items() if kind != "SSH config entry")


def plan_destroy(name: str | None, region: str | None, *, any_owner: bool = False, snapshot: bool = True) -> DestroyPlan:
    """Everything gpubox tagged for the workstation in its recorded region, and its SSH entry;
    refused when any of it is someone else's. Each disk is listed by ID and size."""
    if not name:
        raise GpuboxError("destroy needs --name (or --local).", "See `python runner.py status` for the names.", exit_code=2)
    name = targets.check_name(name)
    _say(ec2.follow_region(name, region), sys.stderr)
    place = ownership.place(name, region)
    where = place.region
    me = ownership.caller(where)
    ownership.check_account(place, me)
    ownership.check_record_agrees(place, aws.workstations(where, name))
    found = teardown.find(where, name, me, any_owner=any_owner)  # the same listing and owner checks as IT's teardown.yml
    resources = dict(found.resources)
    entry = ssh.config_entry_path(targets.alias(name))
    if entry.exists():
        resources["SSH config entry"] = [str(entry)]
    return DestroyPlan(name=name, region=where, resources=resources, disks=tuple(found.disks), snapshot=snapshot, owner=found.owner)


def final_snapshots(plan: DestroyPlan, out: TextIO) -> list[snapshots.Snapshot]:
    """Stop the instance (a consistent disk), then snapshot every disk and wait for completion
    (gpubox/cloud/teardown.py: the same code IT's playbooks/teardown.yml runs)."""
    if not plan.snapshot:
        return []
    return teardown.final_snapshots(plan.region, plan.name, plan.owner, list(plan.disks), out)


def destroy_ec2(plan: DestroyPlan, out: TextIO) -> None:
    """Delete what the plan lists: the AWS resources (teardown playbook), the SSH entry, the record;
    the final snapshots first, so the teardown runs only once every one of them is complete."""
    kept = final_snapshots(plan, out)
    if kept:
        print(f"Kept: {', '.join(snap.snapshot_id for snap in kept)} (completed). "
              f"`python runner.py provision --name {plan.name} --from-snapshot latest` brings the workstation back.", file=out, flush=True)
    ec2.teardown(plan.name, plan.region, out)
    note = data_role.delete(plan.region, plan.name)  # after the instance: its profile is no longer in use
    if note:
        print(note, file=out)
    ssh.remove_config_entry(targets.alias(plan.name))
    records.record_path(plan.name).unlink(missing_ok=True)
