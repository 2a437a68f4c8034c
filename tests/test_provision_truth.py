"""Provision tells the truth about an existing workstation and leaves nothing behind when it fails
before launch (gpubox/cloud/launch.py prepare/changes/undo, gpubox/cloud/ec2.py provision), on the
moto server. Nothing here connects to an address moto hands out: no run gets as far as SSH."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import PROJECT
from gpubox import contract
from gpubox.cloud import aws, ec2, iam_policy, launch
from gpubox.commands import provision
from gpubox.errors import GpuboxError

REGION = "us-east-1"
ME = "AKIAIOSFODNN7EXAMPLE"  # moto's caller: the owner is its STS UserId


def client() -> Any:
    return boto3.client("ec2", region_name=REGION)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def image(moto_endpoint) -> str:
    ec2_client = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing")
    return ec2_client.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


def existing(image: str, name: str, instance_type: str = "g4dn.xlarge", disk_gb: int = 40) -> str:
    """A workstation of the caller's as provision tags one."""
    tags = [{"ResourceType": kind, "Tags": [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE},
                                            {"Key": contract.TAG_NAME, "Value": name}, {"Key": contract.TAG_OWNER, "Value": ME}]}
            for kind in ("instance", "volume")]
    root = client().describe_images(ImageIds=[image])["Images"][0]["RootDeviceName"]
    return client().run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type, TagSpecifications=tags,
                                  BlockDeviceMappings=[{"DeviceName": root, "Ebs": {"VolumeSize": disk_gb}}])["Instances"][0]["InstanceId"]


def described(instance_id: str) -> dict:
    return client().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def runner(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=600, check=False, stdin=subprocess.DEVNULL)


