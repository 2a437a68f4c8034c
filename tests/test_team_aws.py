"""Many data scientists in one AWS account (moto in server mode on 127.0.0.1, seeded with the
publishers' images): names owned by someone else are refused before any change, commands follow
the recorded region and account, bad options are refused before anything is created, and an
instance left behind by a failed or killed provision says it bills and carries its dead-man's switch.

Two owners are two IAM users with their own access keys: moto answers GetCallerIdentity for each.
Nothing here connects to an address moto hands out; SSH goes to a closed port on 127.0.0.1.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from conftest import PROJECT, moto_server, run_env
from gpubox import cli, contract, hardening_port, settings, ssh
from gpubox.cloud import ec2, images, launch, ownership, records
from gpubox.commands import lifecycle, provision, session
from gpubox.errors import GpuboxError

REGION = "us-east-1"
DEBIAN, UBUNTU = images.OPERATING_SYSTEMS["debian-13"].owner, images.OPERATING_SYSTEMS["ubuntu-24.04"].owner
# What the publishers' accounts hold (and a look-alike from another account that must never be picked).
IMAGES = [
    {"ami_id": "ami-0de13000000000001", "name": "debian-13-amd64-20261101-2000", "owner_id": DEBIAN, "creation_date": "2026-11-01T20:00:00.000Z",
     "root_device_name": "/dev/xvda"},
    {"ami_id": "ami-0de13000000000000", "name": "debian-13-amd64-20260801-1800", "owner_id": DEBIAN, "creation_date": "2026-08-01T18:00:00.000Z",
     "root_device_name": "/dev/xvda"},
    {"ami_id": "ami-0bad0000000000000", "name": "debian-13-amd64-20261120-0000", "owner_id": "123456789012",
     "creation_date": "2026-11-20T00:00:00.000Z", "root_device_name": "/dev/xvda"},
    {"ami_id": "ami-0ub24000000000000", "name": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261101", "owner_id": UBUNTU,
     "creation_date": "2026-11-01T00:00:00.000Z", "root_device_name": "/dev/sda1"},
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_images(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("amis") / "amis.json"
    path.write_text(json.dumps([{**image, "description": image["name"], "public": True, "virtualization_type": "hvm",
                                 "architecture": "x86_64", "state": "available", "hypervisor": "xen", "root_device_type": "ebs",
                                 "sriov": "simple", "image_type": "machine", "platform": None} for image in IMAGES]))
    with moto_server({"MOTO_AMIS_PATH": str(path)}) as endpoint:
        yield endpoint


KEYS: dict[tuple[str, str], dict[str, str]] = {}  # one access key (and the user's unique ID) per person and moto server


class Team:
    """The account's people: each an IAM user with an access key; `be(name)` switches to them."""

    def __init__(self, endpoint: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.endpoint, self.home, self.monkeypatch = endpoint, home, monkeypatch
        self.env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent",
                    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "GPUBOX_SSH_WAIT": "1"}
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_REGION", raising=False)

    def be(self, person: str) -> str:
        """Act as this person from now on (their own keys, their own laptop's HOME); returns the owner
        gpubox writes for them: their IAM user's unique ID (STS UserId, gpubox/cloud/ownership.py)."""
        if (self.endpoint, person) not in KEYS:
            iam = boto3.client("iam", aws_access_key_id="testing", aws_secret_access_key="testing")
            user_id = iam.create_user(UserName=person)["User"]["UserId"]
            KEYS[self.endpoint, person] = {**iam.create_access_key(UserName=person)["AccessKey"], "UserId": user_id}
        key = KEYS[self.endpoint, person]
        self.env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
        home = self.home.parent / person
        home.mkdir(exist_ok=True)
        self.env["HOME"] = str(home)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HOME"):
            self.monkeypatch.setenv(name, self.env[name])
        self.monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it keeps the credentials it first read
        return key["UserId"]

    def key(self) -> Path:
        key = Path(self.env["HOME"]) / ".ssh" / "id_ed25519"
        if not key.exists():
            key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        return key

    def runner(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env={**run_env(Path(self.env["HOME"])), **self.env},
                              capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture
def team(moto_images, home, monkeypatch) -> Team:
    return Team(moto_images, home, monkeypatch)


def client(region: str = REGION):
    return boto3.client("ec2", region_name=region)


def live(name: str, region: str = REGION) -> list[dict]:
    reservations = client(region).describe_instances(Filters=[
        {"Name": "tag:gpubox:name", "Values": [name]}, {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [instance for reservation in reservations["Reservations"] for instance in reservation["Instances"]]


def request(team: Team, name: str, *, region: str = REGION, cidr: str = "127.0.0.1/32", **options) -> ec2.Request:
    return ec2.Request(name=name, region=region, instance_type=options.pop("instance_type", "g4dn.xlarge"), disk_gb=100, spot=False,
                       allow_cidr=cidr, ami="", key=team.key(), owner="scientist", **options)


def snapshot(name: str) -> dict:
    """Everything AWS holds for the name, as its owner would see it."""
    resource = contract.alias(name)
    keys = client().describe_key_pairs(KeyNames=[resource], IncludePublicKey=True)["KeyPairs"]
    groups = client().describe_security_groups(Filters=[{"Name": "group-name", "Values": [resource]}])["SecurityGroups"]
    return {"keys": [(key["KeyPairId"], key.get("KeyFingerprint"), key.get("PublicKey"), key.get("Tags")) for key in keys],
            "groups": [(group["GroupId"], group["IpPermissions"], group.get("Tags")) for group in groups],
            "instances": [(item["InstanceId"], item["State"]["Name"], sorted(map(str, item["Tags"]))) for item in live(name)]}


# Owners


def test_a_name_owned_by_someone_else_is_refused_before_any_change(team):
    alice = team.be("alice")
    ec2.provision(request(team, "shared"), io.StringIO())
    lifecycle.stop(None, "shared", io.StringIO())  # her stopped instance must stay stopped
    before = snapshot("shared")
    assert before["instances"][0][1] == "stopped" and f"{contract.TAG_OWNER}', 'Value': '{alice}'" in str(before["instances"])

    bob = team.be("bob")
    with pytest.raises(GpuboxError) as refused:
        ec2.provision(request(team, "shared", cidr="198.51.100.7/32"), io.StringIO())
    assert f"belongs to {alice}, not to you ({bob}). Nothing was changed." in refused.value.message
    assert "--any-owner" in refused.value.fix
    assert snapshot("shared") == before and not records.record_path("shared").exists()

    # Nor may bob stop, start, hold or destroy it (as if he had an old record and SSH entry of that name).
    records.save_record("shared", {"region": REGION, "account": "123456789012", "connect": "", "user": "admin", "key": ""})
    ssh.write_config_entry(ssh.Connection("gpubox-shared", "127.0.0.1", closed_port(), "bob", team.key()))
    for attempt in (lambda: lifecycle.start(None, "shared", io.StringIO()), lambda: lifecycle.stop(None, "shared", io.StringIO()),
                    lambda: session.hold("shared", 2), lambda: lifecycle.plan_destroy("shared", None)):
        with pytest.raises(GpuboxError, match=f"belongs to {alice}"):
            attempt()
    assert snapshot("shared") == before
    refused_cli = team.runner("destroy", "--name", "shared", "--yes")
    assert refused_cli.returncode == 1 and f"belongs to {alice}" in refused_cli.stderr and "Deleted" not in refused_cli.stdout
    assert snapshot("shared") == before

    # IT may, when it says so.
    assert lifecycle.start(None, "shared", io.StringIO(), any_owner=True).workstation.state == "running"


def test_two_provisions_of_one_name_at_once_make_one_instance(team, tmp_path):
    team.be("carol")
    key = team.key()
    script = tmp_path / "provision.py"
    script.write_text(f"""import io, sys
sys.path.insert(0, {str(PROJECT)!r})
from pathlib import Path
from gpubox.cloud import ec2
request = ec2.Request(name="twice", region="{REGION}", instance_type="g4dn.xlarge", disk_gb=100, spot=False,
                      allow_cidr="127.0.0.1/32", ami="", key=Path({str(key)!r}), owner="scientist")
print(ec2.provision(request, io.StringIO())["instance_id"])
""")
    env = {**run_env(Path(team.env["HOME"])), **team.env}
    racers = [subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    results = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], results
    [instance] = live("twice")
    assert {out.strip() for out, _ in results} == {instance["InstanceId"]}  # both report the one that is kept
    assert len(client().describe_security_groups(Filters=[{"Name": "group-name", "Values": ["gpubox-twice"]}])["SecurityGroups"]) == 1


def test_client_token_is_shared_by_racing_provisions_and_renewed_by_a_destroy():
    spec = launch.Spec("alice", REGION, "g4dn.xlarge", 100, False, "127.0.0.1/32", "", "debian-13", "ssh-ed25519 AAAA", "alice", 120)
    assert launch.client_token(spec, "sg-1", "") == launch.client_token(spec, "sg-1", "")
    assert len({launch.client_token(spec, "sg-1", ""), launch.client_token(spec, "sg-2", ""), launch.client_token(spec, "sg-1", "us-east-1a")}) == 3
    assert len(launch.client_token(spec, "sg-1", "")) <= 64  # EC2's limit


def test_status_lists_mine_across_regions_and_all_with_owners_for_it(team):
    dave = team.be("dave")
    ec2.provision(request(team, "dave-east"), io.StringIO())
    ec2.provision(request(team, "dave-west", region="eu-west-1"), io.StringIO())
    erin = team.be("erin")
    ec2.provision(request(team, "erin-east"), io.StringIO())
    team.be("dave")
    mine = "\n".join(lifecycle.status(None, None, read_report=lambda alias: None))
    assert "dave-east: running" in mine and "dave-west: running, g4dn.xlarge in eu-west-1" in mine and "~$0.526/h" in mine
    assert "erin-east" not in mine
    everyone = "\n".join(lifecycle.status(None, None, everyone=True, read_report=lambda alias: None))
    assert "erin-east: running" in everyone and f"owner {erin}" in everyone and f"owner {dave}" in everyone


# Region and account


def test_commands_use_the_recorded_region_and_refuse_another(team):
    team.be("frank")
    bystander = client("eu-west-1").run_instances(ImageId="ami-0de13000000000001", MinCount=1, MaxCount=1,
                                                  InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    ec2.provision(request(team, "far", region="eu-west-1"), io.StringIO())
    assert records.load_record("far")["region"] == "eu-west-1"
    assert lifecycle.stop(None, "far", io.StringIO()).state == "stopped"  # no --region: the recorded one
    assert live("far", "eu-west-1")[0]["State"]["Name"] == "stopped"
    wrong = team.runner("destroy", "--name", "far", "--region", "us-east-1", "--yes")
    assert wrong.returncode == 2 and "was provisioned in eu-west-1" in wrong.stderr and "--region eu-west-1" in wrong.stderr
    assert "Deleted" not in wrong.stdout and live("far", "eu-west-1")
    gone = team.runner("destroy", "--name", "far", "--yes")
    assert gone.returncode == 0, gone.stdout[-2000:] + gone.stderr[-2000:]
    assert "only resources gpubox tagged for 'far' in eu-west-1" in gone.stdout and "Deleted workstation far." in gone.stdout
    assert live("far", "eu-west-1") == [] and not records.record_path("far").exists()
    assert bystander not in gone.stdout
    assert client("eu-west-1").describe_instances(InstanceIds=[bystander])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


@pytest.mark.parametrize("args", [["status", "--region", "mars-1"], ["stop", "--name", "x", "--region", "mars-1"],
                                  ["start", "--name", "x", "--region", "us east 1"], ["destroy", "--name", "x", "--region", "mars-1"],
                                  ["doctor", "--region", "mars-1"], ["doctor", "--instance-type", "big"], ["stop", "--name", "X"]])
def test_bad_input_to_the_other_aws_commands_is_refused_in_one_line(team, capsys, args):
    team.be("peggy")
    assert cli.main(args) == 2
    error, fix = [line for line in capsys.readouterr().err.splitlines() if line]
    assert error.startswith("error: ") and args[-1] in error and fix.startswith("  -> ")


def test_destroy_that_finds_nothing_in_aws_does_not_say_deleted(team):
    team.be("grace")
    ssh.write_config_entry(ssh.Connection("gpubox-elsewhere", "127.0.0.1", closed_port(), "grace", team.key()))
    result = team.runner("destroy", "--name", "elsewhere", "--yes")
    assert result.returncode == 0 and "Deleted workstation" not in result.stdout
    assert "AWS has nothing tagged for it in us-east-1" in result.stdout and "--region" in result.stdout


def test_a_record_that_aws_contradicts_is_refused(team):
    team.be("heidi")
    ec2.provision(request(team, "moved"), io.StringIO())
    instance_id = records.load_record("moved")["instance_id"]
    client().delete_tags(Resources=[instance_id], Tags=[{"Key": contract.TAG_NAME}])
    with pytest.raises(GpuboxError, match=f"recorded workstation 'moved' as instance {instance_id} in us-east-1 \\(running\\)"):
        lifecycle.plan_destroy("moved", None)
    records.save_record("moved", {**records.load_record("moved"), "account": "999999999999"})
    with pytest.raises(GpuboxError, match="lives in AWS account 999999999999; your credentials are for account 123456789012"):
        lifecycle.stop(None, "moved", io.StringIO())
    assert live("moved") == [] and client().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "State"]["Name"] == "running"


# Images


def test_the_default_image_is_debian_13_from_debian_and_ubuntu_is_on_request(team):
    team.be("ivan")
    ec2.provision(request(team, "deb"), io.StringIO())
    [instance] = live("deb")
    assert instance["ImageId"] == "ami-0de13000000000001"  # the newest from Debian's account, not the newer look-alike
    root = next(item for item in instance["BlockDeviceMappings"] if item["DeviceName"] == "/dev/xvda")
    volume = client().describe_volumes(VolumeIds=[root["Ebs"]["VolumeId"]])["Volumes"][0]
    assert (volume["Size"], volume["VolumeType"], volume["Encrypted"]) == (100, "gp3", True)
    ec2.provision(request(team, "ubu", os="ubuntu-24.04"), io.StringIO())
    assert live("ubu")[0]["ImageId"] == "ami-0ub24000000000000"
    assert images.latest("eu-west-1", "debian-13").image_id == "ami-0de13000000000001"


# Input


@pytest.mark.parametrize(("args", "words"), [
    (["--name", "Bad_Name"], "Workstation name 'Bad_Name' is not allowed."),
    (["--allow-cidr", "10.0.0.300/32"], "--allow-cidr '10.0.0.300/32' is not an IPv4 or IPv6 address range."),
    (["--allow-cidr", "10.0.0.1/8"], "--allow-cidr 10.0.0.1/8 has bits set after the /8 prefix."),
    (["--allow-cidr", "0.0.0.0/00"], "--allow-cidr 0.0.0.0/00 is 0.0.0.0/0: the whole internet"),
    (["--allow-cidr", "::/0"], "--allow-cidr ::/0 is ::/0: the whole internet"),
    (["--connect", "127.0.0.1:0"], "--connect 127.0.0.1:0 is not HOST:PORT."),
    (["--instance-type", "G4DN XL"], "--instance-type 'G4DN XL' is not an EC2 instance type."),
    (["--region", "mars-1"], "--region 'mars-1' is not an AWS region name."),
    (["--disk-gb", "10"], "--disk-gb 10 is too small"),
    (["--disk-gb", "99999"], "--disk-gb 99999 is larger than an EBS gp3 volume can be."),
    (["--deadman-minutes", "5"], "--deadman-minutes 5 is out of range."),
    (["--os", "windows"], "--os 'windows' is not one gpubox provisions."),
    (["--ami", "ubuntu"], "--ami 'ubuntu' is not an image ID."),
    (["--idle-stop", "-1"], "--idle-stop -1 is negative."),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_bad_input_is_one_line_naming_value_and_fix_and_creates_nothing(team, capsys, args, words, dry_run):
    team.be("judy")
    name = [] if "--name" in args else ["--name", "bad"]
    cidr = [] if "--allow-cidr" in args else ["--allow-cidr", "127.0.0.1/32"]
    code = cli.main(["provision", *name, *cidr, *args, *(["--dry-run"] if dry_run else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    error, fix = [line for line in err.splitlines() if line]
    assert error.startswith(f"error: {words}") and fix.startswith("  -> ")
    assert live("bad") == [] and not records.record_path("bad").exists()
    assert not (Path(team.env["HOME"]) / ".ssh" / "gpubox_ed25519").exists()


def test_ipv6_ranges_and_a_changed_range_replace_the_rule(team):
    team.be("ken")
    ec2.provision(request(team, "six", cidr="2001:db8::/64"), io.StringIO())
    [group] = client().describe_security_groups(Filters=[{"Name": "group-name", "Values": ["gpubox-six"]}])["SecurityGroups"]
    assert [(rule["FromPort"], [r["CidrIpv6"] for r in rule["Ipv6Ranges"]], rule["IpRanges"]) for rule in group["IpPermissions"]] == [
        (22, ["2001:db8::/64"], [])]
    ec2.provision(request(team, "six", cidr="198.51.100.7/32"), io.StringIO())
    [group] = client().describe_security_groups(Filters=[{"Name": "group-name", "Values": ["gpubox-six"]}])["SecurityGroups"]
    assert [(rule["FromPort"], [r["CidrIp"] for r in rule["IpRanges"]]) for rule in group["IpPermissions"]] == [(22, ["198.51.100.7/32"])]
    assert len(live("six")) == 1


# Failures after launch, and the dead-man's switch


def user_data(instance_id: str) -> str:
    attribute = client().describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(attribute["UserData"]["Value"]).decode()


def test_a_failure_after_launch_says_it_bills_and_how_to_stop_it(team):
    team.be("leo")
    result = team.runner("provision", "--name", "late", "--allow-cidr", "127.0.0.1/32", "--key", str(team.key()),
                         "--connect", f"127.0.0.1:{closed_port()}")
    assert result.returncode == 1
    [instance] = live("late")
    for words in (f"Instance {instance['InstanceId']} (g4dn.xlarge, ~$0.526/h) is running and billing.",
                  "powers it off 120 min after boot", "python runner.py stop --name late --region us-east-1",
                  "python runner.py destroy --name late --region us-east-1 --yes"):
        assert words in result.stderr, result.stderr
    script = user_data(instance["InstanceId"])
    assert script.startswith("#!/bin/sh\n") and "OnBootSec=120min" in script
    assert f"ConditionPathExists=!{contract.CONFIGURED_MARKER}" in script and "ExecStart=/usr/bin/systemctl poweroff" in script
    assert records.load_record("late")["user"] == "admin"  # Debian's cloud user


def test_a_killed_provision_leaves_an_instance_status_shows_with_its_deadline(team):
    team.be("mallory")
    env = {**run_env(Path(team.env["HOME"])), **team.env, "GPUBOX_SSH_WAIT": "600"}
    killed = subprocess.Popen([sys.executable, "runner.py", "provision", "--name", "killed", "--allow-cidr", "127.0.0.1/32",
                               "--key", str(team.key()), "--deadman-minutes", "45", "--connect", f"127.0.0.1:{closed_port()}"],
                              cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not records.load_record("killed").get("user"):  # launched, now waiting for SSH
            time.sleep(0.5)
        assert records.load_record("killed").get("user")
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    [instance] = live("killed")
    assert "OnBootSec=45min" in user_data(instance["InstanceId"])
    expected = instance["LaunchTime"] + timedelta(minutes=45)
    shown = team.runner("status")
    assert shown.returncode == 0, shown.stderr
    assert f"dead-man's switch powers it off at {expected:%Y-%m-%d %H:%M} UTC" in shown.stdout
    assert "killed: running" in shown.stdout


def test_a_configured_instance_shows_no_deadline(team):
    team.be("nina")
    ec2.provision(request(team, "done"), io.StringIO())
    instance_id = records.load_record("done")["instance_id"]
    assert any("dead-man" in line for line in lifecycle.status(None, "done", read_report=lambda alias: None))
    launch.mark_configured(REGION, instance_id)
    assert not any("dead-man" in line for line in lifecycle.status(None, "done", read_report=lambda alias: None))


def test_caller_is_the_aws_identity(team):
    oscar = team.be("oscar")
    assert ownership.caller(REGION).owner == oscar and ownership.caller(REGION).arn == "arn:aws:iam::123456789012:user/oscar"
    assert provision.check_cloud(provision.Target(name="ok"), provision.Cloud(allow_cidr="192.0.2.9")) == ("ok", "192.0.2.9/32")


def test_a_non_22_ssh_port_is_refused_for_ec2_with_the_reason():
    hardening_port.check_ec2(settings.Settings({"hardening_ssh_port": 22}))
    with pytest.raises(GpuboxError) as refused:
        hardening_port.check_ec2(settings.Settings({"hardening_ssh_port": 2222}))
    assert "hardening_ssh_port is 2222" in refused.value.message and "lock everyone out" in refused.value.message
    assert refused.value.exit_code == 2
    hardening_port.check_ec2()  # the project's own settings keep 22
