"""`image build`, `image list` and `image prune`: baked images (gpubox/bake.py) on EC2 and locally.

On EC2 the builder is an ordinary gpubox workstation named bake-SERIES, launched by the same code
as provision (owner tag, dead-man's switch, recorded region), so a build that dies half-way is
seen by `status` and removed by `destroy --name bake-SERIES`. It is converged with no data
scientists, verified, cleaned, stopped, imaged and then destroyed with everything gpubox made for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

from gpubox import ansible, bake, containers, contract, ssh, targets, workstation
from gpubox.cloud import aws, ec2, images, launch, ownership, records
from gpubox.commands import lifecycle, provision
from gpubox.errors import GpuboxError

WAIT = {"Delay": 5, "MaxAttempts": 720}  # an AMI of a 100 GB disk can take an hour


def builder_name(series: str) -> str:
    return targets.check_name(f"bake-{series}"[:31])


@dataclass(frozen=True)
class Built:
    image_id: str
    name: str
    tags: dict[str, str]


def _tag_list(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in values.items()]


def image_tags(series: str, owner: str, proof: bake.Proof, base: str) -> dict[str, str]:
    return {contract.TAG_MANAGED: contract.MANAGED_VALUE, contract.TAG_OWNER: owner, contract.TAG_IMAGE: series,
            **{f"gpubox:{key}": value[:255] for key, value in bake.metadata(proof, base).items()}}


def _converge(reached: ssh.Connection, target: provision.Target, out: TextIO) -> None:
    """site.yml with no data scientists: the image's part of a workstation, nobody's own."""
    extravars = provision.idle_stop_vars(target.idle_stop) | (workstation.local_extravars() if target.trust_local_cas else {})
    run = ansible.run_playbook(workstation.SITE, [reached], extravars=extravars, label=reached.alias, out=out)
    if not run.ok:
        first = run.failures[0]
        raise GpuboxError(f"Converging the builder failed at '{first.task}': {first.message}",
                          f"Full log: {run.log_path}\n     Nothing was imaged; `python runner.py destroy --name "
                          f"{reached.alias.removeprefix(contract.RESOURCE_PREFIX)}` removes the builder.")


def create_image(client: launch.Ec2, instance_id: str, name: str, description: str, tags: dict[str, str]) -> str:
    """The AMI, tagged as it is made (the IAM policy allows CreateImage only into tagged images and snapshots)."""
    specs = [{"ResourceType": kind, "Tags": _tag_list(tags)} for kind in ("image", "snapshot")]
    # moto, the suite's EC2, fails on snapshot tags at creation (an HTTP 500 page that botocore
    # cannot parse; AWS itself takes both): then the image is made with its own tags only.
    made = client.call("create_image", tolerate="ResponseParserError", InstanceId=instance_id, Name=name, Description=description,
                       TagSpecifications=specs)
    if made:
        return made["ImageId"]
    return client.call("create_image", InstanceId=instance_id, Name=name, Description=description,
                       TagSpecifications=specs[:1])["ImageId"]


def build_ec2(series: str, target: provision.Target, cloud: provision.Cloud, out: TextIO) -> Built:
    """Launch a builder, converge, verify and clean it, image it, and destroy it (also on failure)."""
    name = builder_name(series)
    plan = provision.plan_ec2(dataclasses.replace(target, name=name), cloud)
    request = plan.request
    me = ownership.caller(request.region)
    base = request.ami or images.latest(request.region, request.os).image_id
    request = dataclasses.replace(request, ami=base)
    print(f"Launching builder {contract.alias(name)} from {base} in {request.region}", file=out, flush=True)
    created = ec2.provision(request, out)
    try:
        host, port = provision.parse_connect(cloud.connect)
        user = target.user or images.OPERATING_SYSTEMS[cloud.os].login_user
        reached = ssh.Connection(alias=contract.alias(name), address=host or created["public_ip"], port=port or 22,
                                 user=user, key=request.key)
        if not reached.address:
            raise GpuboxError(f"Builder {created['instance_id']} has no public address.", "Pass --connect HOST:PORT.")
        records.save_record(name, {**records.load_record(name), "instance_id": created["instance_id"], "connect": cloud.connect or "",
                               "user": user, "key": str(request.key)})
        containers.wait_for_ssh(reached.address, reached.port, timeout=300)
        print(f"Converging {reached.alias} with site.yml, no data scientists", file=out, flush=True)
        _converge(reached, target, out)
        command = reached.ssh_command()
        proof = bake.verify([*command[:-1], "-o", "BatchMode=yes", command[-1]], reached.address, reached.port)
        print(f"Verified: TensorFlow {proof.tensorflow}, driver {proof.driver}, {proof.smoke_test}; {proof.audit}",
              file=out, flush=True)
        bake.clean({"all": ansible.inventory([reached])["all"]}, user, out)
        client = launch.Ec2(request.region)
        # Stopped first: a disk imaged while the system writes to it may not even be consistent.
        client.call("stop_instances", InstanceIds=[created["instance_id"]])
        client.wait("instance_stopped", created["instance_id"])
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        tags = image_tags(series, me.owner, proof, base)
        image_id = create_image(client, created["instance_id"], f"gpubox-{series}-{stamp}",
                                f"gpubox {tags['gpubox:version']} baked from {base}", tags)
        print(f"Imaging {created['instance_id']} as {image_id} (gpubox-{series}-{stamp})...", file=out, flush=True)
        aws.wait(client.client, "image_available", request.region, ImageIds=[image_id], WaiterConfig=WAIT)
        # Again, now that the snapshots exist: prune finds and deletes them by these tags.
        [made] = client.call("describe_images", ImageIds=[image_id])["Images"]
        snapshots = [item["Ebs"]["SnapshotId"] for item in made.get("BlockDeviceMappings", [])
                     if item.get("Ebs", {}).get("SnapshotId")]
        client.call("create_tags", Resources=[image_id, *snapshots], Tags=_tag_list(tags))
    finally:
        print(f"Removing builder {contract.alias(name)}", file=out, flush=True)
        lifecycle.destroy_ec2(lifecycle.plan_destroy(name, request.region), out)
    return Built(image_id, f"gpubox-{series}-{stamp}", tags)


def listing(region: str | None, *, everyone: bool = False) -> list[images.Baked]:
    where = aws.region_name(region)
    return images.baked(where, None if everyone else ownership.caller(where).owner)


@dataclass(frozen=True)
class Pruned:
    region: str
    kept: list[images.Baked]
    removed: list[images.Baked]


def plan_prune(region: str | None, keep: int, *, everyone: bool = False) -> Pruned:
    """The caller's baked images past the newest `keep` of each series (IT's --any-owner: of each
    owner's series), and those kept; nothing is changed."""
    if keep < 0:
        raise GpuboxError(f"--keep {keep} is negative.", "Give how many of each series to keep, e.g. --keep 3.", exit_code=2)
    where = aws.region_name(region)
    found = listing(where, everyone=everyone)
    old = images.beyond(found, keep)
    return Pruned(where, [item for item in found if item not in old], old)


def run_prune(planned: Pruned) -> None:
    """Deregister what plan_prune listed, and delete each image's snapshots."""
    for item in planned.removed:
        images.deregister(planned.region, item)


def prune(region: str | None, keep: int, *, dry_run: bool = False, everyone: bool = False) -> Pruned:
    """plan_prune, then (unless a dry run) run_prune: for callers that have confirmed already."""
    planned = plan_prune(region, keep, everyone=everyone)
    if not dry_run:
        run_prune(planned)
    return planned
