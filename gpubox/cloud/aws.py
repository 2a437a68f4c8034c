"""EC2 workstations through boto3: find them by their gpubox tags, show, stop, start, list what a
destroy deletes, check an account before money is spent, and turn AWS errors into advice.

Only resources tagged gpubox:managed=true and gpubox:name=<name> are ever looked at or touched.
boto3 honours AWS_ENDPOINT_URL, which the tests point at moto on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gpubox import contract, prices, validate
from gpubox.errors import GpuboxError

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
# What EC2 answers for an instance ID it does not know (any more).
INSTANCE_UNKNOWN = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")
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
    try:  # making a client reads the profile and region, which can fail too
        return boto3.client(service, region_name=region_name(region))
    except sdk_errors() as exc:
        raise failure(exc, region, f"a {service} client") from exc


def sdk_errors() -> tuple[type[Exception], ...]:
    """The exceptions an AWS call raises: AWS's refusals (ClientError, which carries the error code)
    and the SDK's own failures (BotoCoreError: no credentials, no connection, a waiter's failure).
    Imported late for the same reason as boto3 in client()."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415
    from botocore.parsers import ResponseParserError  # noqa: PLC0415  (an answer botocore could not read; not a BotoCoreError)
    return (ClientError, BotoCoreError, ResponseParserError)


def code_of(error: Exception) -> str:
    """AWS's error code (AccessDenied, InvalidKeyPair.NotFound, ...); for a failure the SDK raised
    itself, its class name (NoCredentialsError, EndpointConnectionError, ...)."""
    response = getattr(error, "response", None) or getattr(error, "last_response", None) or {}
    return (response.get("Error") or {}).get("Code", "") or type(error).__name__


NO_CREDENTIALS = ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "ProfileNotFound",
                  "TokenRetrievalError", "SSOTokenLoadError", "UnauthorizedSSOTokenError", "InvalidConfigError")
REJECTED = ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "ExpiredToken",
            "ExpiredTokenException", "RequestExpired", "InvalidAccessKeyId")
UNREACHABLE = ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError", "ProxyConnectionError",
               "SSLError", "HTTPClientError")
CAPACITY = ("InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported", "SpotMaxPriceTooLow", "InsufficientHostCapacity")
DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "UnauthorizedAccess", "Client.UnauthorizedOperation")
THROTTLED = ("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException")


