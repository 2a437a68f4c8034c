"""The EC2 side of `runner.py provision` and `destroy`: launch (gpubox/cloud/launch.py) or delete
(gpubox/cloud/teardown.py) the workstation, remember how it is reached, and hand over to site.yml.
IT's playbooks (provision.yml, teardown.yml) run the same code through the
gpubox.workstation.ec2_workstation module. Capacity shortages are retried in the region's other zones.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gpubox import contract, ssh, validate
from gpubox.cloud import aws, data_role, deadman, images, launch, ownership, records, regions, snapshots
from gpubox.cloud import teardown as teardown_module
from gpubox.data_access import Grant
from gpubox.errors import GpuboxError

# Where provision looks up this machine's public address (tests point the variable at a local server).
CHECKIP_URL = "https://checkip.amazonaws.com"
CHECKIP_VAR = "GPUBOX_CHECKIP_URL"


@dataclass(frozen=True)
class Request:
    name: str
    region: str
    instance_type: str
    disk_gb: int
    spot: bool
    allow_cidr: str
    ami: str
    key: Path
    owner: str  # the data scientist's account on the workstation
    os: str = images.DEFAULT_OS
    deadman_minutes: int = deadman.DEFAULT_MINUTES
    # provision --data: the role is made (after the owner checks) and its profile attached.
    grants: tuple[Grant, ...] = ()
    # For IT's door (playbooks/provision.yml): a profile to attach; "" leaves the instance's as it is.
    instance_profile: str = ""
    from_snapshot: str = ""  # provision --from-snapshot: latest or snap-...
    # The options to compare with an existing instance (those the caller gave) and whether the
    # owner confirmed changing it (--yes or the prompt): launch.changes.
    given: frozenset[str] = launch.COMPARED
    approved: bool = False
    tags: tuple[tuple[str, str], ...] = ()  # --tag KEY=VALUE and --plan-ref (gpubox/cloud/policy.py)


@dataclass(frozen=True)
class StaleRecord:
    """A record whose instance AWS no longer has (terminated, or destroyed from another machine)."""
    name: str
    path: Path
    region: str
    instance_id: str

    def line(self) -> str:
        return (f"{self.name}: local record {self.path} is stale: AWS no longer has its instance {self.instance_id} in "
                f"{self.region}; commands on it follow --region now (or delete the record: rm {self.path}).")


def _gone(region: str, instance_id: str) -> bool:
    """AWS does not have the instance any more (or only as terminated)."""
    return aws.instance_state(region, instance_id) not in aws.LIVE_STATES


def stale_lines(found: list[aws.Workstation], regions: list[str], name: str | None) -> list[str]:
    """One line per record of a searched region whose instance is neither listed nor alive in AWS."""
    listed = {item.instance_id for item in found}
    lines = []
    for record_name, record in records.read_records()[0].items():
        region, instance_id = record.get("region", ""), record.get("instance_id", "")
        if (name and record_name != name) or not instance_id or region not in regions or instance_id in listed:
            continue
        try:
            if _gone(region, instance_id):
                lines.append(StaleRecord(record_name, records.record_path(record_name), region, instance_id).line())
        except GpuboxError:
            continue  # AWS could not say: the record is not called stale on a guess
    return lines


def follow_region(name: str, region: str | None, *, write: bool = True) -> str | None:
    """A stale record never stands between a command and the workstation: with --region, the
    region wins and the record follows it (returns the note to show); without, the command is
    refused with the fix instead of looking where nothing is. A record whose instance is still
    alive is left for ownership.place, which refuses a contradicting --region. `write=False` (a
    dry run) says so without updating the record."""
    if region:
        validate.region(region)
    record = records.load_record(name)
    recorded, instance_id = record.get("region", ""), record.get("instance_id", "")
    if not recorded or not instance_id or region == recorded:
        return None
    if record.get("account") and record["account"] != ownership.caller(region or recorded).account:
        return None  # another account's record: ownership.check_account says which credentials to use
    if not region and aws.workstations(recorded, name):
        return None  # a workstation of that name is there (made again): ownership.check_record_agrees decides
    if not _gone(recorded, instance_id):
        return None
    stale = StaleRecord(name, records.record_path(name), recorded, instance_id)
    if not region:
        raise GpuboxError(f"{name}: this machine's record ({stale.path}) is stale: AWS no longer has its instance "
                          f"{instance_id} in {recorded}, and no workstation '{name}' is there.",
                          f"Pass --region where it lives now (`python runner.py status --all --name {name}` searches every "
                          f"region); the record then follows it. Or delete the record: rm {stale.path}")
    if write:
        records.save_record(name, {key: value for key, value in record.items() if key not in ("instance_id", "account")} | {"region": region})
    return (f"note: {stale.line().removesuffix('.').split(';')[0]}; following --region {region}"
            f"{' (record updated)' if write else ''}.")


def caller_cidr(timeout: float = 5.0) -> str:
    """This machine's public IPv4 address as a /32, the only source the security group admits."""
    url = os.environ.get(CHECKIP_VAR, CHECKIP_URL)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            address = ipaddress.IPv4Address(response.read(64).decode("ascii", "replace").strip())
    except (OSError, ValueError) as exc:
        reason = "no answer" if isinstance(exc, OSError) else "the answer was not an IPv4 address"
        raise GpuboxError(f"Could not find this machine's public address to allow SSH from it ({url}: {reason}).",
                          "Pass it yourself: --allow-cidr 203.0.113.7/32 (your office or VPN range).") from exc
    return f"{address}/32"


