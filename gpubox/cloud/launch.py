"""Create (or find) one EC2 workstation for its owner: key pair, security group, instance.

Order matters for a shared account: everything that already carries the name is checked before
anything is changed, so a name owned by someone else is refused with their key material, rules,
instance state and tags untouched. The launch carries a client token derived from the name and
its security group, so two provisions of one name racing each other get one instance, and the
instance carries its dead-man's switch (gpubox/cloud/deadman.py) from its first boot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from gpubox import contract, prices, validate
from gpubox.cloud import aws, deadman, images, ownership, snapshots
from gpubox.cloud.spec import DEFAULTS
from gpubox.errors import GpuboxError

SSH_PORT = DEFAULTS.ssh_port
# How long a launch waits before it looks again for a racing launch of the same name.
SETTLE_SECONDS = 3.0
# IMDSv2 only; a hop limit of 1 keeps containers behind a bridge on the host from reaching the
# metadata service, and with it the instance role (docs/workstations.md, "Data without keys on the box").
METADATA = {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}
# The instance's tags in its metadata: the budget job's warning reaches the workstation this way
# (the autostop checker reads it). EC2 allows it only when every tag key is one the metadata path
# can hold: letters, digits and + - = . , _ : @, no space and no "/".
METADATA_TAG_KEY = re.compile(r"[A-Za-z0-9+\-=.,_:@]+")


def metadata_options(tag_keys: Iterable[str]) -> dict[str, Any]:
    """IMDSv2 only, hop limit 1, and the tags readable where every key allows it (a team's tag key
    with a space leaves them unreadable rather than failing the launch)."""
    readable = all(METADATA_TAG_KEY.fullmatch(key) and key not in (".", "..", "_index") for key in tag_keys)
    return {**METADATA, "InstanceMetadataTags": "enabled" if readable else "disabled"}
# A profile IAM has just made is not yet visible to EC2 for some seconds.
PROFILE_RETRIES = 10
PROFILE_RETRY_SECONDS = 3.0
WAIT = {"Delay": 3, "MaxAttempts": 200}
VOLUME_TYPE = DEFAULTS.volume_type
# Powering off (the dead-man's switch, autostop, `poweroff`) stops the instance: the disk stays.
SHUTDOWN_BEHAVIOUR = DEFAULTS.shutdown_behaviour


@dataclass(frozen=True)
class Spec:
    """What to launch; validated by gpubox/validate.py before it gets here."""

    name: str
    region: str
    instance_type: str
    disk_gb: int
    spot: bool
    allow_cidr: str
    ami: str
    os: str
    public_key: str
    login_name: str
    deadman_minutes: int
    instance_profile: str = ""  # provision --data (gpubox/cloud/data_role.py); "" leaves the instance's as it is
    snapshot_id: str = ""  # provision --from-snapshot: the root disk is made from it (gpubox/cloud/snapshots.py)
    # provision --from-snapshot: (device, snapshot ID, GB) of each data disk the same destroy kept.
    data_disks: tuple[tuple[str, str, int], ...] = ()
    # The team policy's tags (cost-center, project ...) and the approved plan's reference: on the
    # instance and its disks, in the launch call itself, where IAM's aws:RequestTag conditions see them.
    request_tags: tuple[tuple[str, str], ...] = ()


# The options an existing instance is compared with (only those the caller gave, from the CLI).
COMPARED = frozenset({"instance_type", "disk_gb"})


@dataclass(frozen=True)
class Change:
    """An option that differs from the existing instance: applied after the owner's confirmation
    (`refusal` empty) or refused with the fix. Never ignored."""

    option: str  # the CLI option: --instance-type, --disk-gb
    current: str
    wanted: str
    how: str  # what the real run does, or why it cannot
    refusal: str = ""  # the fix, when the change cannot be made

    def line(self) -> str:
        verdict = f"refused: {self.how}" if self.refusal else self.how
        return f"{self.option}: {self.current} now, {self.wanted} asked: {verdict}"


def _price(instance_type: str, spot: bool) -> str:
    price = prices.hourly(instance_type, spot)
    return f"~${price:.3f}/h" if price is not None else "price unknown"


class Wanted(Protocol):
    """What is asked of a workstation (a Spec, or the CLI's request before it becomes one)."""

    name: str
    region: str
    instance_type: str
    disk_gb: int


def changes(spec: Wanted, existing: aws.Workstation, given: Collection[str] = COMPARED) -> list[Change]:
    """How the asked options differ from the existing instance (reads AWS, changes nothing)."""
    found = []
    spot = existing.lifecycle == "spot"
    if "instance_type" in given and spec.instance_type != existing.instance_type:
        prices_now = f"{_price(existing.instance_type, spot)} now, {_price(spec.instance_type, spot)} after"
        if spot:
            found.append(Change("--instance-type", existing.instance_type, spec.instance_type,
                                "EC2 cannot change the type of a spot instance",
                                f"Keep {existing.instance_type} (leave --instance-type out), or destroy it (a snapshot is kept) and "
                                f"`provision --name {spec.name} --from-snapshot latest --instance-type {spec.instance_type} --spot`."))
        else:
            found.append(Change("--instance-type", existing.instance_type, spec.instance_type,
                                f"stop it, change the type, start it ({prices_now})"))
    if "disk_gb" in given:
        root = next((disk for disk in snapshots.disks(spec.region, [existing]) if disk.root), None)
        if root and spec.disk_gb != root.size_gb:
            if spec.disk_gb < root.size_gb:
                found.append(Change("--disk-gb", f"{root.size_gb} GB", f"{spec.disk_gb} GB", "an EBS disk cannot shrink",
                                    f"Leave --disk-gb out (or give {root.size_gb} or more) to keep the {root.size_gb} GB disk."))
            else:
                found.append(Change("--disk-gb", f"{root.size_gb} GB", f"{spec.disk_gb} GB",
                                    f"grow the root disk {root.volume_id} (the file system grows at the next boot; "
                                    f"~${(spec.disk_gb - root.size_gb) * prices.GP3_GB_MONTH:.2f}/month more)"))
    return found


class Unconfirmed(GpuboxError):
    """A change to an existing workstation that its owner has not confirmed yet (--yes, or a prompt)."""


def check_changes(spec: Wanted, found: list[Change], approved: bool) -> None:
    """Refuse (exit 2, before anything is changed) a change that cannot be made, or one the owner
    has not confirmed."""
    for change in found:
        if change.refusal:
            raise GpuboxError(f"Workstation '{spec.name}' exists with {change.option} {change.current}; {change.wanted} was asked, "
                              f"but {change.how}. Nothing was changed.", change.refusal, exit_code=2)
    if found and not approved:
        raise Unconfirmed(f"Workstation '{spec.name}' exists and differs from what was asked: "
                          + "; ".join(change.line() for change in found) + ". Nothing was changed.",
                          "Re-run with --yes to make the change, or leave those options out to keep the workstation as it is.",
                          exit_code=2)


def apply_changes(ec2: Ec2, existing: aws.Workstation, found: list[Change], out: TextIO) -> None:
    """Make the confirmed changes: the type needs the instance stopped (the provision starts it
    again); a disk grows while it runs."""
    for change in found:
        if change.option == "--instance-type":
            if existing.state in ("pending", "running", "stopping"):
                print(f"Stopping {existing.instance_id} to change its type to {change.wanted}...", file=out, flush=True)
                if existing.state != "stopping":
                    ec2.call("stop_instances", InstanceIds=[existing.instance_id])
                ec2.wait("instance_stopped", existing.instance_id)
            ec2.call("modify_instance_attribute", InstanceId=existing.instance_id, InstanceType={"Value": change.wanted})
            print(f"Changed {existing.instance_id} from {change.current} to {change.wanted}.", file=out, flush=True)
        elif change.option == "--disk-gb":
            root = next(disk for disk in snapshots.disks(ec2.region, [existing]) if disk.root)
            ec2.call("modify_volume", VolumeId=root.volume_id, Size=int(change.wanted.split()[0]))
            print(f"Growing {root.volume_id} from {change.current} to {change.wanted}.", file=out, flush=True)


@dataclass(frozen=True)
class Prepared:
    """What a provision found and checked before it creates anything."""

    spec: Spec  # with the image resolved for a new instance
    existing: aws.Workstation | None
    changes: tuple[Change, ...] = ()


def prepare(spec: Spec, me: ownership.Caller, ec2: Ec2, *, given: Collection[str] = COMPARED, approved: bool = False) -> Prepared:
    """Everything that can fail without side effects, before anything is created: the name's
    owner, the existing instance and how it differs, the image of a new one."""
    check_name_is_free_for(spec, me, ec2)
    existing = next(iter(aws.workstations(spec.region, spec.name)), None)
    if existing:
        found = changes(spec, existing, given)
        check_changes(spec, found, approved)
        return Prepared(spec, existing, tuple(found))
    image = images.by_id(spec.region, spec.ami) if spec.ami else images.latest(spec.region, spec.os)
    return Prepared(dataclasses.replace(spec, ami=image.image_id), None)


def undo(steps: list[tuple[str, Callable[[], Any]]], out: TextIO) -> None:
    """Remove what this run created, newest first, after a failure before launch; what cannot be
    removed is named (it is tagged: `destroy` finds it)."""
    for what, step in reversed(steps):
        try:
            step()
            print(f"Removed {what} (created by this run before it failed).", file=out, flush=True)
        except GpuboxError as problem:
            print(f"Could not remove {what}: {problem.message} `python runner.py destroy` removes it.", file=out, flush=True)


@dataclass(frozen=True)
class Launched:
    instance_id: str
    public_ip: str
    state: str
    changed: bool


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def _tag_list(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in values.items()]


def resource_tags(name: str, me: ownership.Caller) -> dict[str, str]:
    return {contract.TAG_MANAGED: contract.MANAGED_VALUE, contract.TAG_NAME: name, contract.TAG_OWNER: me.owner}


class Ec2:
    """The boto3 calls a provision makes, each turned into advice when AWS refuses."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.client = aws.client("ec2", region)

    def call(self, operation: str, *, tolerate: str = "", **arguments: Any) -> dict[str, Any]:
        """One EC2 call; `tolerate`: an error code that means another provision got there first
        (the call then returns {})."""
        return aws.call(self.client, operation, self.region, absent=(tolerate,) if tolerate else (), **arguments)

    def key_pairs(self, key_name: str) -> list[dict[str, Any]]:
        return self.call("describe_key_pairs", tolerate="InvalidKeyPair.NotFound", KeyNames=[key_name],
                         IncludePublicKey=True).get("KeyPairs", [])

    def groups(self, group_name: str) -> list[dict[str, Any]]:
        return self.call("describe_security_groups", Filters=[{"Name": "group-name", "Values": [group_name]}])["SecurityGroups"]

    def wait(self, waiter: str, instance_id: str) -> None:
        aws.wait(self.client, waiter, self.region, InstanceIds=[instance_id], WaiterConfig=WAIT)


def check_name_is_free_for(spec: Spec, me: ownership.Caller, ec2: Ec2) -> None:
    """Refuse, before any change, a name whose key pair, security group or instance is someone
    else's (or not gpubox's at all)."""
    resource = contract.alias(spec.name)
    found = [("key pair", item) for item in ec2.key_pairs(resource)] + [("security group", item) for item in ec2.groups(resource)]
    for what, item in found:
        tags = _tags(item)
        if tags.get(contract.TAG_MANAGED) != contract.MANAGED_VALUE:
            raise GpuboxError(f"A {what} named {resource} already exists in {spec.region} and gpubox did not create it. Nothing was changed.",
                              "Pick another --name (or ask whoever made it to rename it).")
        ownership.require_mine(what, spec.name, ownership.owner_tag(tags), me, spec.region)
    for item in aws.workstations(spec.region, spec.name):
        ownership.require_mine("instance", spec.name, item.owner, me, spec.region)


def _same_key(current: str, wanted: str) -> bool:
    """Key type and base64 blob; comments differ between an upload and what AWS gives back."""
    return current.split()[:2] == wanted.split()[:2]


def ensure_key_pair(spec: Spec, me: ownership.Caller, ec2: Ec2) -> bool:
    """The workstation's key pair with the owner's key; True when this call created it anew."""
    resource = contract.alias(spec.name)
    existing = ec2.key_pairs(resource)
    if existing and (not existing[0].get("PublicKey") or _same_key(existing[0]["PublicKey"], spec.public_key)):
        return False
    if existing:  # the owner's own key changed (a new laptop): the next launch must carry the new one
        ec2.call("delete_key_pair", KeyName=resource)
    made = ec2.call("import_key_pair", tolerate="InvalidKeyPair.Duplicate", KeyName=resource, PublicKeyMaterial=spec.public_key.encode(),
             TagSpecifications=[{"ResourceType": "key-pair", "Tags": _tag_list(resource_tags(spec.name, me))}])
    return bool(made) and not existing


def _ssh_rule(network: validate.Network) -> dict[str, Any]:
    ranges = ({"Ipv6Ranges": [{"CidrIpv6": str(network), "Description": "SSH for gpubox"}]} if network.version == 6
              else {"IpRanges": [{"CidrIp": str(network), "Description": "SSH for gpubox"}]})
    return {"IpProtocol": "tcp", "FromPort": SSH_PORT, "ToPort": SSH_PORT, **ranges}


def _sources(permission: dict[str, Any]) -> set[str]:
    return ({item["CidrIp"] for item in permission.get("IpRanges", [])}
            | {item["CidrIpv6"] for item in permission.get("Ipv6Ranges", [])})


def ensure_security_group(spec: Spec, me: ownership.Caller, ec2: Ec2, made: list[str] | None = None) -> str:
    """The workstation's group, admitting SSH from the given ranges only (other rules are removed);
    a group this call created is added to `made`."""
    resource = contract.alias(spec.name)
    networks = validate.cidrs(spec.allow_cidr)  # one range, or several joined by commas
    if not ec2.groups(resource):
        # A provision of the same name racing this one may create it first: then both use that one.
        created = ec2.call("create_security_group", tolerate="InvalidGroup.Duplicate", GroupName=resource,
                           Description=f"gpubox workstation {spec.name} - SSH from {', '.join(map(str, networks))} only",
                           TagSpecifications=[{"ResourceType": "security-group", "Tags": _tag_list(resource_tags(spec.name, me))}])
        if created and made is not None:
            made.append(created["GroupId"])
    group = ec2.groups(resource)[0]
    group_id, permissions = group["GroupId"], group.get("IpPermissions", [])
    wanted = {str(network) for network in networks}
    present: set[str] = set()
    for permission in permissions:
        ssh_from_ranges = (permission.get("IpProtocol") == "tcp" and permission.get("FromPort") == SSH_PORT
                           and permission.get("ToPort") == SSH_PORT and not permission.get("UserIdGroupPairs")
                           and not permission.get("PrefixListIds"))
        if ssh_from_ranges and _sources(permission) <= wanted:
            present |= _sources(permission)
            continue
        stripped = {key: value for key, value in permission.items() if key in ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges",
                                                                              "UserIdGroupPairs", "PrefixListIds")}
        ec2.call("revoke_security_group_ingress", GroupId=group_id, IpPermissions=[stripped])
    missing = [_ssh_rule(network) for network in networks if str(network) not in present]
    if missing:
        ec2.call("authorize_security_group_ingress", tolerate="InvalidPermission.Duplicate", GroupId=group_id, IpPermissions=missing)
    return group_id


def client_token(spec: Spec, group_id: str, zone: str) -> str:
    """Equal for every provision of this name against this security group (a destroy deletes the
    group, so a later re-provision launches anew), distinct per zone tried."""
    return hashlib.sha256(f"gpubox/{spec.region}/{spec.name}/{group_id}/{zone}".encode()).hexdigest()[:64]


def _subnet(ec2: Ec2, zone: str) -> dict[str, str]:
    if not zone:
        return {}
    subnets = ec2.call("describe_subnets", Filters=[{"Name": "availability-zone", "Values": [zone]},
                                                    {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return {"SubnetId": subnets[0]["SubnetId"]} if subnets else {}


def root_disk(spec: Spec) -> dict[str, Any]:
    """A new encrypted disk, or one made from a snapshot (encrypted as its snapshot is: EC2 takes no
    Encrypted flag next to a SnapshotId)."""
    if spec.snapshot_id:
        return {"SnapshotId": spec.snapshot_id, "VolumeSize": spec.disk_gb, "VolumeType": VOLUME_TYPE, "DeleteOnTermination": True}
    return {"VolumeSize": spec.disk_gb, "VolumeType": VOLUME_TYPE, "Encrypted": True, "DeleteOnTermination": True}


def run_instance(spec: Spec, me: ownership.Caller, ec2: Ec2, group_id: str, zone: str) -> str:
    image = images.by_id(spec.region, spec.ami) if spec.ami else images.latest(spec.region, spec.os)
    disk_tags = {**dict(spec.request_tags), **resource_tags(spec.name, me)}
    instance_tags = {"Name": contract.alias(spec.name), **disk_tags, contract.TAG_USER: spec.login_name,
                     **deadman.tags(spec.deadman_minutes)}
    market = ({"InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {
        "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}} if spec.spot else {})
    launched = ec2.call(
        "run_instances", ImageId=image.image_id, InstanceType=spec.instance_type, MinCount=1, MaxCount=1,
        KeyName=contract.alias(spec.name), ClientToken=client_token(spec, group_id, zone),
        UserData=deadman.user_data(spec.deadman_minutes),
        NetworkInterfaces=[{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [group_id], **_subnet(ec2, zone)}],
        BlockDeviceMappings=[{"DeviceName": image.root_device, "Ebs": root_disk(spec)},
                             *({"DeviceName": device, "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": size, "VolumeType": VOLUME_TYPE,
                                                              "DeleteOnTermination": True}}
                               for device, snapshot_id, size in spec.data_disks)],
        MetadataOptions=metadata_options(instance_tags),
        InstanceInitiatedShutdownBehavior=SHUTDOWN_BEHAVIOUR,
        TagSpecifications=[{"ResourceType": "instance", "Tags": _tag_list(instance_tags)},
                           {"ResourceType": "volume", "Tags": _tag_list(disk_tags)}]
        # The spot request is gpubox's too: the teardown may cancel only tagged ones (IAM).
        + ([{"ResourceType": "spot-instances-request", "Tags": _tag_list(resource_tags(spec.name, me))}] if spec.spot else []),
        **market, **({"IamInstanceProfile": {"Name": spec.instance_profile}} if spec.instance_profile else {}),
    )
    return launched["Instances"][0]["InstanceId"]


def _profile_not_visible_yet(problem: GpuboxError) -> bool:
    """EC2's code for a profile it cannot see yet (only calls that name one are retried on it)."""
    return problem.__cause__ is not None and aws.code_of(problem.__cause__) == "InvalidParameterValue"


