"""EC2 workstations through boto3: find them by their gpubox tags, show, stop, start, list what a
destroy deletes, check an account before money is spent, and turn AWS errors into advice.

Only resources tagged gpubox:managed=true and gpubox:name=<name> are ever looked at or touched.
boto3 honours AWS_ENDPOINT_URL, which the tests point at moto on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gpubox import contract, prices, validate
from gpubox.errors import GpuboxError

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# On-demand prices from the bundled table (us-east-1); other regions differ by a few percent,
# so status calls them estimates.
HOURLY_PRICE = prices.ON_DEMAND
# vCPU quota codes of EC2's "G and VT" instance families (g4dn, g5, g6).
GPU_QUOTAS = {"on-demand": "L-DB2E81BA", "spot": "L-3819A6DF"}
VCPUS = {"xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48, "16xlarge": 64, "24xlarge": 96, "48xlarge": 192}


def region_name(region: str | None) -> str:
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or contract.DEFAULT_REGION


def client(service: str, region: str | None):
    try:
        import boto3  # noqa: PLC0415  (imported late: `runner.py --help` must work without it)
    except ImportError as exc:
        raise GpuboxError("boto3 is not installed in this Python.", "Run `pip install -r requirements.txt` and use .venv/bin/python.") from exc
    return boto3.client(service, region_name=region_name(region))


def explain(error: Exception | str, region: str | None = None) -> GpuboxError:
    """A plain message and the fix for the AWS failures people actually meet."""
    text = str(error)
    code_match = re.search(r"\(([A-Za-z.]+)\) when calling", text)
    code = getattr(error, "response", {}).get("Error", {}).get("Code") if not isinstance(error, str) else None
    code = code or (code_match.group(1) if code_match else "")
    where = region_name(region)
    if "Unable to locate credentials" in text or "NoCredentialsError" in text or "no credentials" in text.lower():
        return GpuboxError("No AWS credentials found.",
                           "Run `aws configure` (or `aws sso login`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                           "then `python runner.py doctor`.")
    if code in ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException"):
        return GpuboxError("AWS rejected your credentials (they are wrong or expired).",
                           "Refresh them (`aws sso login` or a new access key), then `python runner.py doctor`.")
    if code == "VcpuLimitExceeded" or "VcpuLimitExceeded" in text:
        return GpuboxError(f"Your AWS account may not run this many GPU vCPUs in {where} (VcpuLimitExceeded).",
                           "Ask for more: aws service-quotas request-service-quota-increase --service-code ec2 "
                           f"--quota-code {GPU_QUOTAS['on-demand']} --desired-value 8 --region {where} "
                           "(for --spot use quota code L-3819A6DF). Approval takes hours to days.")
    if code in ("InsufficientInstanceCapacity", "Unsupported") or "InsufficientInstanceCapacity" in text:
        return GpuboxError(f"AWS has no capacity for this instance type in that zone of {where} right now.",
                           "gpubox already tried the region's other zones; try again later, another --instance-type "
                           "(g5.xlarge, g6.xlarge) or another --region.")
    permission = re.search(r"not authorized to perform: ([a-z0-9-]+:[A-Za-z0-9]+)", text)
    if code.startswith("UnauthorizedOperation") or code.startswith("AccessDenied") or permission:
        action = permission.group(1) if permission else "the EC2 action"
        return GpuboxError(f"Your AWS identity is not allowed to call {action}.",
                           f"Ask your AWS administrator to allow {action} (see docs/iam.md), then retry.")
    return GpuboxError(f"AWS refused the request: {text.strip()[:500]}", "Run `python runner.py doctor` for a check of your account.")


@dataclass
class Workstation:
    name: str
    instance_id: str
    state: str
    instance_type: str
    public_ip: str
    launched: datetime | None
    owner: str
    zone: str
    volumes: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    region: str = ""
    root_device: str = ""
    # Why it last changed state (EC2's StateReason code, e.g. Server.SpotInstanceShutdown, and
    # StateTransitionReason, which carries the time of a stop), and "spot" for a spot instance.
    state_reason: str = ""
    transition_reason: str = ""
    lifecycle: str = ""
    # Volumes whose DeleteOnTermination is off: terminating the instance leaves them.
    outliving: list[str] = field(default_factory=list)

    def hours_up(self, now: datetime | None = None) -> float:
        if self.state != "running" or not self.launched:
            return 0.0
        return ((now or datetime.now(timezone.utc)) - self.launched).total_seconds() / 3600

    def hourly_price(self) -> float | None:
        return HOURLY_PRICE.get(self.instance_type)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def workstations(region: str | None, name: str | None = None) -> list[Workstation]:
    """gpubox workstations in the region, read from AWS (never from a local cache)."""
    filters = [*contract.managed_filters(name), {"Name": "instance-state-name", "Values": LIVE_STATES}]
    try:
        reservations = client("ec2", region).describe_instances(Filters=filters)["Reservations"]
    except Exception as exc:  # noqa: BLE001  (botocore's errors are many classes; explain() reads them all)
        raise explain(exc, region) from exc
    found = []
    for reservation in reservations:
        for instance in reservation["Instances"]:
            tags = _tags(instance)
            found.append(Workstation(
                name=tags.get(contract.TAG_NAME, "?"), instance_id=instance["InstanceId"], state=instance["State"]["Name"],
                instance_type=instance["InstanceType"], public_ip=instance.get("PublicIpAddress", ""),
                launched=instance.get("LaunchTime"), owner=tags.get(contract.TAG_OWNER, ""),
                zone=instance.get("Placement", {}).get("AvailabilityZone", ""),
                volumes=[mapping["Ebs"]["VolumeId"] for mapping in instance.get("BlockDeviceMappings", []) if "Ebs" in mapping],
                tags=tags, region=region_name(region), root_device=instance.get("RootDeviceName", ""),
                state_reason=instance.get("StateReason", {}).get("Code", ""), transition_reason=instance.get("StateTransitionReason", ""),
                lifecycle=instance.get("InstanceLifecycle", ""),
                outliving=[mapping["Ebs"]["VolumeId"] for mapping in instance.get("BlockDeviceMappings", [])
                           if "Ebs" in mapping and not mapping["Ebs"].get("DeleteOnTermination", True)],
            ))
    return sorted(found, key=lambda item: item.name)


def instance_state(region: str | None, instance_id: str) -> str:
    """The state of one instance by its ID ("" when AWS does not know it, e.g. long terminated)."""
    try:
        reservations = client("ec2", region).describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as exc:  # noqa: BLE001
        if "InvalidInstanceID" in str(exc):
            return ""
        raise explain(exc, region) from exc
    return next((item["State"]["Name"] for reservation in reservations for item in reservation["Instances"]), "")


def one(region: str | None, name: str) -> Workstation:
    found = workstations(region, name)
    if not found:
        raise GpuboxError(f"No gpubox workstation named '{name}' in {region_name(region)}.",
                          "See `python runner.py status` for the ones there are, or pass --region.")
    return found[0]


def _change_state(region: str | None, name: str, call: str, waiter: str) -> Workstation:
    workstation = one(region, name)
    ec2 = client("ec2", region)
    try:
        getattr(ec2, call)(InstanceIds=[workstation.instance_id])
        ec2.get_waiter(waiter).wait(InstanceIds=[workstation.instance_id], WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, region) from exc
    return one(region, name)


def stop(region: str | None, name: str) -> Workstation:
    """Stop the instance (its disk stays) and wait until it is stopped."""
    return _change_state(region, name, "stop_instances", "instance_stopped")


def start(region: str | None, name: str) -> Workstation:
    return _change_state(region, name, "start_instances", "instance_running")


def destroy_plan(region: str | None, name: str) -> dict[str, list[str]]:
    """Everything tagged for this workstation that a destroy deletes."""
    ec2 = client("ec2", region)
    tagged = contract.managed_filters(name)
    try:
        instances = workstations(region, name)
        groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
        keys = ec2.describe_key_pairs(Filters=tagged)["KeyPairs"]
    except GpuboxError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, region) from exc
    return {
        "instances": [f"{item.instance_id} ({item.instance_type}, {item.state})" for item in instances],
        "volumes": [f"{volume} (root disk of {item.instance_id})" for item in instances for volume in item.volumes],
        "security groups": [f"{group['GroupId']} ({group['GroupName']})" for group in groups],
        "key pairs": [key["KeyName"] for key in keys],
    }


def tagged_owners(region: str | None, name: str) -> list[tuple[str, str]]:
    """(kind, gpubox:owner) of the security groups and key pairs tagged for the workstation."""
    ec2 = client("ec2", region)
    tagged = contract.managed_filters(name)
    try:
        groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
        keys = ec2.describe_key_pairs(Filters=tagged)["KeyPairs"]
    except Exception as exc:  # noqa: BLE001
        raise explain(exc, region) from exc
    return ([("security group", _tags(group).get(contract.TAG_OWNER, "")) for group in groups]
            + [("key pair", _tags(key).get(contract.TAG_OWNER, "")) for key in keys])


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def doctor(region: str | None, instance_type: str, key: Path | None) -> list[Check]:
    """Checks before any money is spent; each failed one carries the exact fix."""
    where = validate.region(region_name(region))
    validate.instance_type(instance_type)
    checks: list[Check] = []
    try:
        identity = client("sts", region).get_caller_identity()
        checks.append(Check("AWS credentials", True, f"account {identity['Account']}, {identity['Arn']}"))
    except Exception as exc:  # noqa: BLE001
        problem = explain(exc, region)
        checks.append(Check("AWS credentials", False, problem.message, problem.fix))
        return checks  # nothing else can be asked without them
    ec2 = client("ec2", region)
    try:
        zones = [zone["ZoneName"] for zone in ec2.describe_availability_zones()["AvailabilityZones"]]
        checks.append(Check("region", True, f"{where}: zones {', '.join(zones)}"))
        offered = ec2.describe_instance_type_offerings(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}])["InstanceTypeOfferings"]
        offered_zones = sorted(item["Location"] for item in offered)
        checks.append(Check("instance type", bool(offered_zones),
                            f"{instance_type} offered in {', '.join(offered_zones)}" if offered_zones else f"{instance_type} is not offered in {where}",
                            "" if offered_zones else "Pick another --instance-type (g4dn.xlarge, g5.xlarge, g6.xlarge) or --region."))
    except Exception as exc:  # noqa: BLE001
        problem = explain(exc, region)
        checks.append(Check("region", False, problem.message, problem.fix))
    needed = VCPUS.get(instance_type.split(".")[-1], 4)
    for market, code in GPU_QUOTAS.items():
        try:
            value = client("service-quotas", region).get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
            enough = value >= needed
            checks.append(Check(f"GPU vCPU quota ({market})", enough or market == "spot", f"{value:.0f} vCPUs; {instance_type} needs {needed}",
                                "" if enough else f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
                                f"--desired-value {needed} --region {where}"))
        except Exception as exc:  # noqa: BLE001  (the quota API is optional: say so, do not fail)
            checks.append(Check(f"GPU vCPU quota ({market})", True, f"could not be read ({str(exc)[:120]}); "
                                f"check it with: aws service-quotas get-service-quota --service-code ec2 --quota-code {code}"))
    ssh_client = shutil.which("ssh")
    checks.append(Check("ssh client", bool(ssh_client), ssh_client or "no `ssh` on PATH",
                        "" if ssh_client else "Install OpenSSH (apt install openssh-client; on Windows, the OpenSSH client feature)."))
    if key and key.exists():
        mode = stat.S_IMODE(key.stat().st_mode)
        checks.append(Check("key permissions", mode & 0o077 == 0, f"{key} has mode {mode:04o}",
                            "" if mode & 0o077 == 0 else f"chmod 600 {key}"))
    return checks
