"""The EC2 side of `runner.py provision` and `destroy`: run playbooks/provision.yml (or
teardown.yml) through ansible-runner, remember how the workstation is reached, and hand over to
site.yml. Capacity shortages are retried in the region's other zones.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gpubox import ansible, aws, contract, data_role, deadman, images, launch, ownership, snapshots, ssh
from gpubox.data_access import Grant
from gpubox.errors import GpuboxError
from gpubox.paths import config_dir

PROVISION = "playbooks/provision.yml"
TEARDOWN = "playbooks/teardown.yml"


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


def record_path(name: str) -> Path:
    return config_dir() / "workstations" / f"{name}.json"


def save_record(name: str, record: dict) -> None:
    path = record_path(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    path.chmod(0o600)


def load_record(name: str) -> dict:
    path = record_path(name)
    return json.loads(path.read_text()) if path.exists() else {}


def recorded_regions() -> list[str]:
    """Every region this machine provisioned a workstation in (from the records)."""
    folder = record_path("x").parent
    regions = set()
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            regions.add(json.loads(path.read_text()).get("region", ""))
        except (OSError, ValueError):
            continue
    return sorted(region for region in regions if region)


def caller_cidr(timeout: float = 5.0) -> str:
    """This machine's public IPv4 address as a /32, the only source the security group admits."""
    try:
        with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=timeout) as response:
            address = response.read().decode().strip()
    except OSError as exc:
        raise GpuboxError("Could not find this machine's public address to allow SSH from it.",
                          "Pass it yourself: --allow-cidr 203.0.113.7/32 (your office or VPN range).") from exc
    return f"{address}/32"


def plan(request: Request) -> list[str]:
    resource = contract.alias(request.name)
    return [
        f"key pair {resource} (public key of {request.key})",
        f"security group {resource}: SSH (22/tcp) from {request.allow_cidr} only",
        f"instance {resource}: {request.instance_type}{' (spot)' if request.spot else ''} in {request.region}, "
        f"{request.ami or images.describe(request.os)}, {request.disk_gb} GB encrypted gp3"
        f"{f' made from snapshot {request.from_snapshot}' if request.from_snapshot else ''}, IMDSv2 only (hop limit 1), "
        "stops on shutdown",
        f"dead-man's switch: the instance powers itself off {request.deadman_minutes} min after boot unless gpubox has "
        "finished configuring it",
    ]


def from_snapshot(spec: launch.Spec, me: ownership.Caller, wanted: str) -> launch.Spec:
    """A new instance whose root disk is made from the caller's snapshot, booted through an image of it."""
    if aws.workstations(spec.region, spec.name):
        raise GpuboxError(f"Workstation '{spec.name}' still exists in {spec.region}; --from-snapshot makes a new one.",
                          f"Destroy it first (`python runner.py destroy --name {spec.name}`, which keeps a snapshot), "
                          "or pick another --name.")
    snap = snapshots.resolve(spec.region, spec.name, me.owner, wanted)
    image = snapshots.restore_image(spec.region, snap, launch.resource_tags(spec.name, me))
    return dataclasses.replace(spec, ami=image, snapshot_id=snap.snapshot_id, disk_gb=max(spec.disk_gb, snap.size_gb))


def provision(request: Request, out: TextIO) -> dict:
    """Create or find the caller's instance; returns {'instance_id', 'public_ip', 'state', 'changed'}.

    The region and account are recorded before anything is created, and the instance as soon as
    it exists: a provision killed at any point leaves a record that status and destroy follow."""
    me = ownership.caller(request.region)
    spec = launch.Spec(name=request.name, region=request.region, instance_type=request.instance_type, disk_gb=request.disk_gb,
                       spot=request.spot, allow_cidr=request.allow_cidr, ami=request.ami, os=request.os,
                       public_key=ssh.public_key(request.key), login_name=request.owner, deadman_minutes=request.deadman_minutes)
    ownership.check_account(ownership.place(request.name, request.region), me)
    launch.check_name_is_free_for(spec, me, launch.Ec2(request.region))
    if request.from_snapshot:
        spec = from_snapshot(spec, me, request.from_snapshot)
    if request.grants:
        spec = dataclasses.replace(spec, instance_profile=data_role.ensure(request.name, request.region, me.owner, request.grants))
    record = {**load_record(request.name), "region": request.region, "account": me.account}
    save_record(request.name, record)

    def remember(instance_id: str) -> None:
        save_record(request.name, {**record, "instance_id": instance_id})
    launched = launch.provision(spec, me, out, remember)
    return {"instance_id": launched.instance_id, "public_ip": launched.public_ip, "state": launched.state, "changed": launched.changed}


def _run(playbook: str, extravars: dict, label: str, out: TextIO) -> ansible.RunResult:
    return ansible.run_playbook(playbook, [], extravars=extravars, label=label, out=out)


def provision_extravars(request: Request, zone: str, result_file: Path) -> dict:
    """The variables playbooks/provision.yml (IT's door to the same resources) takes (zone "" lets AWS pick)."""
    return {
        "gpubox_name": request.name, "gpubox_region": request.region, "gpubox_instance_type": request.instance_type,
        "gpubox_disk_gb": request.disk_gb, "gpubox_spot": request.spot, "gpubox_allow_cidr": request.allow_cidr,
        "gpubox_public_key_file": str(ssh.public_key_path(request.key)), "gpubox_owner_name": request.owner,
        "gpubox_result_file": str(result_file), "gpubox_ami": request.ami, "gpubox_zone": zone,
        "gpubox_instance_profile": request.instance_profile,
    }


def _failure(result: ansible.RunResult, region: str) -> GpuboxError:
    """AWS's failure as plain words and the fix, with the task and the full log."""
    problem = aws.explain(result.failures[0].message, region)
    return GpuboxError(f"{problem.message}\n    (task '{result.failures[0].task}'; full log: {result.log_path})", problem.fix)


def teardown(name: str, region: str, out: TextIO) -> None:
    # runner.py has taken (or, with --no-snapshot, declined) the final snapshots itself (gpubox/snapshots.py).
    result = _run(TEARDOWN, {"gpubox_name": name, "gpubox_region": region, "gpubox_final_snapshot": False}, f"destroy-{name}", out)
    if not result.ok:
        raise _failure(result, region)
