"""The EC2 side of `runner.py provision` and `destroy`: run playbooks/provision.yml (or
teardown.yml) through ansible-runner, remember how the workstation is reached, and hand over to
site.yml. Capacity shortages are retried in the region's other zones.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gpubox import ansible, aws, contract, ssh
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
    owner: str
    # The instance profile to attach (provision --data; gpubox/data_role.py); "" leaves the instance's as it is.
    instance_profile: str = ""


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
        f"{request.ami or 'latest Ubuntu 24.04'}, {request.disk_gb} GB encrypted gp3, IMDSv2 only (hop limit 1), stops on shutdown",
    ]


def _run(playbook: str, extravars: dict, label: str, out: TextIO) -> ansible.RunResult:
    return ansible.run_playbook(playbook, [], extravars=extravars, label=label, out=out)


def provision(request: Request, out: TextIO) -> dict:
    """Create or find the instance; returns {'instance_id', 'public_ip', 'state', 'changed'}."""
    result, created = _provision_in(request, "", out)
    if not result.ok and _no_capacity(result):
        # Capacity is per zone: try the others that offer the type before giving up.
        zones = _zones_offering(request)
        out.write(f"No capacity for {request.instance_type} there; trying zones {', '.join(zones)}.\n")
        for zone in zones:
            result, created = _provision_in(request, zone, out)
            if result.ok or not _no_capacity(result):
                break
    if not result.ok:
        raise _failure(result, request.region)
    return created


def _provision_in(request: Request, zone: str, out: TextIO) -> tuple[ansible.RunResult, dict]:
    """One run of the provision playbook (zone "" lets AWS pick); the instance it reports, if any."""
    result_file = config_dir() / "workstations" / f".{request.name}.result.json"
    result_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    result = _run(PROVISION, provision_extravars(request, zone, result_file), f"provision-{request.name}", out)
    if not result.ok:
        return result, {}
    created = json.loads(result_file.read_text())
    result_file.unlink()
    return result, created


def provision_extravars(request: Request, zone: str, result_file: Path) -> dict:
    """The variables playbooks/provision.yml takes (zone "" lets AWS pick)."""
    return {
        "gpubox_name": request.name, "gpubox_region": request.region, "gpubox_instance_type": request.instance_type,
        "gpubox_disk_gb": request.disk_gb, "gpubox_spot": request.spot, "gpubox_allow_cidr": request.allow_cidr,
        "gpubox_public_key_file": str(ssh.public_key_path(request.key)), "gpubox_owner_name": request.owner,
        "gpubox_result_file": str(result_file), "gpubox_ami": request.ami, "gpubox_zone": zone,
        "gpubox_instance_profile": request.instance_profile,
    }


def _no_capacity(result: ansible.RunResult) -> bool:
    return "InsufficientInstanceCapacity" in result.failures[0].message


def _failure(result: ansible.RunResult, region: str) -> GpuboxError:
    """AWS's failure as plain words and the fix, with the task and the full log."""
    problem = aws.explain(result.failures[0].message, region)
    return GpuboxError(f"{problem.message}\n    (task '{result.failures[0].task}'; full log: {result.log_path})", problem.fix)


def _zones_offering(request: Request) -> list[str]:
    offered = aws.client("ec2", request.region).describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [request.instance_type]}])
    return sorted(item["Location"] for item in offered["InstanceTypeOfferings"])


def teardown(name: str, region: str, out: TextIO) -> None:
    result = _run(TEARDOWN, {"gpubox_name": name, "gpubox_region": region}, f"destroy-{name}", out)
    if not result.ok:
        raise _failure(result, region)