def test_a_different_instance_type_is_stated_then_changed_with_yes_or_refused(aws_env, image):
    instance_id = existing(image, "typed")
    asked = ("provision", "--name", "typed", "--instance-type", "g5.xlarge", "--allow-cidr", "127.0.0.1/32")
    dry = runner(aws_env, *asked, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"Would find workstation 'typed' ({instance_id}, g4dn.xlarge, running)" in dry.stdout
    assert ("--instance-type: g4dn.xlarge now, g5.xlarge asked: stop it, change the type, start it "
            "(~$0.526/h now, ~$1.006/h after) (needs --yes)") in dry.stdout
    assert "Would create" not in dry.stdout

    refused = runner(aws_env, *asked)  # no terminal to confirm on, no --yes
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "differs from what was asked" in refused.stderr and "--yes" in refused.stderr
    assert described(instance_id)["InstanceType"] == "g4dn.xlarge" and described(instance_id)["State"]["Name"] == "running"

    # With --yes (here its cloud half in this process: configuring over SSH is not what is tested).
    out = io.StringIO()
    plan = provision.plan_ec2(provision.Target(name="typed"), provision.Cloud(instance_type="g5.xlarge", disk_gb=None,
                                                                              allow_cidr="127.0.0.1/32", yes=True))
    assert ec2.provision(plan.request, out)["instance_id"] == instance_id
    assert described(instance_id)["InstanceType"] == "g5.xlarge", out.getvalue()
    assert f"Changed {instance_id} from g4dn.xlarge to g5.xlarge." in out.getvalue()
    assert described(instance_id)["State"]["Name"] == "running"
    status = runner(aws_env, "status", "--name", "typed")
    assert "g5.xlarge" in status.stdout and "g4dn.xlarge" not in status.stdout, status.stdout + status.stderr


def test_the_disk_grows_after_confirmation_and_never_shrinks(aws_env, image, home):
    instance_id = existing(image, "disky")
    volume = described(instance_id)["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    size = client().describe_volumes(VolumeIds=[volume])["Volumes"][0]["Size"]
    common = provision.Target(name="disky")

    def plan(disk_gb: int, **options: Any) -> provision.Ec2Plan:
        return provision.plan_ec2(common, provision.Cloud(instance_type=None, disk_gb=disk_gb, allow_cidr="127.0.0.1/32", **options))

    with pytest.raises(GpuboxError) as shrink:
        provision.preview(plan(size - 1, dry_run=True), dry_run=True)
    assert shrink.value.exit_code == 2 and "an EBS disk cannot shrink" in shrink.value.message
    assert f"give {size} or more" in shrink.value.fix
    with pytest.raises(GpuboxError) as unconfirmed:
        ec2.provision(plan(size + 20).request, io.StringIO())
    assert isinstance(unconfirmed.value, launch.Unconfirmed) and unconfirmed.value.exit_code == 2
    assert client().describe_volumes(VolumeIds=[volume])["Volumes"][0]["Size"] == size
    ec2.provision(plan(size + 20, yes=True).request, io.StringIO())
    assert client().describe_volumes(VolumeIds=[volume])["Volumes"][0]["Size"] == size + 20
    # Left out, the options are not compared: the workstation is found as it is.
    quiet = provision.plan_ec2(common, provision.Cloud(instance_type=None, disk_gb=None, allow_cidr="127.0.0.1/32"))
    assert ec2.provision(quiet.request, io.StringIO())["instance_id"] == instance_id


def test_a_role_input_the_role_refuses_exits_2_in_the_dry_run_naming_the_rule(aws_env):
    dry = runner(aws_env, "provision", "--name", "idle", "--allow-cidr", "127.0.0.1/32", "--idle-stop", "3", "--dry-run")
    assert dry.returncode == 2, dry.stdout + dry.stderr
    assert "--idle-stop 3 breaks the autostop role's rule" in dry.stderr
    assert "autostop_warn_minutes < autostop_idle_minutes" in dry.stderr and "Traceback" not in dry.stderr
    assert runner(aws_env, "provision", "--name", "idle", "--allow-cidr", "127.0.0.1/32", "--idle-stop", "30",
                  "--dry-run").returncode == 0


# Failure injection: each step before launch fails once; what is tagged for gpubox afterwards is
# exactly what was there before.

def tagged_counts() -> dict[str, int]:
    managed = contract.managed_filters()
    iam = boto3.client("iam", region_name=REGION)
    return {
        "key pairs": len(client().describe_key_pairs(Filters=managed)["KeyPairs"]),
        "security groups": len(client().describe_security_groups(Filters=managed)["SecurityGroups"]),
        "roles": len([role for role in iam.list_roles()["Roles"] if role["RoleName"].startswith(contract.RESOURCE_PREFIX)]),
        "instance profiles": len([item for item in iam.list_instance_profiles()["InstanceProfiles"]
                                  if item["InstanceProfileName"].startswith(contract.RESOURCE_PREFIX)]),
        "instances": sum(len(reservation["Instances"]) for reservation in client().describe_instances(
            Filters=[*managed, {"Name": "instance-state-name", "Values": aws.LIVE_STATES}])["Reservations"]),
    }


@pytest.fixture
def boundary(aws_env) -> None:
    """IT's one-time step (docs/iam.md): --data needs the permissions boundary."""
    iam = boto3.client("iam", region_name=REGION)
    try:
        iam.create_policy(PolicyName=iam_policy.BOUNDARY_NAME, Path=iam_policy.BOUNDARY_PATH,
                          PolicyDocument=json.dumps(iam_policy.boundary()))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def failing_ec2(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    real = launch.Ec2.call

    def call(self: launch.Ec2, name: str, **arguments: Any) -> dict:
        if name == operation:
            raise GpuboxError(f"injected failure of {operation}")
        return real(self, name, **arguments)
    monkeypatch.setattr(launch.Ec2, "call", call)


def failing_iam(monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    real = aws.client

    def client_for(service: str, region: str | None) -> Any:
        made = real(service, region)
        if service == "iam":
            def refuse(**arguments: Any) -> None:
                raise ClientError({"Error": {"Code": "ServiceFailure", "Message": "injected"}}, operation)
            setattr(made, operation, refuse)
        return made
    monkeypatch.setattr(aws, "client", client_for)


@pytest.mark.parametrize("step", ["image lookup", "image given", "public-address lookup", "key import", "security group",
                                  "security group rule", "data role"])
def test_a_failure_before_launch_leaves_exactly_what_was_there(aws_env, boundary, image, monkeypatch, step):
    name = "fail-" + step.replace(" ", "-")
    ami = "" if step == "image lookup" else ("ami-0123456789abcdef0" if step == "image given" else image)
    if step == "public-address lookup":
        monkeypatch.setenv("GPUBOX_CHECKIP_URL", f"http://127.0.0.1:{closed_port()}/")
    elif step == "key import":
        failing_ec2(monkeypatch, "import_key_pair")
    elif step == "security group":
        failing_ec2(monkeypatch, "create_security_group")
    elif step == "security group rule":
        failing_ec2(monkeypatch, "authorize_security_group_ingress")
    elif step == "data role":
        failing_iam(monkeypatch, "put_role_policy")
    before = tagged_counts()
    cloud = provision.Cloud(ami=ami, data=["s3://team-data/churn"],
                            allow_cidr=None if step == "public-address lookup" else "127.0.0.1/32")
    with pytest.raises(GpuboxError) as failed:
        provision.provision_ec2(provision.plan_ec2(provision.Target(name=name), cloud), io.StringIO())
    assert tagged_counts() == before, failed.value.message
    assert "Traceback" not in failed.value.message
    if step == "image given":
        assert failed.value.exit_code == 2 and "ami-0123456789abcdef0 does not exist" in failed.value.message


def test_a_config_file_instance_type_chooses_for_new_workstations_only(aws_env, image, home):
    """config.toml's instance_type is a preference for new workstations: an existing one of another
    type is found as it is, not refused or changed (only --instance-type on the command line is)."""
    instance_id = existing(image, "configured")
    (home / ".config" / "gpubox").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "gpubox" / "config.toml").write_text('instance_type = "g5.xlarge"\n')
    dry = runner(aws_env, "provision", "--name", "configured", "--allow-cidr", "127.0.0.1/32", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"Would find workstation 'configured' ({instance_id}, g4dn.xlarge, running)" in dry.stdout
    assert "use it as it is" in dry.stdout and "--instance-type:" not in dry.stdout
