"""Cost and budgets on the moto server: `cost` against a hand computation, the warning in `status`
and on the workstation's tags, the budget job stopping only the over-budget owner's workstations,
and `budget raise` letting the next provision through. The clock (cost.now) is set forward: moto's
instances are launched now, and a month of spend cannot be waited for."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from gpubox import ansible, cli, contract, workstation
from gpubox.cloud import budget, cost, ownership, policy
from gpubox.commands import lifecycle

US, EU = "us-east-1", "eu-west-1"
TEAM = """\
version: 1
contact: IT cloud team <it-cloud@example.com>
regions: [us-east-1, eu-west-1]
budget:
  monthly_usd: 50
  warn_at_percent: [80]
  owners:
    AIDABOB0000000000001: 1000
"""
BOB = "AIDABOB0000000000001"
# By hand, from AWS's list prices (docs: gpubox/prices.py, gpubox/cloud/cost.py): USD per hour and per GB-month.
G5_XLARGE_US = 1.006
G4DN_XLARGE_EU = 0.526 * 1.116
GP3_US, GP3_EU, SNAPSHOT_US = 0.08, 0.08 * 1.116, 0.05


def an_ami(region: str) -> str:
    return boto3.client("ec2", region_name=region).describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


def launch(region: str, name: str, owner: str, instance_type: str, disk_gb: int = 100) -> dict:
    """A gpubox workstation as launch.py tags it (owner, name, managed), on the instance and its disk."""
    tags = [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": name},
            {"Key": contract.TAG_OWNER, "Value": owner}]
    return boto3.client("ec2", region_name=region).run_instances(
        ImageId=an_ami(region), MinCount=1, MaxCount=1, InstanceType=instance_type,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": disk_gb, "VolumeType": "gp3"}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}])["Instances"][0]


def described(region: str, instance_id: str) -> dict:
    return boto3.client("ec2", region_name=region).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def volume_of(region: str, instance: dict) -> dict:
    volume_id = described(region, instance["InstanceId"])["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    return boto3.client("ec2", region_name=region).describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def month_hours(at: datetime) -> float:
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return ((start + timedelta(days=32)).replace(day=1) - start).total_seconds() / 3600


@pytest.fixture
def team(aws_env, monkeypatch):
    ssm = boto3.client("ssm", region_name=US)
    ssm.put_parameter(Name=policy.PARAMETER, Value=TEAM, Type="String", Overwrite=True)
    yield aws_env
    ssm.delete_parameter(Name=policy.PARAMETER)
    for region in (US, EU):
        client = boto3.client("ec2", region_name=region)
        ids = [item["InstanceId"] for reservation in client.describe_instances()["Reservations"] for item in reservation["Instances"]]
        if ids:
            client.terminate_instances(InstanceIds=ids)
        for snap in client.describe_snapshots(OwnerIds=["self"], Filters=contract.managed_filters())["Snapshots"]:
            client.delete_snapshot(SnapshotId=snap["SnapshotId"])
        for volume in client.describe_volumes()["Volumes"]:
            if volume["State"] == "available":
                client.delete_volume(VolumeId=volume["VolumeId"])


def later(monkeypatch: pytest.MonkeyPatch, since: datetime, hours: float) -> datetime:
    at = since + timedelta(hours=hours)
    if at.month != since.month:
        pytest.skip("the month ends within the hours this test moves the clock forward")
    monkeypatch.setattr(cost, "now", lambda: at)
    return at


def test_cost_matches_a_hand_computation(team, monkeypatch, capsys):
    me = ownership.caller(US).owner
    running = launch(US, "train", me, "g5.xlarge")
    stopped = launch(EU, "eval", me, "g4dn.xlarge", disk_gb=200)
    boto3.client("ec2", region_name=EU).stop_instances(InstanceIds=[stopped["InstanceId"]])
    volume = volume_of(US, running)
    ec2 = boto3.client("ec2", region_name=US)
    snaps = [ec2.create_snapshot(VolumeId=volume["VolumeId"], TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": contract.TAG_MANAGED, "Value": "true"}, {"Key": contract.TAG_NAME, "Value": "train"},
        {"Key": contract.TAG_OWNER, "Value": me}]}]) for _ in range(2)]
    launched = described(US, running["InstanceId"])["LaunchTime"]
    at = later(monkeypatch, launched, 10)

    assert cli.main(["cost", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    lines = {line["name"]: line for line in shown["workstations"]}
    month = month_hours(at)
    # train: 10 h of g5.xlarge, its 100 GB disk since it was made, two 100 GB snapshots since they were taken.
    train = (10 * G5_XLARGE_US + 100 * GP3_US * (at - volume["CreateTime"]).total_seconds() / 3600 / month
             + sum(100 * SNAPSHOT_US * (at - snap["StartTime"]).total_seconds() / 3600 / month for snap in snaps))
    # eval: stopped, so only its 200 GB disk bills, plus the seconds it ran before the stop (EC2's own stop time).
    eval_disk = volume_of(EU, stopped)
    stopped_at = datetime.strptime(described(EU, stopped["InstanceId"])["StateTransitionReason"].split("(")[1][:19],
                                   "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    ran = max((stopped_at - described(EU, stopped["InstanceId"])["LaunchTime"]).total_seconds(), 0) / 3600
    evaluation = ran * G4DN_XLARGE_EU + 200 * GP3_EU * (at - eval_disk["CreateTime"]).total_seconds() / 3600 / month
    assert lines["train"]["instance_hours"] == pytest.approx(10, abs=0.01)
    assert lines["train"]["snapshot_count"] == 2 and lines["train"]["snapshot_gb"] == 200
    assert lines["train"]["total_usd"] == pytest.approx(train, abs=0.01)
    assert lines["eval"]["state"] == "stopped" and lines["eval"]["disk_gb"] == 200
    assert lines["eval"]["total_usd"] == pytest.approx(evaluation, abs=0.01)
    [mine] = shown["owners"]
    assert mine["spent_usd"] == pytest.approx(train + evaluation, abs=0.02) and mine["budget_usd"] == 50
    assert mine["percent"] == pytest.approx(100 * (train + evaluation) / 50, abs=0.1)
    assert cli.main(["cost"]) == 0
    text = capsys.readouterr().out
    assert f"${train + evaluation:,.2f} of $50.00" in text and "train (us-east-1, running g5.xlarge)" in text


def status_text() -> list[str]:
    from gpubox import status  # noqa: PLC0415

    # The instances' reports are never read over SSH here (moto's addresses are not ours).
    return list(status.text(None, None, ec2_lines=lambda region, name: lifecycle.status(region, name, read_report=lambda alias: None)))


def test_the_budget_warns_then_stops_only_the_owners_workstations_and_a_raise_lets_provision_through(
        team, monkeypatch, capsys, home):
    me = ownership.caller(US).owner
    # The spend is seeded by a 6,000 GB disk: it bills whether the instance runs or not (the clock
    # is moved forward, but moto stops the instance at the real time).
    mine = launch(US, "mine", me, "g4dn.xlarge", disk_gb=6000)
    theirs = launch(US, "theirs", BOB, "g5.xlarge")
    launched = described(US, mine["InstanceId"])["LaunchTime"]
    disk_made = volume_of(US, mine)["CreateTime"]

    # 40 h: 40 h of g4dn.xlarge ($21.04) and the disk ($25.8): past 80 % of $50.
    at = later(monkeypatch, launched, 40)
    spent = 40 * 0.526 + 6000 * GP3_US * (at - disk_made).total_seconds() / 3600 / month_hours(at)
    assert 40 < spent < 50
    warning = [line for line in status_text() if line.startswith("budget:")]
    assert warning == [f"budget: ${spent:,.2f} of $50.00 in {at:%Y-%m} ({100 * spent / 50:.0f} %): warning, past 80 %; "
                       "at 100 % your running workstations are stopped."]
    assert cli.main(["budget", "enforce"]) == 0
    out = capsys.readouterr().out
    assert f"{me}: ${spent:,.2f} of $50.00" in out and "0 workstation(s) stopped" in out
    tags = {tag["Key"]: tag["Value"] for tag in described(US, mine["InstanceId"])["Tags"]}
    assert tags[budget.TAG_WARNING] == f"{100 * spent / 50:.0f}% of $50.00 in {at:%Y-%m}"
    assert described(US, mine["InstanceId"])["State"]["Name"] == "running"

    # 80 h: over budget. The job stops my workstation (its disk kept), not bob's.
    later(monkeypatch, launched, 80)
    assert cli.main(["budget", "enforce"]) == 0
    out = capsys.readouterr().out
    assert f"stops mine ({mine['InstanceId']}, {US}): over budget; its disks are kept" in out and "1 workstation(s) stopped" in out
    assert "stops theirs" not in out and f"{BOB}: $" in out
    assert described(US, mine["InstanceId"])["State"]["Name"] in ("stopping", "stopped")
    assert volume_of(US, mine)["State"] == "in-use"
    assert described(US, theirs["InstanceId"])["State"]["Name"] == "running"
    assert {tag["Key"]: tag["Value"] for tag in described(US, mine["InstanceId"])["Tags"]}[budget.TAG_STOPPED] == f"{at:%Y-%m}"

    # The next provision is refused on the budget, before anything is created ...
    def pretend_site_yml(reached, out, **_):
        return ansible.RunResult(ok=True, run_dir=home, log_path=home / "log")
    monkeypatch.setattr(workstation, "configure", pretend_site_yml)
    request = ["provision", "--name", "next", "--allow-cidr", "127.0.0.1/32", "--ami", an_ami(US), "--connect", "127.0.0.1:2222"]
    assert cli.main(request) == 2
    refused = capsys.readouterr().err
    assert "[rule: budget]" in refused and "budget raise" in refused and "IT cloud team" in refused
    assert not [item for reservation in boto3.client("ec2", region_name=US).describe_instances(
        Filters=[{"Name": "tag:gpubox:name", "Values": ["next"]}])["Reservations"] for item in reservation["Instances"]]

    # ... until a manager raises the budget, recorded with who and why.
    assert cli.main(["budget", "raise", "--owner", me, "--to", "120", "--reason", "churn deadline, approved by J. Doe"]) == 0
    recorded = json.loads(boto3.client("ssm", region_name=US).get_parameter(
        Name=budget.raise_name(launched.strftime("%Y-%m"), me))["Parameter"]["Value"])
    assert recorded["to"] == 120 and recorded["reason"] == "churn deadline, approved by J. Doe"
    assert recorded["by"] == ownership.caller(US).arn and recorded["owner"] == me
    # The raise lifts the stop's tag, with which AWS refuses the owner's StartInstances (the team's IAM policy).
    assert budget.TAG_STOPPED not in {tag["Key"] for tag in described(US, mine["InstanceId"])["Tags"]}
    capsys.readouterr()
    assert cli.main(request) == 0, capsys.readouterr().err
    assert [line for line in status_text() if line.startswith("budget:")][0].count("raised by") == 1


def test_a_raise_needs_a_reason(team):
    with pytest.raises(Exception, match="reason"):
        budget.raise_budget("someone", 100, "")



def test_a_new_month_lifts_last_months_budget_stop(team, monkeypatch, capsys):
    """The stop tag makes AWS refuse the owner's StartInstances and the owner may not remove it: the
    job removes an earlier month's, whoever's instance it is (an owner with no spend this month
    included), and keeps this month's."""
    me = ownership.caller(US).owner
    old = launch(US, "old", me, "g4dn.xlarge")
    other = launch(US, "other", BOB, "g4dn.xlarge")
    now = described(US, old["InstanceId"])["LaunchTime"]
    monkeypatch.setattr(cost, "now", lambda: now)
    ec2 = boto3.client("ec2", region_name=US)
    ec2.create_tags(Resources=[old["InstanceId"], other["InstanceId"]], Tags=[{"Key": budget.TAG_STOPPED, "Value": "1999-12"}])
    this_month = f"{now:%Y-%m}"
    kept = launch(US, "kept", BOB, "g4dn.xlarge")
    ec2.create_tags(Resources=[kept["InstanceId"]], Tags=[{"Key": budget.TAG_STOPPED, "Value": this_month}])
    assert cli.main(["budget", "enforce"]) == 0
    out = capsys.readouterr().out
    assert f"lifts the 1999-12 budget stop of old ({old['InstanceId']}, {US})" in out
    for lifted in (old, other):
        assert budget.TAG_STOPPED not in {tag["Key"] for tag in described(US, lifted["InstanceId"]).get("Tags", [])}
    assert {tag["Key"]: tag["Value"] for tag in described(US, kept["InstanceId"])["Tags"]}[budget.TAG_STOPPED] == this_month