def plan(request: Request) -> list[str]:
    resource = contract.alias(request.name)
    return [
        f"key pair {resource} (public key of {request.key})",
        f"security group {resource}: SSH (22/tcp) from {re.sub(r',(?! )', ', ', request.allow_cidr)} only",
        f"instance {resource}: {request.instance_type}{' (spot)' if request.spot else ''} in {request.region}, "
        f"{request.ami or images.describe(request.os)}, {request.disk_gb} GB encrypted gp3"
        f"{f' made from snapshot {request.from_snapshot}' if request.from_snapshot else ''}, IMDSv2 only (hop limit 1), "
        "stops on shutdown",
        f"dead-man's switch: the instance powers itself off {request.deadman_minutes} min after boot unless gpubox has "
        "finished configuring it",
    ]


def from_snapshot(spec: launch.Spec, me: ownership.Caller, wanted: str, out: TextIO) -> launch.Spec:
    """A new instance whose disks are made from the caller's snapshots: the root disk booted through
    an image of it, and every data disk the same destroy kept; any it cannot bring back is named
    with how to attach it by hand."""
    if aws.workstations(spec.region, spec.name):
        raise GpuboxError(f"Workstation '{spec.name}' still exists in {spec.region}; --from-snapshot makes a new one.",
                          f"Destroy it first (`python runner.py destroy --name {spec.name}`, which keeps a snapshot), "
                          "or pick another --name.")
    snap = snapshots.resolve(spec.region, spec.name, me.owner, wanted)
    data, left = snapshots.kept_with(spec.region, snap, me.owner)
    image = snapshots.restore_image(spec.region, snap, launch.resource_tags(spec.name, me))
    print(f"Restoring {spec.name} from {snap.snapshot_id} (root disk, {snap.size_gb} GB)"
          + "".join(f", {item.snapshot_id} ({item.device}, {item.size_gb} GB)" for item in data) + f" in {spec.region}",
          file=out, flush=True)
    for item in left:
        print(f"  not restored: {snapshots.attach_hint(spec.region, item, spec.name)}", file=out, flush=True)
    return dataclasses.replace(spec, ami=image, snapshot_id=snap.snapshot_id, disk_gb=max(spec.disk_gb, snap.size_gb),
                               data_disks=tuple((item.device, item.snapshot_id, item.size_gb) for item in data))


def restore_region(name: str, wanted: str) -> tuple[str, str] | None:
    """provision --from-snapshot without --region and without a record (a destroy removed it): the
    region and snapshot, found in AWS across every region this machine provisioned in."""
    search = regions.for_caller(None)
    return snapshots.region_of(search, name, ownership.caller(search[0]).owner, wanted)


def provision(request: Request, out: TextIO) -> dict:
    """Create or find the caller's instance; returns {'instance_id', 'public_ip', 'state', 'changed'}.

    The region and account are recorded before anything is created, and the instance as soon as
    it exists: a provision killed at any point leaves a record that status and destroy follow."""
    me = ownership.caller(request.region)  # the credentials, and a stable owner
    spec = launch.Spec(name=request.name, region=request.region, instance_type=request.instance_type, disk_gb=request.disk_gb,
                       spot=request.spot, allow_cidr=request.allow_cidr, ami=request.ami, os=request.os,
                       public_key=ssh.public_key(request.key), login_name=request.owner, deadman_minutes=request.deadman_minutes,
                       request_tags=request.tags)
    ownership.check_account(ownership.place(request.name, request.region), me)
    client = launch.Ec2(request.region)
    launch.check_name_is_free_for(spec, me, client)
    if request.grants:
        data_role.check(request.name, request.region, me.owner)  # the role's name is free for us, and IT's boundary exists
    if request.from_snapshot:  # its restore image is tagged and reused by the next try (`snapshots prune` removes it)
        spec = from_snapshot(spec, me, request.from_snapshot, out)
    prepared = launch.prepare(spec, me, client, given=request.given, approved=request.approved)
    record = {**records.load_record(request.name), "region": request.region, "account": me.account}
    records.save_record(request.name, record)
    role_is_new = bool(request.grants) and not data_role.exists(request.name, request.region)
    reached: list[str] = []

    def remember(instance_id: str) -> None:
        reached.append(instance_id)
        records.save_record(request.name, {**record, "instance_id": instance_id})
    try:
        if request.grants:
            profile = data_role.ensure(request.name, request.region, me.owner, request.grants)
            prepared = dataclasses.replace(prepared, spec=dataclasses.replace(prepared.spec, instance_profile=profile))
        launched = launch.provision(prepared.spec, me, out, remember, prepared=prepared)
    except BaseException:
        if role_is_new and not reached:  # failed before launch: the role this run made goes too
            launch.undo([(f"data role {data_role.role_name(request.name, request.region)}",
                          lambda: data_role.delete(request.region, request.name))], out)
        raise
    return {"instance_id": launched.instance_id, "public_ip": launched.public_ip, "state": launched.state, "changed": launched.changed}


def teardown(name: str, region: str, out: TextIO) -> None:
    """Delete the workstation's tagged AWS resources (gpubox/cloud/teardown.py, the code IT's
    playbooks/teardown.yml runs too). runner.py has taken (or, with --no-snapshot, declined) the
    final snapshots first."""
    deleted = teardown_module.delete_resources(region, name)
    gone = [f"{kind} {', '.join(items)}" for kind, items in deleted.items() if items]
    if gone:
        print(f"Deleted {'; '.join(gone)}.", file=out, flush=True)