def with_new_profile(call: Callable[[], Any], sleep: Callable[[float], None] = time.sleep) -> Any:
    """A call that names a profile made moments ago: EC2 calls it invalid until IAM's change reaches it."""
    for attempt in range(PROFILE_RETRIES):
        try:
            return call()
        except GpuboxError as problem:
            if attempt == PROFILE_RETRIES - 1 or not _profile_not_visible_yet(problem):
                raise
            sleep(PROFILE_RETRY_SECONDS)
    raise AssertionError("unreachable")


def attach_profile(ec2: Ec2, instance_id: str, profile: str) -> bool:
    """Associate the profile with an existing instance, or replace the one it has; True when changed."""
    associations = ec2.call("describe_iam_instance_profile_associations",
                            Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    live = [item for item in associations if item.get("State") in ("associating", "associated")]
    if live and live[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] == profile:
        return False
    if live:
        with_new_profile(lambda: ec2.call("replace_iam_instance_profile_association", AssociationId=live[0]["AssociationId"],
                                          IamInstanceProfile={"Name": profile}))
    else:
        with_new_profile(lambda: ec2.call("associate_iam_instance_profile", InstanceId=instance_id,
                                          IamInstanceProfile={"Name": profile}))
    return True


def enforce_metadata(ec2: Ec2, instance: dict[str, Any]) -> bool:
    """Put IMDSv2-only and hop limit 1 back on an existing instance (someone may have relaxed them);
    True when changed. Every option is given: a partial change may reset the others (moto does)."""
    current = instance.get("MetadataOptions", {})
    wanted = metadata_options(tag["Key"] for tag in instance.get("Tags", []))
    if all(current.get(key) == value for key, value in wanted.items()):
        return False
    ec2.call("modify_instance_metadata_options", InstanceId=instance["InstanceId"], **wanted)
    return True


def _no_capacity(problem: GpuboxError) -> bool:
    return problem.__cause__ is not None and aws.code_of(problem.__cause__) in aws.CAPACITY


def zones_offering(ec2: Ec2, instance_type: str) -> list[str]:
    offered = ec2.call("describe_instance_type_offerings", LocationType="availability-zone",
                       Filters=[{"Name": "instance-type", "Values": [instance_type]}])["InstanceTypeOfferings"]
    return sorted(item["Location"] for item in offered)


def launch_somewhere(spec: Spec, me: ownership.Caller, ec2: Ec2, group_id: str, out: TextIO) -> str:
    """Launch where AWS picks; capacity is per zone, so on a shortage try the others that offer the type."""
    try:
        return run_instance(spec, me, ec2, group_id, "")
    except GpuboxError as problem:
        if not _no_capacity(problem):
            raise
        last = problem
    zones = zones_offering(ec2, spec.instance_type)
    out.write(f"No capacity for {spec.instance_type} there; trying zones {', '.join(zones)}.\n")
    for zone in zones:
        try:
            return run_instance(spec, me, ec2, group_id, zone)
        except GpuboxError as problem:
            if not _no_capacity(problem):
                raise
            last = problem
    raise last


def keep_one(spec: Spec, mine: str, ec2: Ec2, settle: float = SETTLE_SECONDS) -> str:
    """Two provisions that raced past the client token (or an endpoint that ignores it) may have
    launched two instances: every one of them keeps the oldest (by launch time, then ID) and
    terminates its own if that is not it. Looked at twice, so a launch that became visible only
    after the first look is still seen."""
    for attempt in range(2):
        if attempt:
            time.sleep(settle)
        live = aws.workstations(spec.region, spec.name)
        if not live:  # not visible yet
            continue
        keeper = min(live, key=lambda item: (item.launched.isoformat() if item.launched else "", item.instance_id)).instance_id
        if mine != keeper:
            ec2.call("terminate_instances", InstanceIds=[mine])
            return keeper
    return mine


def provision(spec: Spec, me: ownership.Caller, out: TextIO, on_launch: Callable[[str], None], *,
              prepared: Prepared | None = None) -> Launched:
    """Find the caller's workstation of this name (changing it as confirmed, starting it if
    stopped) or launch it. Every check comes first (prepare); a failure before launch removes the
    key pair and security group this run created."""
    ec2 = Ec2(spec.region)
    prepared = prepared or prepare(spec, me, ec2)
    spec = prepared.spec
    created: list[tuple[str, Callable[[], Any]]] = []
    try:
        resource = contract.alias(spec.name)
        if ensure_key_pair(spec, me, ec2):
            created.append((f"key pair {resource}", lambda: ec2.call("delete_key_pair", KeyName=resource)))
        groups: list[str] = []
        try:
            group_id = ensure_security_group(spec, me, ec2, groups)
        finally:
            created += [(f"security group {group}", lambda group=group: ec2.call("delete_security_group", GroupId=group))
                        for group in groups]
        launched = "" if prepared.existing else with_new_profile(lambda: launch_somewhere(spec, me, ec2, group_id, out))
    except BaseException:
        undo(created, out)  # nothing was launched: nothing of this run is left behind
        raise
    changed = True
    if prepared.existing:
        instance_id = prepared.existing.instance_id
        on_launch(instance_id)
        apply_changes(ec2, prepared.existing, list(prepared.changes), out)
        state = aws.instance_state(spec.region, instance_id) if prepared.changes else prepared.existing.state
        if state == "stopping":
            ec2.wait("instance_stopped", instance_id)
        if state in ("stopping", "stopped"):
            ec2.call("start_instances", InstanceIds=[instance_id])
        else:
            changed = bool(prepared.changes)
    else:
        instance_id = keep_one(spec, launched, ec2)
        on_launch(instance_id)
    ec2.wait("instance_running", instance_id)
    [running] = [item for reservation in ec2.call("describe_instances", InstanceIds=[instance_id])["Reservations"]
                 for item in reservation["Instances"]]
    if prepared.existing:
        changed = enforce_metadata(ec2, running) or changed
        if spec.instance_profile:
            changed = attach_profile(ec2, instance_id, spec.instance_profile) or changed
    return Launched(instance_id, running.get("PublicIpAddress", ""), running["State"]["Name"], changed)


def mark_configured(region: str, instance_id: str) -> None:
    """site.yml has run to the end: the instance's own marker disarmed the switch; say so in AWS too."""
    Ec2(region).call("create_tags", Resources=[instance_id], Tags=[{"Key": contract.TAG_CONFIGURED, "Value": "true"}])
