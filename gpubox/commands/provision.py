"""`provision` and `configure`: reach the workstation (a local container, an SSH host, or an EC2
instance this machine provisioned) and apply site.yml to it."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TextIO

from gpubox import ansible, bake, contract, data_access, guard, hardening_port, role_rules, ssh, targets, validate, which, workstation
from gpubox.cloud import admission, aws, billing, data_role, deadman, ec2, images, launch, ownership, records
from gpubox.cloud.spec import DEFAULTS
from gpubox.commands import env
from gpubox.errors import GpuboxError

MIN_DISK_GB = validate.MIN_DISK_GB


@dataclass(frozen=True)
class Target:
    """Where the workstation is and how to set it up: the options provision and configure share.
    Neither `local` nor `host`: an EC2 workstation (by `name`)."""

    local: bool = False
    host: str | None = None
    name: str | None = None
    release: str = "debian12"
    user: str | None = None
    port: int = 22
    key: Path | None = None
    region: str | None = None
    idle_stop: int | None = None
    trust_local_cas: bool = False
    frameworks: tuple[str, ...] | list[str] | None = None  # --framework, repeatable (gpubox/commands/env.py)


@dataclass(frozen=True)
class Cloud:
    """What `provision` creates on EC2."""

    # None: not given on the command line (the spec's default for a new workstation; an existing
    # one keeps its own). A value is compared with an existing instance (launch.changes).
    instance_type: str | None = DEFAULTS.instance_type
    ami: str = ""
    disk_gb: int | None = DEFAULTS.disk_gb
    # The options given on the command line, to compare with an existing instance; None: those
    # not None above (a config file's instance_type chooses for a new workstation only).
    given: frozenset[str] | None = None
    spot: bool = DEFAULTS.spot
    allow_cidr: str | None = None
    connect: str | None = None
    dry_run: bool = False
    yes: bool = False
    os: str = DEFAULTS.os
    deadman_minutes: int = DEFAULTS.deadman_minutes
    data: list[str] | None = None  # --data s3://BUCKET[/PREFIX][:rw], repeatable
    from_snapshot: str | None = None  # --from-snapshot latest|snap-...
    image: str = ""  # --image latest|latest:SERIES|ami-...: a baked image (gpubox/bake.py)
    tag: list[str] | None = None  # --tag KEY=VALUE, repeatable: the team policy's required tags (gpubox/cloud/policy.py)
    plan_ref: str = ""  # --plan-ref: the approved plan page's reference, kept as the gpubox:plan tag


@dataclass(frozen=True)
class Configured:
    connection: ssh.Connection
    run: ansible.RunResult
    instance_id: str = ""
    instance_state: str = ""


@dataclass(frozen=True)
class Ec2Plan:
    request: ec2.Request
    target: Target
    cloud: Cloud
    grants: tuple[data_access.Grant, ...] = ()
    image_roles: str | None = None  # the roles digest of a baked --image; None: not from one

    @property
    def lines(self) -> list[str]:
        return ec2.plan(self.request) + data_role.plan_lines(self.request.name, self.request.region, self.grants)

    @property
    def open_to_everyone(self) -> bool:
        """A range given that admits more than a /8 of public addresses (validate.too_open)."""
        return self.cloud.allow_cidr is not None and any(validate.too_open(net) for net in validate.cidrs(self.request.allow_cidr))

    @property
    def private_ranges(self) -> list[str]:
        """Ranges given with no public address, for an instance reached at its public address: SSH
        from them only arrives through a VPN or peering that keeps private source addresses."""
        if self.cloud.allow_cidr is None or self.cloud.connect:
            return []
        return [str(net) for net in validate.cidrs(self.request.allow_cidr) if validate.private(net)]


def parse_connect(value: str | None) -> tuple[str, int]:
    """--connect HOST:PORT as (host, port); ("", 0) when not given."""
    if not value:
        return "", 0
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GpuboxError(f"--connect {value} is not HOST:PORT.", "Example: --connect 127.0.0.1:2222", exit_code=2)
    return host, int(port)


def idle_stop_vars(minutes: int | None) -> dict[str, int]:
    """--idle-stop as the autostop role's input, checked by the role's own rules (gpubox/role_rules.py)."""
    if minutes is None:
        return {}
    if minutes < 0:
        raise GpuboxError(f"--idle-stop {minutes} is negative.", "Give minutes (60 is the default), or 0 to never stop.", exit_code=2)
    extra = {contract.IDLE_MINUTES_VAR: minutes}
    role_rules.check(extra, {contract.IDLE_MINUTES_VAR: "--idle-stop"})
    return extra


def _extravars(target: Target, *, trust_local_cas: bool) -> dict:
    return {**(workstation.local_extravars() if trust_local_cas else {}), **idle_stop_vars(target.idle_stop),
            **env.framework_vars(target.frameworks)}


def ec2_connection(target: Target) -> ssh.Connection:
    """An EC2 workstation provisioned from this machine: reached as recorded, or at its current address."""
    if not target.name:
        raise GpuboxError("Which workstation? Pass --local, --host HOST, or --name of an EC2 workstation.",
                          "See `python runner.py status` for the names.", exit_code=2)
    name = targets.check_name(target.name)
    record = records.load_record(name)
    if not record:
        raise GpuboxError(f"This machine did not provision a workstation named '{name}'.",
                          "Provision it with `python runner.py provision --name NAME`, or use --host for any SSH host.")
    host, port = parse_connect(record.get("connect"))
    if not host:
        host, port = aws.one(ownership.place(name, target.region).region, name).public_ip, 22
    return ssh.Connection(alias=targets.alias(name), address=host, port=port, user=target.user or record.get("user", "ubuntu"),
                          key=Path(record.get("key") or ssh.ensure_key(target.key)))


def connection(target: Target, out: TextIO, image: str = "") -> ssh.Connection:
    """How to reach the target; a local container is started (or found) first, from `image` if given."""
    if not target.local and not target.host:
        return ec2_connection(target)
    if target.local:
        name = target.name or which.new_name(None, which.configured_default())
        print(f"Starting local workstation '{name}' ({image or target.release + ' container'})...", file=out, flush=True)
        return targets.local(name, target.release, target.key, image=image)
    name = target.name or targets.derive_name(target.host)
    return targets.host(name, target.host, target.user or "admin", target.port, target.key)


def _as_owner_after(reached: ssh.Connection, run: ansible.RunResult, tags: str | None) -> None:
    """A per-instance run is a whole provision: from now on `ssh gpubox-NAME` is the data scientist."""
    if tags == bake.PER_INSTANCE_TAGS and run.ok:
        ssh.write_config_entry(dataclasses.replace(reached, user=workstation.owner_name()))


def configure(target: Target, out: TextIO, *, tags: str | None = None, check: bool = False, image: str = "") -> Configured:
    """Apply site.yml to an existing workstation (`configure`, and `provision --local/--host`);
    `image`: a baked local image NAME the container starts from (provision --local --image)."""
    baked = bake.local_image(image) if image else None
    if image and baked is None:
        raise GpuboxError(f"There is no baked local image '{image}'.",
                          f"Build it: python runner.py image build --local --name {image}", exit_code=2)
    reached = connection(target, out, baked.ref if baked else "")
    if baked:
        tags = env.image_tags(bake.provision_tags(baked.labels.get(f"{bake.LABEL}.roles", ""), out, baked.ref), target.frameworks)
    extravars = _extravars(target, trust_local_cas=target.local or target.trust_local_cas)
    if target.host and not target.local:
        kept = guard.extravars(reached)
        if kept:
            print(f"{reached.user} is in none of the groups sshd will admit; its own group '{reached.user}' is added "
                  f"for this run ({guard.ALLOW_GROUPS_VAR}: {kept[guard.ALLOW_GROUPS_VAR]}) so it keeps its login.",
                  file=out, flush=True)
        extravars |= kept
    print(f"Configuring {reached.alias} ({reached.user}@{reached.address}:{reached.port}) with site.yml", file=out, flush=True)
    run = workstation.configure(reached, out, extravars=extravars, tags=tags, check=check)
    _as_owner_after(reached, run, tags)
    return Configured(reached, run)


def check_cloud(target: Target, cloud: Cloud) -> tuple[str, str]:
    """Every option that reaches AWS, checked the same for a dry run and a real one; returns the
    name and the normalised --allow-cidr ("" when it is to be looked up)."""
    name = which.new_name(target.name)
    validate.region(aws.region_name(target.region))
    validate.instance_type(cloud.instance_type or DEFAULTS.instance_type)
    validate.disk_gb(DEFAULTS.disk_gb if cloud.disk_gb is None else cloud.disk_gb)
    validate.minutes(cloud.deadman_minutes, "--deadman-minutes", low=deadman.MIN_MINUTES, high=deadman.MAX_MINUTES)
    images.check_os(cloud.os)
    if cloud.ami:
        validate.ami(cloud.ami)
    if cloud.from_snapshot and (cloud.ami or not validate.snapshot_choice(cloud.from_snapshot)):
        raise GpuboxError(f"--from-snapshot {cloud.from_snapshot} is neither 'latest' nor a snapshot ID (snap- and hex digits), "
                          "or comes with --ami.", "Use --from-snapshot latest or snap-0123456789abcdef0, without --ami.", exit_code=2)
    if target.idle_stop is not None:
        idle_stop_vars(target.idle_stop)
    hardening_port.check_ec2()
    parse_connect(cloud.connect)
    allow = ""
    if cloud.allow_cidr is not None:  # one range, or several joined by commas (--allow-cidr is repeatable)
        networks = validate.cidrs(cloud.allow_cidr)
        wide = [str(network) for network in networks if validate.too_open(network)]
        if wide and not cloud.yes:
            raise GpuboxError(f"--allow-cidr {cloud.allow_cidr} is {', '.join(wide)}: the whole internet (or more of it than "
                              "a /8 holds) could try to log in over SSH.",
                              "Narrow --allow-cidr to your office or VPN range, or re-run with --yes to confirm.", exit_code=2)
        allow = ",".join(str(network) for network in networks)
    return name, allow


def check_start(cloud: Cloud) -> None:
    """--image, --ami and --from-snapshot each choose what the disk starts from: one at most
    (`plan` checks the same)."""
    if cloud.image and cloud.ami:
        raise GpuboxError("--image and --ami both name the image to start from.", "Pass one of them.", exit_code=2)
    if cloud.image and cloud.from_snapshot:
        raise GpuboxError(f"--image {cloud.image} and --from-snapshot {cloud.from_snapshot} both choose the disk to start from.",
                          "Use one: --from-snapshot brings back your disk; --image starts a clean workstation.", exit_code=2)


def plan_ec2(target: Target, cloud: Cloud) -> Ec2Plan:
    """Check the options and say what provision would create; a dry run creates nothing, not even a key."""
    name, allow = check_cloud(target, cloud)
    check_start(cloud)
    grants = data_access.parse_all(cloud.data)
    if cloud.dry_run:
        allow = allow or "203.0.113.1/32 (your public address, looked up at run time)"
        key = target.key or ssh.ssh_dir() / "gpubox_ed25519"
    else:
        allow = allow or ec2.caller_cidr()
        key = ssh.ensure_key(target.key)
    # A stale record (its instance gone) gives way to --region rather than contradict it.
    stale = ec2.follow_region(name, target.region, write=not cloud.dry_run) if target.region else None
    if stale:
        print(stale, file=sys.stderr)
    region = target.region if stale else ownership.place(name, target.region).region
    from_snapshot = cloud.from_snapshot or ""
    if from_snapshot and not target.region and not records.load_record(name).get("region"):
        # The record went with the destroy; the snapshot it kept is found in AWS, in whichever region it is.
        region, from_snapshot = ec2.restore_region(name, from_snapshot) or (region, from_snapshot)
    given = cloud.given if cloud.given is not None else frozenset(
        option for option in launch.COMPARED if getattr(cloud, option) is not None)
    request = ec2.Request(name=name, region=region, instance_type=cloud.instance_type or DEFAULTS.instance_type,
                          disk_gb=DEFAULTS.disk_gb if cloud.disk_gb is None else cloud.disk_gb, spot=cloud.spot, given=given,
                          approved=cloud.yes, allow_cidr=allow, ami=cloud.ami, key=key,
                          owner=workstation.owner_name(), os=cloud.os, deadman_minutes=cloud.deadman_minutes, grants=grants,
                          from_snapshot=from_snapshot)
    request = admission.gate(request, idle_stop=target.idle_stop, tags=cloud.tag, plan_ref=cloud.plan_ref, dry_run=cloud.dry_run)
    if cloud.image:
        region = request.region
        owner = ownership.caller(region).owner if cloud.image.startswith("latest") else ""
        found = images.baked_image(region, owner, cloud.image)
        request = dataclasses.replace(request, ami=found.image_id)
        return Ec2Plan(request=request, target=target, cloud=cloud, grants=grants, image_roles=found.tags.get("gpubox:roles", ""))
    return Ec2Plan(request=request, target=target, cloud=cloud, grants=grants)


def preview(plan: Ec2Plan, *, dry_run: bool) -> list[str]:
    """What the run does, from AWS's state: create the workstation, or find it (and start or change
    it); the lines a dry run and a real run print first. A change it refuses is refused here too."""
    request = plan.request
    heading = "Would create:" if dry_run else "Creating:"
    try:
        existing = next(iter(aws.workstations(request.region, request.name)), None)
    except GpuboxError as problem:
        return [f"{heading} (unless it exists: could not check AWS: {problem.message})", *(f"  - {line}" for line in plan.lines)]
    if existing is None:
        return [heading, *(f"  - {line}" for line in plan.lines)]
    found = launch.changes(request, existing, request.given)
    launch.check_changes(request, [change for change in found if change.refusal], approved=True)
    if found:
        action = "change it as below (after your confirmation), and run it"
    elif existing.state in ("stopped", "stopping"):
        action = "start it"
    else:
        action = "use it as it is"
    verb = "Would find" if dry_run else "Finding"
    lines = [f"{verb} workstation '{request.name}' ({existing.instance_id}, {existing.instance_type}, {existing.state}) in "
             f"{request.region}, and {action}:"]
    lines += [f"  - {change.line()}{'' if request.approved or not dry_run else ' (needs --yes)'}" for change in found]
    return lines + [f"  - {line}" for line in plan.lines if line.startswith(("security group", "dead-man"))]


def confirm(question: str) -> bool:
    """Ask on a terminal; without one (a script, a CI job) the answer is no."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def provision_ec2(plan: Ec2Plan, out: TextIO, ask: Callable[[str], bool] = confirm) -> Configured:
    """Create (or find, and change as confirmed) the instance, remember how to reach it, and
    configure it over SSH."""
    request, target, cloud = plan.request, plan.target, plan.cloud
    if cloud.spot:
        print("note: a spot instance can be interrupted by AWS at two minutes' notice; save your work often.", file=out)
    with billing.on_failure(request):
        try:
            created = ec2.provision(request, out)
        except launch.Unconfirmed as unconfirmed:
            if not ask(f"{unconfirmed.message.removesuffix(' Nothing was changed.')} Make the change?"):
                raise
            request = dataclasses.replace(request, approved=True)
            created = ec2.provision(request, out)
        connect_host, connect_port = parse_connect(cloud.connect)
        address = connect_host or created["public_ip"]
        if not address:
            raise GpuboxError(f"Instance {created['instance_id']} has no public address.",
                              "Reach it some other way and pass --connect HOST:PORT.")
        user = target.user or images.OPERATING_SYSTEMS[cloud.os].login_user
        records.save_record(request.name, {**records.load_record(request.name), "instance_id": created["instance_id"],
                                       "connect": cloud.connect or "", "user": user, "key": str(request.key)})
        reached = ssh.Connection(alias=targets.alias(request.name), address=address, port=connect_port or 22, user=user, key=request.key)
        print(f"\nInstance {created['instance_id']} is {created['state']}; configuring it over SSH ({address}:{reached.port}).",
              file=out, flush=True)
        tags = None if plan.image_roles is None else env.image_tags(bake.provision_tags(plan.image_roles, out, request.ami),
                                                                           target.frameworks)
        extravars = _extravars(target, trust_local_cas=target.trust_local_cas)
        result = workstation.configure(reached, out, extravars=extravars, tags=tags)
        _as_owner_after(reached, result, tags)
        launch.mark_configured(request.region, created["instance_id"])
    return Configured(reached, result, instance_id=created["instance_id"], instance_state=created["state"])
