"""Final snapshots: a workstation's disks outlive the instance.

`destroy` stops the instance (a root disk is snapshotted consistently only when stopped), takes a
snapshot of each of its EBS volumes, waits until every one is `completed`, and only then lets the
teardown terminate the instance. The volumes are launched with DeleteOnTermination, so the order
is what protects the data: nothing is terminated before its snapshot is complete. A snapshot
carries the volume it was taken of (gpubox:volume), so a destroy that failed or was killed is
re-run and finds the snapshot it started instead of making a second.

Snapshots are tagged like everything else gpubox makes (managed, name, owner); only those of the
caller are listed, restored from or pruned.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from gpubox import contract, prices
from gpubox.cloud import aws
from gpubox.errors import GpuboxError

# The volume a snapshot was taken of, and its device on the instance (the root one boots a restore).
TAG_VOLUME = "gpubox:volume"
TAG_DEVICE = "gpubox:device"
TAG_DATE = "gpubox:date"
# The instance the disk belonged to: the snapshots one destroy kept belong together (root + data disks).
TAG_INSTANCE = "gpubox:instance"
RESTORE_PREFIX = "gpubox-restore-"
# Snapshots a destroy kept without TAG_INSTANCE (older gpubox) count as one set when started this close together.
SAME_DESTROY = timedelta(minutes=30)
POLL_SECONDS = 15.0
USABLE = ("pending", "completed")


@dataclass(frozen=True)
class Disk:
    volume_id: str
    size_gb: int
    device: str
    instance_id: str
    root: bool
    # False for a disk with DeleteOnTermination off (attach-volume's default): terminating the instance leaves it.
    deleted: bool = True


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    name: str
    owner: str
    volume_id: str
    device: str
    size_gb: int
    state: str
    started: datetime | None
    instance_id: str = ""  # TAG_INSTANCE: which instance's disk it was

    def line(self, region: str) -> str:
        started = f"{self.started:%Y-%m-%d %H:%M} UTC" if self.started else "?"
        return (f"{self.snapshot_id} of {self.name} ({self.size_gb} GB, {self.state}, taken {started}, "
                f"up to ~${monthly_cost(self.size_gb, region):.2f}/month)")


def monthly_cost(size_gb: int, region: str) -> float:
    """The most a snapshot of this size costs a month in the region: AWS bills the blocks in use,
    never more than the volume. destroy, status and `plan` all quote this figure."""
    return size_gb * prices.SNAPSHOT_GB_MONTH * prices.region_factor(region)


def _client(region: str) -> Any:
    return aws.client("ec2", region)


def _call(region: str, operation: str, **arguments: Any) -> dict[str, Any]:
    return aws.call(_client(region), operation, region, **arguments)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def disks(region: str, instances: list[aws.Workstation]) -> list[Disk]:
    """Every EBS volume of these instances, with its size and device."""
    ids = [volume for item in instances for volume in item.volumes]
    if not ids:
        return []
    roots = {item.instance_id: item.root_device for item in instances}
    outliving = {volume for item in instances for volume in item.outliving}
    found = []
    for volume in _call(region, "describe_volumes", VolumeIds=ids)["Volumes"]:
        attachment = next(iter(volume.get("Attachments", [])), {})
        instance_id, device = attachment.get("InstanceId", ""), attachment.get("Device", "")
        found.append(Disk(volume["VolumeId"], int(volume.get("Size", 0)), device, instance_id, root=device == roots.get(instance_id),
                          deleted=volume["VolumeId"] not in outliving and bool(attachment.get("DeleteOnTermination", True))))
    return sorted(found, key=lambda disk: (disk.instance_id, not disk.root, disk.device))


def _parse(item: dict[str, Any]) -> Snapshot:
    tags = _tags(item)
    return Snapshot(item["SnapshotId"], tags.get(contract.TAG_NAME, "?"), tags.get(contract.TAG_OWNER, ""),
                    tags.get(TAG_VOLUME, item.get("VolumeId", "")), tags.get(TAG_DEVICE, ""), int(item.get("VolumeSize", 0)),
                    item.get("State", "?"), item.get("StartTime"), tags.get(TAG_INSTANCE, ""))


def listed(region: str, owner: str | None, name: str | None = None) -> list[Snapshot]:
    """gpubox's snapshots in the region (of one owner unless None, of one workstation when named), oldest first."""
    filters = contract.managed_filters(name) + ([contract.tag_filter(contract.TAG_OWNER, owner)] if owner else [])
    found = _call(region, "describe_snapshots", OwnerIds=["self"], Filters=filters)["Snapshots"]
    # Tag filters read `*` and `?` as wildcards: only exact owners and names are kept.
    parsed = [snap for snap in map(_parse, found) if (owner is None or snap.owner == owner) and (name is None or snap.name == name)]
    return sorted(parsed, key=lambda snap: (snap.started or datetime.min.replace(tzinfo=timezone.utc), snap.snapshot_id))


