"""`status` and `status --json` through the command line, on moto: the JSON holds what the text
shows (workstation lines, the dead-man's deadline, data access, snapshots), both forms exit the
same way, a --name that names nothing exits 1, and every SSH command gpubox runs is quiet (no
sshd banner in its output)."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime

import boto3
import pytest

from gpubox import cli, contract, evidence, guard, ssh, status, tunnel, workstation
from gpubox.commands import session
from test_commands import ME, REGION, image  # noqa: F401  (image is a fixture)


def launch_unconfigured(image_id: str, name: str) -> dict:
    """An instance as provision leaves it before configuring: tagged, its dead-man's switch armed."""
    tags = [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": name},
            {"Key": contract.TAG_OWNER, "Value": ME}, {"Key": contract.TAG_DEADMAN_MINUTES, "Value": "120"}]
    return boto3.client("ec2", region_name=REGION).run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
        TagSpecifications=[{"ResourceType": kind, "Tags": tags} for kind in ("instance", "volume")])["Instances"][0]


def keep_snapshot(instance: dict, name: str) -> str:
    """A snapshot of the instance's disk, tagged as destroy tags the one it keeps."""
    client = boto3.client("ec2", region_name=REGION)
    volume = client.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}])["Volumes"][0]
    tags = [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": name},
            {"Key": contract.TAG_OWNER, "Value": ME}]
    return client.create_snapshot(VolumeId=volume["VolumeId"],
                                  TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])["SnapshotId"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_and_text_agree_on_a_workstation_with_a_snapshot(aws_env, home, image, capsys):
    instance = launch_unconfigured(image, "agree")
    kept = keep_snapshot(instance, "agree")
    code, text, _ = run(capsys, "status", "--name", "agree")
    json_code, out, _ = run(capsys, "status", "--name", "agree", "--json")
    document = json.loads(out)
    assert code == json_code == 0
    [row] = document["workstations"]
    assert f"{row['name']}: {row['state']}, {row['instance_type']} in {row['zone']}" in text and row["instance_id"] in text
    deadline = datetime.strptime(row["deadman_deadline"], "%Y-%m-%dT%H:%M:%SZ")
    assert f"powers it off at {deadline:%Y-%m-%d %H:%M} UTC" in text
    assert f"data access: {row['data_access']}" in text
    assert [snap["snapshot_id"] for snap in document["snapshots"]] == re.findall(r"snapshot (snap-[0-9a-f]+)", text) == [kept]
    [snap] = document["snapshots"]
    assert f"{snap['snapshot_id']} of agree ({snap['size_gb']} GB, {snap['state']}" in text
    assert document["regions"] == [REGION] and isinstance(document["regions"], list)


@pytest.mark.parametrize("local", [[], ["--local"]])
def test_a_name_that_names_nothing_exits_1_in_text_and_json(aws_env, home, capsys, local):
    text_code, _, text_err = run(capsys, "status", "--name", "nosuch", *local)
    json_code, out, json_err = run(capsys, "status", "--name", "nosuch", "--json", *local)
    assert text_code == json_code == 1
    assert "No workstation named 'nosuch'" in text_err and "No workstation named 'nosuch'" in json_err
    assert json.loads(out)["workstations"] == []


def test_without_credentials_text_and_json_exit_the_same_way(aws_env, home, capsys, monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    text_code, _, text_err = run(capsys, "status")
    json_code, out, json_err = run(capsys, "status", "--json")
    assert text_code == json_code == 1
    assert "No AWS credentials found." in text_err and "No AWS credentials found." in json_err
    assert json.loads(out)["ec2_error"]["message"] == "No AWS credentials found."


def test_every_ssh_command_gpubox_runs_is_quiet(home, monkeypatch):
    """LogLevel=ERROR: OpenSSH then prints no sshd banner ("Authorized access only ...") into the output."""
    seen: list[list[str]] = []

    def record(argv, *_args, **_kwargs):
        seen.append(list(argv))
        return subprocess.CompletedProcess(argv, 255, "", "")

    monkeypatch.setattr(subprocess, "run", record)
    status.probe("gpubox-x")
    workstation.report("gpubox-x")
    with pytest.raises(Exception):  # noqa: B017  (each fails on the refused answer; only the command matters)
        session._run("gpubox-x", "true")  # noqa: SLF001
    with pytest.raises(Exception):  # noqa: B017
        tunnel.jupyter_endpoint("gpubox-x", None)
    guard.login_groups(ssh.Connection(alias="gpubox-x", address="127.0.0.1", port=1, user="admin", key=home / "k"))
    evidence.collect("gpubox-x", "gpubox")
    seen.append(session.login_argv("gpubox-x", ["--", "nvidia-smi"]))
    assert len(seen) == 7
    for argv in seen:
        assert argv[0] == "ssh" and "LogLevel=ERROR" in argv, argv
