"""Each runner.py verb's work, called directly (no argparse): AWS is moto in server mode on
127.0.0.1, SSH entries and keys live in a throwaway HOME. Nothing here connects to an address
moto hands out: such addresses are only compared and written into SSH config files."""

from __future__ import annotations

import io
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import boto3
import pytest

from gpubox import contract, ssh
from gpubox.cloud import records
from gpubox.commands import lifecycle, provision, session
from gpubox.errors import GpuboxError

REGION = "us-east-1"  # the moto fixtures' region (conftest.py)
ME = "AKIAIOSFODNN7EXAMPLE"  # the owner moto says the fixtures' credentials are (its STS UserId; gpubox/cloud/ownership.py)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ssh_entry(home: Path, name: str, port: int | None = None, address: str = "127.0.0.1") -> Path:
    """The SSH entry provision would have written (to a port nothing listens on, unless given)."""
    return ssh.write_config_entry(ssh.Connection(alias=contract.alias(name), address=address, port=port or closed_port(),
                                                 user="scientist", key=home / ".ssh" / "k"))


@pytest.fixture(scope="module")
def image(moto_endpoint) -> str:
    """One of moto's images (listing them is slow: once per module)."""
    client = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    return client.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


def launch(image: str, name: str | None, instance_type: str = "g4dn.xlarge") -> dict:
    """An instance in moto, tagged as provision tags one for the caller (or untagged: not gpubox's)."""
    client = boto3.client("ec2", region_name=REGION)
    tags = [{"ResourceType": resource, "Tags": [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE},
                                                {"Key": contract.TAG_NAME, "Value": name},
                                                {"Key": contract.TAG_OWNER, "Value": ME}]}
            for resource in ("instance", "volume")] if name else []
    return client.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type,
                                TagSpecifications=tags)["Instances"][0]


def public_ip(instance_id: str) -> str:
    described = boto3.client("ec2", region_name=REGION).describe_instances(InstanceIds=[instance_id])
    return described["Reservations"][0]["Instances"][0].get("PublicIpAddress", "")


# provision / configure