def failure(error: Exception, region: str | None = None, action: str = "") -> GpuboxError:
    """The plain message and the fix for an AWS failure, chosen by its error code (never by its
    wording, which AWS changes). `action`: what was called, as IAM names it (ec2:RunInstances)."""
    code = code_of(error)
    where = region_name(region)
    operation = getattr(error, "operation_name", "")
    action = action or (f"the {operation} action" if operation else "the AWS action")
    if code in NO_CREDENTIALS:
        return GpuboxError("No AWS credentials found.",
                           "Run `aws configure` (or `aws sso login`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                           "then `python runner.py doctor`.")
    if code in REJECTED:
        return GpuboxError(f"AWS rejected your credentials ({code}: they are wrong or expired).",
                           "Refresh them (`aws sso login` or a new access key), then `python runner.py doctor`.")
    if code in UNREACHABLE:
        return GpuboxError(f"Could not reach AWS in {where} ({code}).",
                           "Check this machine's network and proxy (HTTPS_PROXY), and that the region exists; then retry.")
    if code == "VcpuLimitExceeded":
        return GpuboxError(f"Your AWS account may not run this many GPU vCPUs in {where} (VcpuLimitExceeded).",
                           "Ask for more: aws service-quotas request-service-quota-increase --service-code ec2 "
                           f"--quota-code {GPU_QUOTAS['on-demand']} --desired-value 8 --region {where} "
                           f"(for --spot use quota code {GPU_QUOTAS['spot']}). Approval takes hours to days.")
    if code in CAPACITY:
        return GpuboxError(f"AWS has no capacity for this instance type in that zone of {where} right now ({code}).",
                           "gpubox already tried the region's other zones; try again later, another --instance-type "
                           "(g5.xlarge, g6.xlarge) or another --region.")
    if code in DENIED:
        return GpuboxError(f"Your AWS identity is not allowed to call {action} in {where} ({code}).",
                           f"Ask your AWS administrator to allow {action} (docs/iam.md), then retry.")
    if code in THROTTLED:
        return GpuboxError(f"AWS is throttling this account's calls in {where} ({code}).", "Wait a minute and run the command again.")
    if code == "ResponseParserError":
        return GpuboxError(f"AWS (or the endpoint AWS_ENDPOINT_URL names) sent an answer to {action} in {where} that could not be read.",
                           "Check the endpoint and proxy settings (AWS_ENDPOINT_URL, HTTPS_PROXY), then retry.")
    if code == "WaiterError":
        return GpuboxError(f"Gave up waiting for AWS in {where}: {action} did not reach the state it should.",
                           "Look at it with `python runner.py status`, then run the command again.")
    detail = " ".join(str((getattr(error, "response", None) or {}).get("Error", {}).get("Message", "")).split())[:300]
    return GpuboxError(f"AWS refused {action} in {where} ({code}{': ' + detail if detail else ''}).",
                       "Run `python runner.py doctor` for a check of your account and region.")


def action_name(client: Any, operation: str) -> str:
    """`describe_instances` on an EC2 client -> ec2:DescribeInstances, as IAM and AWS's errors name it."""
    model = client.meta.service_model
    return f"{model.signing_name}:{model.operation_model(client.meta.method_to_api_mapping.get(operation, operation)).name}"


def call(client: Any, operation: str, region: str | None = None, *, absent: tuple[str, ...] = (), **arguments: Any) -> dict[str, Any]:
    """One AWS call. An error whose code is in `absent` (InvalidKeyPair.NotFound, NoSuchEntity,
    InvalidPermission.Duplicate: what the caller takes as "not there" or "already done") returns {};
    every other failure is raised as a GpuboxError with the fix."""
    try:
        return getattr(client, operation)(**arguments)
    except sdk_errors() as exc:
        if code_of(exc) in absent:
            return {}
        raise failure(exc, region, action_name(client, operation)) from exc


def wait(client: Any, waiter: str, region: str | None = None, **arguments: Any) -> None:
    """A boto3 waiter; its failure (a timeout, or a state it cannot leave) raised with the fix."""
    try:
        client.get_waiter(waiter).wait(**arguments)
    except sdk_errors() as exc:
        raise failure(exc, region, f"the wait for {waiter.replace('_', ' ')}") from exc


@contextmanager
def failures(region: str | None, action: str = "") -> Iterator[None]:
    """A block of AWS calls (a multi-step change): any SDK failure leaves it as a GpuboxError."""
    try:
        yield
    except sdk_errors() as exc:
        raise failure(exc, region, action) from exc


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
    reservations = call(client("ec2", region), "describe_instances", region, Filters=filters)["Reservations"]
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
    reservations = call(client("ec2", region), "describe_instances", region, absent=INSTANCE_UNKNOWN,
                        InstanceIds=[instance_id]).get("Reservations", [])
    return next((item["State"]["Name"] for reservation in reservations for item in reservation["Instances"]), "")


def one(region: str | None, name: str) -> Workstation:
    found = workstations(region, name)
    if not found:
        raise GpuboxError(f"No gpubox workstation named '{name}' in {region_name(region)}.",
                          "See `python runner.py status` for the ones there are, or pass --region.")
    return found[0]


def _change_state(region: str | None, name: str, operation: str, waiter: str) -> Workstation:
    workstation = one(region, name)
    ec2 = client("ec2", region)
    call(ec2, operation, region, InstanceIds=[workstation.instance_id])
    wait(ec2, waiter, region, InstanceIds=[workstation.instance_id], WaiterConfig={"Delay": 2, "MaxAttempts": 150})
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
    instances = workstations(region, name)
    groups = call(ec2, "describe_security_groups", region, Filters=tagged)["SecurityGroups"]
    keys = call(ec2, "describe_key_pairs", region, Filters=tagged)["KeyPairs"]
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
    groups = call(ec2, "describe_security_groups", region, Filters=tagged)["SecurityGroups"]
    keys = call(ec2, "describe_key_pairs", region, Filters=tagged)["KeyPairs"]
    return ([("security group", _tags(group).get(contract.TAG_OWNER, "")) for group in groups]
            + [("key pair", _tags(key).get(contract.TAG_OWNER, "")) for key in keys])


@dataclass
class Check:
    """One line of `doctor`. A check that could not run (checked=False) is never ok: its detail says
    why ("could not check: ..."), its fix how to check it by hand."""
    name: str
    ok: bool
    detail: str
    fix: str = ""
    checked: bool = True


def unchecked(name: str, why: str, how: str) -> Check:
    return Check(name, False, f"could not check: {why}", how, checked=False)


def doctor(region: str | None, instance_type: str, key: Path | None) -> list[Check]:
    """Checks before any money is spent; each failed one carries the exact fix."""
    where = validate.region(region_name(region))
    validate.instance_type(instance_type)
    checks: list[Check] = []
    try:
        identity = client("sts", region).get_caller_identity()
        checks.append(Check("AWS credentials", True, f"account {identity['Account']}, {identity['Arn']}"))
    except sdk_errors() as exc:
        problem = failure(exc, region)
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
    except sdk_errors() as exc:
        problem = failure(exc, region)
        checks.append(Check("region", False, problem.message, problem.fix))
    needed = VCPUS.get(instance_type.split(".")[-1], 4)
    for market, code in GPU_QUOTAS.items():
        try:
            value = client("service-quotas", region).get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"]
            enough = value >= needed
            checks.append(Check(f"GPU vCPU quota ({market})", enough or market == "spot", f"{value:.0f} vCPUs; {instance_type} needs {needed}",
                                "" if enough else f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
                                f"--desired-value {needed} --region {where}"))
        except sdk_errors() as exc:  # the quota API is optional: say so, never call it passed
            checks.append(unchecked(f"GPU vCPU quota ({market})", failure(exc, region).message,
                                    f"aws service-quotas get-service-quota --service-code ec2 --quota-code {code} --region {where}"))
    ssh_client = shutil.which("ssh")
    checks.append(Check("ssh client", bool(ssh_client), ssh_client or "no `ssh` on PATH",
                        "" if ssh_client else "Install OpenSSH (apt install openssh-client; on Windows, the OpenSSH client feature)."))
    if key and key.exists():
        mode = stat.S_IMODE(key.stat().st_mode)
        checks.append(Check("key permissions", mode & 0o077 == 0, f"{key} has mode {mode:04o}",
                            "" if mode & 0o077 == 0 else f"chmod 600 {key}"))
    return checks
