"""runner.py against EC2, played by moto in server mode on 127.0.0.1 (no test reaches AWS).

moto hands out public addresses of real hosts on the internet: nothing here ever connects to one.
The end-to-end provision reaches its "instance" through --connect, which points at a test host.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from conftest import PROJECT, run_env
from gpubox.cloud import iam_policy

pytestmark = pytest.mark.integration
REGION = "us-east-1"  # the moto fixtures' region (conftest.py)


def runner(env: dict[str, str], *args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def ec2():
    return boto3.client("ec2", region_name=REGION)


def an_ami() -> str:
    return ec2().describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


def gpubox_instances(name: str) -> list[dict]:
    reservations = ec2().describe_instances(Filters=[{"Name": "tag:gpubox:name", "Values": [name]},
                                                     {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [instance for reservation in reservations["Reservations"] for instance in reservation["Instances"]]


def test_dry_run_creates_nothing(aws_env, home):
    result = runner(aws_env, "provision", "--name", "dry", "--allow-cidr", "127.0.0.1/32", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "Would create:" in result.stdout and "SSH (22/tcp) from 127.0.0.1/32 only" in result.stdout
    assert "IMDSv2 only" in result.stdout and "100 GB encrypted gp3" in result.stdout
    assert gpubox_instances("dry") == []
    assert not (home / ".ssh" / "gpubox_ed25519").exists()


def create_boundary() -> None:
    """IT's one-time step (docs/iam.md): the permissions boundary every data role is made under."""
    iam = boto3.client("iam", region_name="us-east-1")
    try:
        iam.create_policy(PolicyName=iam_policy.BOUNDARY_NAME, Path=iam_policy.BOUNDARY_PATH,
                          PolicyDocument=json.dumps(iam_policy.boundary()))
    except iam.exceptions.EntityAlreadyExistsException:
        pass


def test_doctor_checks_the_account_before_money_is_spent(aws_env, checkip):
    create_boundary()
    good = runner({**aws_env, "GPUBOX_CHECKIP_URL": checkip}, "doctor")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "[ok] AWS credentials: account 123456789012" in good.stdout
    assert "[ok] instance type: g4dn.xlarge offered in us-east-1a" in good.stdout
    assert "GPU vCPU quota (on-demand)" in good.stdout and "[ok] ssh client" in good.stdout
    bad = runner(aws_env, "doctor", "--instance-type", "g9.imaginary")
    assert bad.returncode == 1
    assert "[FAIL] instance type: g9.imaginary is not offered in us-east-1" in bad.stdout
    assert "-> Pick another --instance-type" in bad.stdout and "Traceback" not in bad.stdout + bad.stderr


