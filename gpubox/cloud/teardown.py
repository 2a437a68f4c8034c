"""Destroying one EC2 workstation, in Python, for both doors: `runner.py destroy` and IT's
playbooks/teardown.yml (through the gpubox.workstation.ec2_workstation module) run this code.

The order is what protects the data (gpubox/cloud/snapshots.py): the instance is stopped, every disk's
final snapshot is taken, tagged and waited for until completed, and only then is anything
terminated. Afterwards only resources tagged gpubox:managed=true and gpubox:name=<name> are
deleted: the instance (and a persistent spot request behind it, which would otherwise launch a
new, empty instance), the security group, the key pair and the data-access role.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TextIO

from gpubox import contract
from gpubox.cloud import aws, cleanup, data_role, launch, ownership, snapshots
from gpubox.errors import GpuboxError

# A security group stays in use for a while after its instance terminated (its network interface
# is released asynchronously): EC2 answers DependencyViolation until then.
GROUP_RETRIES = 20
GROUP_RETRY_SECONDS = 3.0
SPOT_STATES = ["open", "active", "disabled"]


@dataclass(frozen=True)
class Found:
    """What a destroy of the name would act on, read from AWS (nothing changed)."""

    name: str
    region: str
    owner: str  # whose the final snapshots are: the instance's gpubox:owner, else the caller's
    instances: list[aws.Workstation]
    disks: list[snapshots.Disk]
    resources: dict[str, list[str]]


@dataclass
class Destroyed:
    kept: list[snapshots.Snapshot] = field(default_factory=list)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def find(region: str, name: str, me: ownership.Caller, *, any_owner: bool = False) -> Found:
    """Everything tagged for the workstation; refused (before any change) when any of it is
    someone else's and `any_owner` (IT) is not set."""
    instances = aws.workstations(region, name)
    owners = [("instance", item.owner) for item in instances] + aws.tagged_owners(region, name) + data_role.tagged_owners(region, name)
    for kind, owner in owners:
        ownership.require_mine(kind, name, owner, me, region, any_owner=any_owner)
    resources = aws.destroy_plan(region, name)
    disks = snapshots.disks(region, instances)
    stays = ": NOT deleted (DeleteOnTermination off): it stays, detached, and bills until you delete it"
    resources["volumes"] = [f"{disk.volume_id} ({disk.size_gb} GB, {'root' if disk.root else 'data'} disk {disk.device} of "
                            f"{disk.instance_id}){'' if disk.deleted else stays}" for disk in disks]
    resources.update(data_role.destroy_listing(region, name))
    owner = instances[0].owner if instances and instances[0].owner else me.owner
    return Found(name, region, owner, instances, disks, resources)


def final_snapshots(region: str, name: str, owner: str, disks: list[snapshots.Disk], out: TextIO) -> list[snapshots.Snapshot]:
    """Stop the instance (a consistent disk), then snapshot every disk and wait for completion;
    a snapshot an earlier destroy started since the last stop is reused, not taken twice."""
    if not disks:
        return []
    for item in aws.workstations(region, name):
        if item.state == "pending":  # EC2 refuses to stop an instance that is still starting
            snapshots.wait_running(region, item.instance_id)
        if item.state in ("pending", "running", "stopping"):
            print(f"Stopping {name} so that its disk is snapshotted as it is on disk...", file=out, flush=True)
            aws.stop(region, name)
    stopped = {item.instance_id: cleanup.stopped_since(item) for item in aws.workstations(region, name)}
    return snapshots.keep(region, name, owner, disks, out, stopped)


def _delete_group(ec2: launch.Ec2, group_id: str) -> None:
    for attempt in range(GROUP_RETRIES):
        try:
            ec2.call("delete_security_group", tolerate="InvalidGroup.NotFound", GroupId=group_id)
            return
        except GpuboxError as problem:  # a terminating instance still holds it for a while: DependencyViolation
            if problem.__cause__ is None or aws.code_of(problem.__cause__) != "DependencyViolation" or attempt == GROUP_RETRIES - 1:
                raise
        time.sleep(GROUP_RETRY_SECONDS)


def delete_resources(region: str, name: str) -> dict[str, list[str]]:
    """Terminate the workstation's instances (with their DeleteOnTermination disks), cancel the
    spot requests behind them, then delete its security groups and key pairs; returns what went."""
    ec2 = launch.Ec2(region)
    tagged = contract.managed_filters(name)
    instance_ids = [item.instance_id for item in aws.workstations(region, name)]
    deleted: dict[str, list[str]] = {"instances": [], "spot requests": [], "security groups": [], "key pairs": []}
    if instance_ids:
        # Matched by instance, so only this workstation's requests go (cancelled first: a persistent
        # request would launch a new instance once this one is terminated).
        requests = ec2.call("describe_spot_instance_requests", Filters=[{"Name": "state", "Values": SPOT_STATES}])["SpotInstanceRequests"]
        doomed = [item["SpotInstanceRequestId"] for item in requests if item.get("InstanceId") in instance_ids]
        if doomed:
            ec2.call("cancel_spot_instance_requests", SpotInstanceRequestIds=doomed)
            deleted["spot requests"] = doomed
        ec2.call("terminate_instances", InstanceIds=instance_ids)
        for instance_id in instance_ids:
            ec2.wait("instance_terminated", instance_id)
        deleted["instances"] = instance_ids
    for group in ec2.call("describe_security_groups", Filters=tagged)["SecurityGroups"]:
        _delete_group(ec2, group["GroupId"])
        deleted["security groups"].append(group["GroupId"])
    for key in ec2.call("describe_key_pairs", Filters=tagged)["KeyPairs"]:
        ec2.call("delete_key_pair", KeyName=key["KeyName"])
        deleted["key pairs"].append(key["KeyName"])
    return deleted


def destroy(found: Found, out: TextIO, *, snapshot: bool = True) -> Destroyed:
    """Final snapshots (unless `snapshot` is False: the disks go for good), then everything tagged
    for the workstation, the data-access role last (its profile is in use until the instance is gone)."""
    done = Destroyed()
    if snapshot:
        done.kept = final_snapshots(found.region, found.name, found.owner, found.disks, out)
    done.deleted = delete_resources(found.region, found.name)
    note = data_role.delete(found.region, found.name)
    if note:
        done.notes.append(note)
    elif found.resources.get("IAM role") or found.resources.get("instance profile"):
        done.deleted["data-access role"] = found.resources.get("IAM role", []) + found.resources.get("instance profile", [])
    return done