def test_dry_run_plan_names_everything_and_creates_no_key(home, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    plan = provision.plan_ec2(provision.Target(name="alice"), provision.Cloud(dry_run=True, spot=True))
    assert plan.request.region == "eu-west-1" and plan.request.key == home / ".ssh" / "gpubox_ed25519"
    assert plan.lines[0] == f"key pair gpubox-alice (public key of {home / '.ssh' / 'gpubox_ed25519'})"
    assert "from 203.0.113.1/32 (your public address, looked up at run time) only" in plan.lines[1]
    assert plan.lines[2].startswith("instance gpubox-alice: g4dn.xlarge (spot) in eu-west-1, latest Debian 13, 100 GB")
    assert not plan.open_to_everyone
    assert not (home / ".ssh").exists()


def test_plan_defaults_the_name_to_the_login_by_the_one_rule(home, monkeypatch):
    monkeypatch.setenv("USER", "alice_smith")
    monkeypatch.setenv("LOGNAME", "alice_smith")
    plan = provision.plan_ec2(provision.Target(), provision.Cloud(dry_run=True))
    assert plan.request.name == "alice-smith" and plan.request.owner == "alice_smith"


@pytest.mark.parametrize(("target", "cloud", "words"), [
    (provision.Target(name="Bad_Name"), provision.Cloud(dry_run=True), "Workstation name 'Bad_Name' is not allowed."),
    (provision.Target(name="a"), provision.Cloud(dry_run=True, disk_gb=29), "--disk-gb 29 is too small"),
    (provision.Target(name="a"), provision.Cloud(dry_run=True, connect="127.0.0.1"), "--connect 127.0.0.1 is not HOST:PORT."),
    (provision.Target(name="a"), provision.Cloud(dry_run=True, connect="h:70000"), "--connect h:70000 is not HOST:PORT."),
])
def test_bad_provision_options_are_refused_before_anything_is_made(home, target, cloud, words):
    with pytest.raises(GpuboxError) as error:
        provision.plan_ec2(target, cloud)
    assert words in error.value.message and error.value.exit_code == 2
    assert not (home / ".ssh").exists()


@pytest.mark.parametrize("everyone", ["0.0.0.0/0", "0.0.0.0/00", "::/0", "0::0/0"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_ssh_open_to_everyone_needs_yes(home, everyone, dry_run):
    with pytest.raises(GpuboxError) as error:
        provision.plan_ec2(provision.Target(name="open"), provision.Cloud(allow_cidr=everyone, dry_run=dry_run))
    assert error.value.exit_code == 2 and "--yes" in error.value.fix and everyone in error.value.message
    assert not (home / ".ssh" / "gpubox_ed25519").exists() and not records.record_path("open").exists()
    confirmed = provision.plan_ec2(provision.Target(name="open"), provision.Cloud(allow_cidr=everyone, dry_run=True, yes=True))
    assert confirmed.open_to_everyone and f"SSH (22/tcp) from {confirmed.request.allow_cidr} only" in confirmed.lines[1]
    assert confirmed.request.allow_cidr in ("0.0.0.0/0", "::/0")  # normalised


@pytest.mark.parametrize(("minutes", "expected"), [(None, {}), (0, {"autostop_idle_minutes": 0}), (45, {"autostop_idle_minutes": 45})])
def test_idle_stop_becomes_the_autostop_variable(minutes, expected):
    assert provision.idle_stop_vars(minutes) == expected


def test_negative_idle_stop_is_refused():
    with pytest.raises(GpuboxError, match="--idle-stop -1 is negative") as error:
        provision.idle_stop_vars(-1)
    assert error.value.exit_code == 2


def test_a_host_target_is_named_after_its_address(home):
    reached = provision.connection(provision.Target(host="gpu1.corp.example", port=2222), io.StringIO())
    assert (reached.alias, reached.address, reached.port, reached.user) == ("gpubox-gpu1", "gpu1.corp.example", 2222, "admin")
    assert reached.key == home / ".ssh" / "gpubox_ed25519" and reached.key.exists()


def test_an_ec2_target_needs_a_name_and_a_record(home):
    with pytest.raises(GpuboxError, match="Which workstation?") as error:
        provision.connection(provision.Target(), io.StringIO())
    assert error.value.exit_code == 2
    with pytest.raises(GpuboxError, match="did not provision a workstation named 'elsewhere'"):
        provision.connection(provision.Target(name="elsewhere"), io.StringIO())


def test_an_ec2_target_reached_through_connect_needs_no_aws(home):
    records.save_record("tunnelled", {"region": REGION, "instance_id": "i-0", "connect": "127.0.0.1:2299", "user": "ubuntu",
                                  "key": str(home / "key")})
    reached = provision.ec2_connection(provision.Target(name="tunnelled", user="admin"))
    assert (reached.alias, reached.address, reached.port, reached.user, reached.key) == (
        "gpubox-tunnelled", "127.0.0.1", 2299, "admin", home / "key")


def test_an_ec2_target_is_found_at_its_current_address(aws_env, home, image):
    instance = launch(image, "found")
    records.save_record("found", {"region": REGION, "instance_id": instance["InstanceId"], "connect": "", "user": "ubuntu",
                              "key": str(home / "key")})
    reached = provision.ec2_connection(provision.Target(name="found"))
    assert reached.address == public_ip(instance["InstanceId"]) and reached.address
    assert (reached.port, reached.user) == (22, "ubuntu")


# status, stop, start, destroy


def test_status_of_an_empty_region(aws_env):
    assert list(lifecycle.status("eu-central-1", None)) == ["No gpubox workstations of yours in eu-central-1."]


def test_status_lists_only_gpubox_instances_with_their_reports(aws_env, image):
    mine = launch(image, "shown")
    other = launch(image, None)
    asked = []

    def read_report(alias: str) -> str:
        asked.append(alias)
        return "TensorFlow 2.20.0 (ok)"

    now = datetime.now(timezone.utc)
    lines = list(lifecycle.status(None, "shown", now=now, read_report=read_report))
    assert lines[0].startswith(f"shown: running, g4dn.xlarge in {mine['Placement']['AvailabilityZone']}, ")
    assert "~$0.526/h" in lines[0] and lines[0].endswith(f"({mine['InstanceId']})")
    assert lines[1:] == ["  data access: none (no --data given)", "  TensorFlow 2.20.0 (ok)"] and asked == ["gpubox-shown"]
    everything = "\n".join(lifecycle.status(None, None, read_report=lambda alias: None))
    assert mine["InstanceId"] in everything and other["InstanceId"] not in everything


def test_stop_then_start_moves_the_ssh_entry_to_the_new_address(aws_env, home, image):
    instance = launch(image, "cycled")
    ssh_entry(home, "cycled", address="127.0.0.1")
    records.save_record("cycled", {"region": REGION, "instance_id": instance["InstanceId"], "connect": "", "user": "ubuntu",
                               "key": str(home / "key")})
    out = io.StringIO()
    stopped = lifecycle.stop(None, "cycled", out)
    assert stopped.state == "stopped" and out.getvalue() == "Stopping cycled...\n"
    # A stopped workstation is not asked for its report.
    assert "cycled: stopped" in "\n".join(lifecycle.status(None, "cycled", read_report=pytest.fail))
    started = lifecycle.start(None, "cycled", out)
    assert started.workstation.state == "running" and started.ssh_updated
    entry = ssh.config_entry_path("gpubox-cycled").read_text()
    assert f"HostName {started.workstation.public_ip}\n" in entry and f'IdentityFile "{home / "key"}"\n' in entry


def test_start_keeps_an_entry_reached_through_connect(aws_env, home, image):
    instance = launch(image, "forwarded")
    entry = ssh_entry(home, "forwarded", port=2299)
    before = entry.read_text()
    records.save_record("forwarded", {"region": REGION, "instance_id": instance["InstanceId"], "connect": "127.0.0.1:2299",
                                  "user": "ubuntu", "key": str(home / "key")})
    started = lifecycle.start(None, "forwarded", io.StringIO())
    assert not started.ssh_updated and entry.read_text() == before


def test_stopping_an_unknown_workstation_names_the_fix(aws_env):
    with pytest.raises(GpuboxError) as error:
        lifecycle.stop(None, "nosuch", io.StringIO())
    assert error.value.message == "No gpubox workstation named 'nosuch' in us-east-1." and "runner.py status" in error.value.fix


def test_destroy_plan_lists_only_what_gpubox_tagged(aws_env, home, image):
    with pytest.raises(GpuboxError, match="destroy needs --name") as error:
        lifecycle.plan_destroy(None, None)
    assert error.value.exit_code == 2
    assert lifecycle.plan_destroy("nothing", None).empty

    instance = launch(image, "doomed")
    other = launch(image, None)
    client = boto3.client("ec2", region_name=REGION)
    tagged = [{"ResourceType": "security-group", "Tags": [{"Key": contract.TAG_MANAGED, "Value": "true"},
                                                          {"Key": contract.TAG_NAME, "Value": "doomed"},
                                                          {"Key": contract.TAG_OWNER, "Value": ME}]}]
    group = client.create_security_group(GroupName="gpubox-doomed", Description="d", TagSpecifications=tagged)["GroupId"]
    client.create_security_group(GroupName="someone-else", Description="not gpubox")
    entry = ssh_entry(home, "doomed")
    plan = lifecycle.plan_destroy("doomed", None)
    assert (plan.name, plan.region, plan.empty) == ("doomed", REGION, False)
    assert plan.resources["instances"] == [f"{instance['InstanceId']} (g4dn.xlarge, running)"]
    assert len(plan.resources["volumes"]) == 1 and instance["InstanceId"] in plan.resources["volumes"][0]
    assert plan.resources["security groups"] == [f"{group} (gpubox-doomed)"]
    assert plan.resources["SSH config entry"] == [str(entry)]
    assert other["InstanceId"] not in str(plan.resources) and "someone-else" not in str(plan.resources)


def test_destroy_local_removes_the_entry_and_says_when_there_was_nothing(home):
    entry = ssh_entry(home, "gone")
    assert lifecycle.destroy_local("gone") is True and not entry.exists()
    assert lifecycle.destroy_local("gone") is False


# ssh, tunnel, hold, release


@pytest.mark.parametrize(("call", "fix"), [
    (lambda: session.require_entry("ghost"), "runner.py provision --local"),
    (lambda: session.open_tunnel("ghost", None, None), "runner.py provision --local"),
    (lambda: session.hold("ghost", 2), "runner.py status"),
    (lambda: session.release("ghost"), "runner.py status"),
])
def test_every_session_verb_needs_a_set_up_workstation(home, call, fix):
    with pytest.raises(GpuboxError) as error:
        call()
    assert error.value.message == "No workstation named 'ghost' is set up on this machine." and fix in error.value.fix


def test_login_runs_the_remote_command_after_the_double_dash(home):
    argv = session.login_argv("gpubox-x", ["--", "nvidia-smi", "-L"])
    assert argv[0] == "ssh" and argv[-3:] == ["gpubox-x", "nvidia-smi", "-L"]
    assert session.login_argv("gpubox-x", [])[-1] == "gpubox-x"


def test_tunnel_refuses_a_port_that_is_not_one(home):
    ssh_entry(home, "lab")
    with pytest.raises(GpuboxError, match="--local-port 70000 is not a TCP port") as error:
        session.open_tunnel("lab", None, 70000)
    assert error.value.exit_code == 2


def test_hold_expiry_is_utc_iso_8601():
    now = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)
    assert session.hold_until(1.5, now) == "2026-02-01T01:00:00Z"
    assert session.hold_until(None, now) == ""
    for bad in (0, -2, float("inf"), float("nan"), 1e9):
        with pytest.raises(GpuboxError, match="is not a duration") as error:
            session.hold_until(bad, now)
        assert error.value.exit_code == 2


def test_hold_and_release_commands_write_and_remove_the_callers_hold_file(tmp_path, monkeypatch):
    """The remote commands, run by a real shell against a stand-in for the holds directory: a name
    someone else took first neither blocks the hold nor is removed by it."""
    monkeypatch.setattr(contract, "HOLDS_DIR", str(tmp_path))
    me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    squatted = tmp_path / me
    squatted.mkdir()  # not a regular file of the caller's: hold and release leave it alone
    subprocess.run(["sh", "-c", session.hold_command("2026-02-01T01:00:00Z")], check=True)
    [first] = [path for path in tmp_path.iterdir() if path.is_file()]
    assert first.name.startswith(f"{me}.") and first.read_text() == "2026-02-01T01:00:00Z\n"
    subprocess.run(["sh", "-c", session.hold_command("")], check=True)
    [second] = [path for path in tmp_path.iterdir() if path.is_file()]
    assert second != first and second.read_text() == "\n"  # the older hold is gone
    subprocess.run(["sh", "-c", session.release_command()], check=True)
    assert list(tmp_path.iterdir()) == [squatted]


def test_the_hold_commands_use_the_roles_holds_directory():
    assert f"mktemp {contract.HOLDS_DIR}/" in session.hold_command("")
    assert session.release_command().startswith(f"find {contract.HOLDS_DIR} ")


def test_hold_on_an_unreachable_workstation_says_so(home):
    ssh_entry(home, "down")
    with pytest.raises(GpuboxError, match="Could not reach gpubox-down") as error:
        session.hold("down", None)
    assert "runner.py status" in error.value.fix
