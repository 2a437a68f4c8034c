"""The team policy (gpubox/cloud/policy.py): its loader's messages, and provision refusing a request
outside it before anything is created, on the moto server (the policy read from its SSM parameter)."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pytest

from conftest import PROJECT
from gpubox import ansible, cli, workstation
from gpubox.cloud import policy
from gpubox.errors import GpuboxError

REGION = "us-east-1"
# The policy: two types, two regions, a cost-center tag.
TEAM_POLICY = """\
version: 1
contact: IT cloud team <it-cloud@example.com>
instance_types: [g4dn.xlarge, g5.xlarge]
regions: [us-east-1, eu-west-1]
required_tags:
  cost-center: []
"""


def parsed(text: str) -> policy.TeamPolicy:
    return policy.parse(text, "file team.yml")


def refused(text: str) -> GpuboxError:
    with pytest.raises(GpuboxError) as caught:
        parsed(text)
    return caught.value


def test_the_documented_example_loads():
    example = policy.load_file(PROJECT / "docs" / "policy.example.yml")
    assert example.instance_types == ("g4dn.xlarge", "g5.xlarge") and example.regions == ("us-east-1", "eu-west-1")
    assert set(example.required_tags) == {"cost-center", "project"}
    assert example.budget.for_owner("AIDAALICE00000000001") == 500 and example.budget.for_owner("someone") == 300


@pytest.mark.parametrize(("text", "key", "fix"), [
    ("version: 1\ncontact: IT\ninstance_type: [g5.xlarge]\n", "instance_type is not a team policy setting", "instance_types"),
    ("version: 2\ncontact: IT\n", "version is 2", "version: 1"),
    ("version: 1\n", "contact is missing", "contact:"),
    ("version: 1\ncontact: IT\nregions: [us-east-1, Europe]\n", "regions lists 'Europe'", "us-east-1"),
    ("version: 1\ncontact: IT\nmax_disk_gb: -5\n", "max_disk_gb is -5", "whole number"),
    ("version: 1\ncontact: IT\nrequired_tags: {'gpubox:owner': []}\n", "required_tags has the key 'gpubox:owner'", "cost-center"),
    ("version: 1\ncontact: IT\nbudget: {monthly_usd: 50, warn_at_percent: [120]}\n", "budget.warn_at_percent", "at 100 %"),
    ("version: 1\ncontact: IT\nbudget: {monthly: 50}\n", "budget.monthly is not a budget setting", "monthly_usd"),
    ("version: 1\ncontact: [unclosed\n", "is not valid YAML at line 3", "docs/policy.md"),
])
def test_a_mistake_names_the_source_the_key_and_the_fix(text, key, fix):
    problem = refused(text)
    assert "team.yml" in problem.message
    assert key in str(problem) and fix in problem.fix + problem.message


def test_every_broken_rule_is_named_with_who_grants_exceptions():
    team = parsed(TEAM_POLICY + "max_hourly_usd: 1.5\nmax_disk_gb: 500\nidle_stop_max_minutes: 240\n")
    ask = policy.Ask("p4d.24xlarge", "ap-south-1", 1000, idle_stop=0)
    assert [breach.rule for breach in policy.breaches(team, ask)] == [
        "instance_types", "regions", "max_hourly_usd", "max_disk_gb", "required_tags.cost-center", "idle_stop_max_minutes"]
    with pytest.raises(GpuboxError) as caught:
        policy.check(ask, team)
    assert "[rule: regions]" in caught.value.message and "IT cloud team <it-cloud@example.com>" in caught.value.fix
    # Within the policy: nothing to refuse. The price is the region's: g5.xlarge costs more in eu-west-1.
    good = policy.Ask("g5.xlarge", "eu-west-1", 100, idle_stop=60, tags={"cost-center": "CC-1"})
    assert policy.breaches(team, good) == []
    assert [breach.rule for breach in policy.breaches(parsed(TEAM_POLICY + "max_hourly_usd: 1.05\n"), good)] == ["max_hourly_usd"]
    assert policy.breaches(parsed(TEAM_POLICY + "max_hourly_usd: 1.05\n"), policy.Ask("g5.xlarge", "us-east-1", 100,
                                                                                     tags={"cost-center": "CC-1"})) == []


def test_allowed_tag_values_are_held_to():
    team = parsed(TEAM_POLICY.replace("cost-center: []", "cost-center: [CC-1, CC-2]"))
    assert policy.breaches(team, policy.Ask("g5.xlarge", "us-east-1", 100, tags={"cost-center": "CC-2"})) == []
    assert [breach.message for breach in policy.breaches(team, policy.Ask("g5.xlarge", "us-east-1", 100, tags={"cost-center": "CC-9"}))] == [
        "tag cost-center=CC-9 is not one of CC-1, CC-2"]


def test_tags_are_key_value_and_never_gpubox_s_own():
    assert policy.parse_tags(["cost-center=CC-1", "project = churn"]) == {"cost-center": "CC-1", "project": "churn"}
    for bad in ("cost-center", "=x", "gpubox:owner=me", "aws:x=y"):
        with pytest.raises(GpuboxError):
            policy.parse_tags([bad])


# On the moto server: the policy in its SSM parameter, provision run as a data scientist would.
def runner(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=300, check=False, stdin=subprocess.DEVNULL)


def an_ami(region: str = REGION) -> str:
    return boto3.client("ec2", region_name=region).describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]


def counted() -> dict[str, int]:
    """Everything a provision could create, in each region the requests name."""
    totals = {}
    for region in (REGION, "eu-west-1", "ap-south-1"):
        ec2 = boto3.client("ec2", region_name=region)
        totals[f"{region} instances"] = sum(len(reservation["Instances"]) for reservation in ec2.describe_instances()["Reservations"])
        totals[f"{region} security groups"] = len(ec2.describe_security_groups()["SecurityGroups"])
        totals[f"{region} key pairs"] = len(ec2.describe_key_pairs()["KeyPairs"])
        totals[f"{region} volumes"] = len(ec2.describe_volumes()["Volumes"])
    totals["roles"] = len(boto3.client("iam", region_name=REGION).list_roles()["Roles"])
    return totals


@pytest.fixture
def team_parameter(aws_env):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=policy.PARAMETER, Value=TEAM_POLICY, Type="String", Overwrite=True)
    yield aws_env
    ssm.delete_parameter(Name=policy.PARAMETER)


@pytest.mark.parametrize(("extra", "rule", "said"), [
    (["--instance-type", "p4d.24xlarge", "--tag", "cost-center=CC-1"], "instance_types", "instance type p4d.24xlarge is not allowed"),
    (["--region", "ap-south-1", "--tag", "cost-center=CC-1"], "regions", "region ap-south-1 is not allowed"),
    ([], "required_tags.cost-center", "tag cost-center is required"),
])
def test_provision_outside_the_policy_is_refused_before_anything_is_created(team_parameter, extra, rule, said):
    before = counted()
    result = runner(team_parameter, "provision", "--name", "ws", "--allow-cidr", "127.0.0.1/32", "--ami", an_ami(), *extra)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{said}" in result.stderr and f"[rule: {rule}]" in result.stderr
    assert f"SSM parameter {policy.PARAMETER} in {REGION}" in result.stderr
    assert "ask IT cloud team <it-cloud@example.com>" in result.stderr and "Traceback" not in result.stderr
    assert counted() == before
    # The dry run gives the same answer: the check is the same one.
    dry = runner(team_parameter, "provision", "--name", "ws", "--allow-cidr", "127.0.0.1/32", "--dry-run", *extra)
    assert dry.returncode == 2 and f"[rule: {rule}]" in dry.stderr


def test_a_request_within_the_policy_is_created_with_its_tags(team_parameter, home, monkeypatch, capsys):
    configured = []

    def pretend_site_yml(reached, out, **_):
        # The SSH configuration of a real instance is test_ec2's work; here the instance only has to exist.
        configured.append(reached)
        return ansible.RunResult(ok=True, run_dir=home, log_path=home / "log")
    monkeypatch.setattr(workstation, "configure", pretend_site_yml)
    before = counted()
    code = cli.main(["provision", "--name", "ws", "--allow-cidr", "127.0.0.1/32", "--ami", an_ami(), "--instance-type", "g5.xlarge",
                     "--tag", "cost-center=CC-1234", "--tag", "project=churn", "--plan-ref", "plan-ws-20261207-ab12cd",
                     "--connect", "127.0.0.1:2222"])
    assert code == 0, capsys.readouterr()
    assert counted()[f"{REGION} instances"] == before[f"{REGION} instances"] + 1 and len(configured) == 1
    ec2 = boto3.client("ec2", region_name=REGION)
    found = ec2.describe_instances(Filters=[{"Name": "tag:gpubox:name", "Values": ["ws"]}])["Reservations"][0]["Instances"][0]
    tags = {tag["Key"]: tag["Value"] for tag in found["Tags"]}
    assert tags["cost-center"] == "CC-1234" and tags["project"] == "churn" and tags["gpubox:plan"] == "plan-ws-20261207-ab12cd"
    assert found["InstanceType"] == "g5.xlarge"
    volume = ec2.describe_volumes(VolumeIds=[found["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]])["Volumes"][0]
    assert {"Key": "cost-center", "Value": "CC-1234"} in volume["Tags"]
    ec2.terminate_instances(InstanceIds=[found["InstanceId"]])