def of_volume(region: str, name: str, owner: str, volume_id: str, stopped: datetime | None) -> Snapshot | None:
    """The snapshot an earlier destroy of this workstation started of this volume, if it is usable:
    started after the instance last stopped (one from before a restart misses what was written since;
    with no known stop time, none is reused)."""
    if stopped is None:
        return None
    found = [snap for snap in listed(region, owner, name)
             if snap.volume_id == volume_id and snap.state in USABLE and snap.started and snap.started >= stopped]
    return found[-1] if found else None


def start(region: str, name: str, owner: str, disk: Disk, now: datetime | None = None,
          stopped: datetime | None = None) -> tuple[Snapshot, bool]:
    """The final snapshot of one disk: the one already started since its instance stopped, or a new one; True when new."""
    existing = of_volume(region, name, owner, disk.volume_id, stopped)
    if existing:
        return existing, False
    now = now or datetime.now(timezone.utc)
    tags = {"Name": f"{contract.alias(name)} {disk.device or disk.volume_id} {now:%Y-%m-%d}", contract.TAG_MANAGED: contract.MANAGED_VALUE,
            contract.TAG_NAME: name, contract.TAG_OWNER: owner, TAG_VOLUME: disk.volume_id, TAG_DEVICE: disk.device,
            TAG_DATE: now.strftime("%Y-%m-%dT%H:%M:%SZ"), TAG_INSTANCE: disk.instance_id}
    made = _call(region, "create_snapshot", VolumeId=disk.volume_id,
                 Description=f"gpubox final snapshot of {name} ({disk.volume_id}, {disk.device})",
                 TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return _parse({**made, "Tags": made.get("Tags") or [{"Key": k, "Value": v} for k, v in tags.items()]}), True


def state(region: str, snapshot_id: str) -> dict[str, Any]:
    found = _call(region, "describe_snapshots", SnapshotIds=[snapshot_id])["Snapshots"]
    return found[0] if found else {"State": "missing"}


def wait(region: str, snapshot_id: str, out: TextIO, *, sleep: Callable[[float], None] = time.sleep,
         poll: float = POLL_SECONDS) -> None:
    """Until the snapshot is completed; a failed or vanished one stops the destroy before anything is deleted."""
    while True:
        current = state(region, snapshot_id)
        status = current.get("State", "?")
        if status == "completed":
            return
        if status != "pending":
            detail = f": {current['StateMessage']}" if current.get("StateMessage") else ""
            raise GpuboxError(f"Snapshot {snapshot_id} of {current.get('VolumeId', 'the disk')} is {status}{detail}. Nothing was deleted: "
                              "the instance and its disk are as they were.",
                              "Run the same destroy again (it takes a new snapshot), or, to delete the disk for good, add --no-snapshot.")
        print(f"  snapshot {snapshot_id}: {current.get('Progress') or '0%'} done; waiting (Ctrl-C is safe: nothing is deleted yet, "
              "and the next destroy picks it up)", file=out, flush=True)
        sleep(poll)


def wait_running(region: str, instance_id: str) -> None:
    aws.wait(_client(region), "instance_running", region, InstanceIds=[instance_id], WaiterConfig={"Delay": 3, "MaxAttempts": 100})


def keep(region: str, name: str, owner: str, disk_list: list[Disk], out: TextIO,
         stopped: dict[str, datetime | None] | None = None) -> list[Snapshot]:
    """Start every disk's snapshot, then wait for all of them: termination may follow only after this returns.
    `stopped`: when each instance (by ID) last stopped; only a snapshot started since then is reused."""
    started = []
    for disk in disk_list:
        snap, new = start(region, name, owner, disk, stopped=(stopped or {}).get(disk.instance_id))
        verb = "Taking" if new else "Reusing the snapshot an earlier destroy started:"
        print(f"{verb} {snap.snapshot_id} of {disk.volume_id} ({disk.size_gb} GB, {disk.device or '?'})", file=out, flush=True)
        started.append(snap)
    for snap in started:
        wait(region, snap.snapshot_id, out)
    return started


def resolve(region: str, name: str, owner: str, wanted: str) -> Snapshot:
    """--from-snapshot: `latest` (the newest completed root-disk snapshot of this workstation) or an ID of the caller's."""
    if wanted == "latest":
        found = [snap for snap in listed(region, owner, name) if snap.state == "completed" and _is_root(snap)]
        if not found:
            raise GpuboxError(f"You have no completed snapshot of workstation '{name}' in {region}.",
                              "See `python runner.py snapshots list`, or pass --from-snapshot snap-... (or --name of the workstation it was).")
        return found[-1]
    if not wanted.startswith("snap-"):
        raise GpuboxError(f"--from-snapshot {wanted} is neither 'latest' nor a snapshot ID (snap-...).",
                          "See `python runner.py snapshots list` for yours.", exit_code=2)
    mine = [snap for snap in listed(region, owner) if snap.snapshot_id == wanted]
    if not mine:
        raise GpuboxError(f"Snapshot {wanted} in {region} is not one of your gpubox snapshots.",
                          "See `python runner.py snapshots list` for yours (IT: restore it in the console).")
    if mine[0].state != "completed":
        raise GpuboxError(f"Snapshot {wanted} is {mine[0].state}, not completed yet.", "Wait for it (`python runner.py snapshots list`), then retry.")
    return mine[0]


def _is_root(snap: Snapshot) -> bool:
    return snap.device in ("/dev/xvda", "/dev/sda1", "")


def region_of(search: list[str], name: str, owner: str, wanted: str) -> tuple[str, str] | None:
    """(region, snapshot ID) of --from-snapshot among these regions: the newest completed root-disk
    snapshot of the workstation for `latest`, or where the caller's snapshot of that ID is."""
    candidates = []
    for where in search:
        for snap in listed(where, owner, name if wanted == "latest" else None):
            if (wanted == "latest" and snap.state == "completed" and _is_root(snap)) or snap.snapshot_id == wanted:
                candidates.append((snap.started or datetime.min.replace(tzinfo=timezone.utc), where, snap.snapshot_id))
    return max(candidates)[1:] if candidates else None


def kept_with(region: str, root: Snapshot, owner: str) -> tuple[list[Snapshot], list[Snapshot]]:
    """The other disks the same destroy kept (same instance, or for older snapshots started close to
    the root's): (those to restore, newest completed one per device; those that cannot be, e.g. pending)."""
    def same_destroy(snap: Snapshot) -> bool:
        if root.instance_id or snap.instance_id:
            return snap.instance_id == root.instance_id
        return bool(root.started and snap.started and abs(snap.started - root.started) <= SAME_DESTROY)

    others = [snap for snap in listed(region, owner, root.name)
              if snap.snapshot_id != root.snapshot_id and not _is_root(snap) and same_destroy(snap)]
    newest: dict[str, Snapshot] = {}
    for snap in others:  # oldest first: the newest of each device wins
        if snap.state == "completed" and snap.device and snap.device != root.device:
            newest[snap.device] = snap
    # A disk with no completed snapshot (pending, failed, or no device to put it on) is not restored: said, with how.
    left = [snap for snap in others if snap.device not in newest]
    return sorted(newest.values(), key=lambda snap: snap.device), left


def attach_hint(region: str, snap: Snapshot, name: str) -> str:
    """How to bring back by hand a disk a restore did not."""
    return (f"{snap.snapshot_id} ({snap.device or 'device ?'}, {snap.size_gb} GB, {snap.state}): once completed, "
            f"aws ec2 create-volume --region {region} --snapshot-id {snap.snapshot_id} --availability-zone <the zone of "
            f"{contract.alias(name)}>, then aws ec2 attach-volume --region {region} --volume-id <that volume> "
            f"--instance-id <its instance> --device {snap.device or '/dev/sdf'}")


def _is_restore_image_of(image: dict[str, Any], snapshot_id: str, owner: str) -> bool:
    """The caller's own image (gpubox:owner) whose disk is made from that snapshot: a name alone
    proves nothing (anyone who may register images may register that name first)."""
    return (_tags(image).get(contract.TAG_OWNER) == owner and image.get("State", "available") != "deregistered"
            and any(mapping.get("Ebs", {}).get("SnapshotId") == snapshot_id for mapping in image.get("BlockDeviceMappings", [])))


def restore_images(region: str, snapshot_id: str, owner: str) -> list[dict[str, Any]]:
    """The owner's restore images of the snapshot."""
    found = _call(region, "describe_images", Owners=["self"],
                  Filters=[{"Name": "name", "Values": [f"{RESTORE_PREFIX}{snapshot_id}*"]}])["Images"]
    return [image for image in found if owner and _is_restore_image_of(image, snapshot_id, owner)]


def restore_image(region: str, snap: Snapshot, tags: dict[str, str]) -> str:
    """An image whose root disk is the snapshot: EC2 boots a root volume made from a snapshot only
    through an image. One of the caller's own (tags' gpubox:owner) that maps this snapshot is
    reused; otherwise one is registered (under a name of its own when another image holds the
    plain one) and tagged. `snapshots prune` removes it with its snapshot."""
    owner = tags[contract.TAG_OWNER]
    mine = restore_images(region, snap.snapshot_id, owner)
    if mine:
        return mine[0]["ImageId"]
    taken = _call(region, "describe_images", Owners=["self"],
                  Filters=[{"Name": "name", "Values": [f"{RESTORE_PREFIX}{snap.snapshot_id}"]}])["Images"]
    image_name = f"{RESTORE_PREFIX}{snap.snapshot_id}" + (f"-{uuid.uuid4().hex[:8]}" if taken else "")
    device = snap.device or "/dev/xvda"
    tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
    made = _call(region, "register_image", Name=image_name, Description=f"gpubox: boots the disk of {snap.name} ({snap.snapshot_id})",
                 Architecture="x86_64", RootDeviceName=device, VirtualizationType="hvm", EnaSupport=True,
                 BlockDeviceMappings=[{"DeviceName": device, "Ebs": {"SnapshotId": snap.snapshot_id, "VolumeType": "gp3",
                                                                     "DeleteOnTermination": True}}],
                 TagSpecifications=[{"ResourceType": "image", "Tags": tag_list}])
    # AWS tags the image as it is registered (the IAM policy lets nobody but IT add an owner tag
    # later); moto, the suite's EC2, drops TagSpecifications here, so only there are they added after.
    [described] = _call(region, "describe_images", ImageIds=[made["ImageId"]])["Images"] or [{}]
    if _tags(described).get(contract.TAG_OWNER) != owner:
        _call(region, "create_tags", Resources=[made["ImageId"]], Tags=tag_list)
    return made["ImageId"]


def to_prune(snapshots: list[Snapshot], keep_count: int) -> list[Snapshot]:
    """All but the `keep_count` newest of each disk (device) of each workstation (the list is oldest
    first): a destroy keeps one snapshot per disk, so counting per workstation would delete part of
    the newest destroy's."""
    if keep_count < 0:
        raise GpuboxError(f"--keep {keep_count} is negative.", "Give how many of each workstation's snapshots to keep (0 or more).", exit_code=2)
    # Only completed ones count as kept (an `error` one holds nothing; it goes too), and a pending one
    # is never deleted: a destroy may be waiting on it.
    by_name: dict[tuple[str, str], list[Snapshot]] = {}
    for snap in snapshots:
        if snap.state == "completed":
            by_name.setdefault((snap.name, snap.device), []).append(snap)
    doomed = [snap for items in by_name.values() for snap in (items[:-keep_count] if keep_count else items)]
    doomed += [snap for snap in snapshots if snap.state not in USABLE]
    return sorted(doomed, key=lambda snap: (snap.name, snap.started or datetime.min.replace(tzinfo=timezone.utc)))


def delete(region: str, doomed: list[Snapshot]) -> None:
    """Delete these snapshots (the caller's: see listed) and the caller's own restore images of
    them, which would keep them. Another owner's image is never deregistered: AWS then refuses to
    delete the snapshot it uses, and says so."""
    for snap in doomed:
        for image in restore_images(region, snap.snapshot_id, snap.owner):
            _call(region, "deregister_image", ImageId=image["ImageId"])
        _call(region, "delete_snapshot", SnapshotId=snap.snapshot_id)