def test_no_credentials_gives_the_fix_not_a_traceback(aws_env):
    env = {key: value for key, value in aws_env.items() if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for command in (["status"], ["stop", "--name", "x"], ["destroy", "--name", "x", "--dry-run"]):
        result = runner(env, *command)
        assert result.returncode == 1, command
        assert "error: No AWS credentials found." in result.stderr and "aws configure" in result.stderr
        assert "Traceback" not in result.stdout + result.stderr
    doctor = runner(env, "doctor")
    assert doctor.returncode == 1 and "[FAIL] AWS credentials: No AWS credentials found." in doctor.stdout


@dataclasses.dataclass
class Provisioned:
    """ws1, provisioned once for the module through --connect at a test host, with bystanders."""
    env: dict[str, str]
    home: Path
    host: object
    args: list[str]
    first: subprocess.CompletedProcess[str]
    other: str
    other_group: str

    def ssh(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", "-F", str(self.home / ".ssh" / "config"), "-o", "BatchMode=yes", "gpubox-ws1", *command],
                              capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def ws1(moto_endpoint, untouched_debian12_host, tmp_path_factory) -> Iterator[Provisioned]:
    host = untouched_debian12_host
    home = tmp_path_factory.mktemp("ec2") / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        settings = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        for key, value in settings.items():
            patch.setenv(key, value)
        env = dict(run_env(home), **settings)
        # Someone else's instance and security group in the same account: destroy must leave them.
        other = ec2().run_instances(ImageId=an_ami(), MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
        other_group = ec2().create_security_group(GroupName="someone-else", Description="not gpubox")["GroupId"]
        args = ["provision", "--name", "ws1", "--ami", an_ami(), "--allow-cidr", "127.0.0.1/32",
                "--connect", f"127.0.0.1:{host.port}", "--user", "admin", "--key", str(host.key),
                "--trust-local-cas", "--idle-stop", "30"]  # the "instance" sits behind this machine's TLS-inspecting proxy
        yield Provisioned(env, home, host, args, runner(env, *args), other, other_group)


def test_provision_creates_tagged_resources_and_the_data_scientist_logs_in(ws1):
    first = ws1.first
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Next: python runner.py tunnel --name ws1" in first.stdout
    [instance] = gpubox_instances("ws1")
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["gpubox:managed"] == "true" and tags["gpubox:name"] == "ws1" and tags["gpubox:owner"] == "AKIAIOSFODNN7EXAMPLE"
    assert tags["gpubox:user"] == "scientist" and tags["gpubox:configured"] == "true"  # site.yml ran: the dead-man's switch stood down
    assert ws1.host.exec("test", "-f", "/var/lib/gpubox/configured").returncode == 0
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    shutdown = ec2().describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="instanceInitiatedShutdownBehavior")
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    volume = ec2().describe_volumes(VolumeIds=[instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert volume["Encrypted"] and volume["VolumeType"] == "gp3" and volume["Size"] == 100
    [group] = ec2().describe_security_groups(Filters=[{"Name": "tag:gpubox:name", "Values": ["ws1"]}])["SecurityGroups"]
    assert [(rule["FromPort"], rule["ToPort"], [r["CidrIp"] for r in rule["IpRanges"]]) for rule in group["IpPermissions"]] == [
        (22, 22, ["127.0.0.1/32"])]
    [key_pair] = ec2().describe_key_pairs(KeyNames=["gpubox-ws1"])["KeyPairs"]
    assert {tag["Key"]: tag["Value"] for tag in key_pair["Tags"]}["gpubox:name"] == "ws1"

    # The workstation was configured through --connect: the data scientist logs in with plain ssh.
    login = ws1.ssh("id", "-un")
    assert login.stdout.strip() == "scientist", login.stderr


def test_reprovision_finds_the_instance_and_logins_never_wait(ws1):
    assert ws1.first.returncode == 0
    [instance] = gpubox_instances("ws1")
    assert ws1.ssh("true").returncode == 0
    time.sleep(12)  # past logind's UserStopDelaySec: a manager that does not linger is stopping now
    again = runner(ws1.env, *ws1.args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert [item["InstanceId"] for item in gpubox_instances("ws1")] == [instance["InstanceId"]]  # found, not relaunched
    assert ": 0 changed." in again.stdout
    # Logins right after a run never wait (the roles linger the data scientist in containers).
    started = time.monotonic()
    for _ in range(3):
        login = ws1.ssh("true", timeout=10)
        assert login.returncode == 0, login.stderr
    assert time.monotonic() - started < 10


def test_status_hold_stop_start_and_destroy_only_what_is_ours(ws1):
    aws_env, home, host, other, other_group = ws1.env, ws1.home, ws1.host, ws1.other, ws1.other_group
    assert ws1.first.returncode == 0
    [instance] = gpubox_instances("ws1")
    [group] = ec2().describe_security_groups(Filters=[{"Name": "tag:gpubox:name", "Values": ["ws1"]}])["SecurityGroups"]
    status = runner(aws_env, "status")
    assert status.returncode == 0, status.stderr
    line = next(text for text in status.stdout.splitlines() if text.startswith("ws1:"))
    assert "running, g4dn.xlarge" in line and "~$0.526/h" in line and instance["InstanceId"] in line
    assert "TensorFlow 2.20.0 (ok), no GPU seen" in status.stdout  # the workstation's own report, over SSH

    # Idle autostop as set by --idle-stop, and a hold shown by status.
    assert '"idle_minutes": 30' in host.exec("cat", "/etc/gpubox/autostop.json").stdout
    held = runner(aws_env, "hold", "--name", "ws1", "--hours", "2")
    assert held.returncode == 0 and "gpubox-ws1 is held until" in held.stdout, held.stderr
    assert host.exec("systemctl", "start", "gpubox-autostop.service").returncode == 0
    assert "autostop: busy (held by scientist until" in runner(aws_env, "status").stdout
    released = runner(aws_env, "release", "--name", "ws1")
    assert released.returncode == 0 and host.exec("ls", "/var/lib/gpubox/holds").stdout.strip() == ""
    assert host.exec("systemctl", "start", "gpubox-autostop.service").returncode == 0
    assert "autostop: idle 0 min, stops in 30 min" in runner(aws_env, "status").stdout

    stopped = runner(aws_env, "stop", "--name", "ws1")
    assert stopped.returncode == 0 and "ws1 is stopped." in stopped.stdout
    assert "ws1: stopped" in runner(aws_env, "status").stdout
    started = runner(aws_env, "start", "--name", "ws1")
    assert started.returncode == 0 and "ws1 is running." in started.stdout
    # Reached through --connect: the SSH entry keeps pointing there, never at moto's address.
    assert "HostName 127.0.0.1" in (home / ".ssh" / "gpubox" / "gpubox-ws1.conf").read_text()

    listed = runner(aws_env, "destroy", "--name", "ws1", "--dry-run")
    assert listed.returncode == 0 and "Dry run: nothing was deleted." in listed.stdout
    for words in (instance["InstanceId"], group["GroupId"], "key pairs: gpubox-ws1", "SSH config entry"):
        assert words in listed.stdout
    assert other not in listed.stdout and other_group not in listed.stdout
    assert len(gpubox_instances("ws1")) == 1

    refused = runner(aws_env, "destroy", "--name", "ws1")
    assert refused.returncode == 2 and "Re-run with --yes" in refused.stderr

    gone = runner(aws_env, "destroy", "--name", "ws1", "--yes")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-3000:]
    assert gpubox_instances("ws1") == []
    assert ec2().describe_security_groups(Filters=[{"Name": "tag:gpubox:name", "Values": ["ws1"]}])["SecurityGroups"] == []
    assert ec2().describe_key_pairs(Filters=[{"Name": "tag:gpubox:name", "Values": ["ws1"]}])["KeyPairs"] == []
    assert not (home / ".ssh" / "gpubox" / "gpubox-ws1.conf").exists()
    survivor = ec2().describe_instances(InstanceIds=[other])["Reservations"][0]["Instances"][0]
    assert survivor["State"]["Name"] == "running"
    assert ec2().describe_security_groups(GroupIds=[other_group])["SecurityGroups"]


def test_unknown_workstation_names_the_fix(aws_env):
    result = runner(aws_env, "stop", "--name", "nosuch")
    assert result.returncode == 1
    assert "No gpubox workstation named 'nosuch' in us-east-1." in result.stderr and "runner.py status" in result.stderr
