"""`image build`, `image list` and `image prune` against EC2 played by moto in server mode.

The builder "instance" is reached through --connect at a local test host (started from the
suite's baked image, so its converge is a no-change run); nothing here connects to an address
moto returns.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from conftest import PROJECT
from gpubox import bake, containers

pytestmark = pytest.mark.integration
REGION = "us-east-1"
ME = "AKIAIOSFODNN7EXAMPLE"  # moto's caller: the owner is its STS UserId (gpubox/cloud/ownership.py)


def runner(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=1800, check=False, stdin=subprocess.DEVNULL)


def ec2():
    return boto3.client("ec2", region_name=REGION)


def an_ami() -> str:
    found = ec2().describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    return found[0]["ImageId"]


def tags_of(item: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def gpubox_images() -> list[dict]:
    return [image for image in ec2().describe_images(Owners=["self"])["Images"] if tags_of(image).get("gpubox:managed") == "true"]


@pytest.fixture
def builder_host(baked_debian12, tmp_path_factory):
    key = tmp_path_factory.mktemp("builder") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"gpubox-pytest-builder-{key.parent.name[-6:]}"
    started = containers.start(name, "debian12", key.with_suffix(".pub").read_text(), image=bake.local_ref(baked_debian12))
    yield started, key
    containers.remove(name)


def test_image_build_makes_one_tagged_ami_and_removes_the_builder(aws_env, builder_host, home: Path):
    started, key = builder_host
    base = an_ami()
    # Someone else's image in the same account: prune must leave it.
    bystander_instance = ec2().run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    bystander = ec2().create_image(InstanceId=bystander_instance, Name="not-gpubox")["ImageId"]

    built = runner(aws_env, "image", "build", "--name", "team", "--ami", base, "--allow-cidr", "127.0.0.1/32",
                   "--connect", f"127.0.0.1:{started.port}", "--user", "admin", "--key", str(key), "--trust-local-cas")
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-3000:]
    [image] = gpubox_images()
    tags = tags_of(image)
    assert tags["gpubox:owner"] == ME and tags["gpubox:image"] == "team" and tags["gpubox:base"] == base
    assert tags["gpubox:tensorflow"] == "2.20.0" and tags["gpubox:driver"] == "none"  # no GPU in a container
    assert tags["gpubox:roles"] == bake.roles_digest() and tags["gpubox:version"] == bake.commit()
    assert "lynis" in tags["gpubox:audit"] and "ssh-audit" in tags["gpubox:audit"]
    assert f"Baked {image['ImageId']}" in built.stdout
    # The builder is gone with everything gpubox made for it; the instance was stopped before imaging.
    builders = ec2().describe_instances(Filters=[{"Name": "tag:gpubox:name", "Values": ["bake-team"]}])["Reservations"]
    assert [item["State"]["Name"] for reservation in builders for item in reservation["Instances"]] == ["terminated"]
    assert ec2().describe_security_groups(Filters=[{"Name": "tag:gpubox:name", "Values": ["bake-team"]}])["SecurityGroups"] == []
    assert not (home / ".config" / "gpubox" / "workstations" / "bake-team.json").exists()
    # Cleaned over SSH before imaging: the builder has no host keys, accounts or machine-id left.
    assert subprocess.run(["podman", "exec", started.name, "sh", "-c", "ls /etc/ssh/ssh_host_* || true"],
                          capture_output=True, text=True, check=False).stdout.strip() == ""

    listed = runner(aws_env, "image", "list")
    assert listed.returncode == 0 and image["ImageId"] in listed.stdout and bystander not in listed.stdout

    # Two newer images of the series (made directly: one real build is enough), and one of someone else's.
    def made(owner: str) -> str:
        instance = ec2().run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        image_id = ec2().create_image(InstanceId=instance, Name=f"gpubox-team-{instance}")["ImageId"]
        ec2().create_tags(Resources=[image_id], Tags=[{"Key": key, "Value": value} for key, value in
                                                     {**tags, "gpubox:owner": owner}.items()])
        return image_id
    newer = [made(ME), made(ME)]
    theirs = made("arn:aws:iam::123456789012:user/bob")
    pruned = runner(aws_env, "image", "prune", "--keep", "1", "--yes")
    assert pruned.returncode == 0, pruned.stderr
    left = {item["ImageId"] for item in ec2().describe_images(Owners=["self"])["Images"]}
    assert bystander in left and theirs in left
    assert len(left & {image["ImageId"], *newer}) == 1  # the newest of the caller's series only
    assert "2 deregistered" in pruned.stdout
