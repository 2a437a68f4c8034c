"""The team policy enforced by AWS: docs/iam/data-scientist-team-policy.json, generated from the team
policy, evaluated (tests/iam_eval.py) together with the data scientists' own policies on the
RunInstances request gpubox really sends (launch.run_instance's parameters, captured), so a raw
boto3 or console call outside the policy is denied too, not only runner.py's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import PROJECT
from gpubox.cloud import images, launch, ownership
from gpubox.cloud import iam_policy, policy
from iam_eval import ALLOW, EXPLICIT_DENY, Request, evaluate

ACCOUNT = "111122223333"
ALICE = ownership.Caller(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", "AIDAALICE00000000001")
TEAM = policy.parse("""\
version: 1
contact: IT cloud team <it-cloud@example.com>
instance_types: [g4dn.xlarge, g5.xlarge]
regions: [us-east-1, eu-west-1]
max_disk_gb: 500
required_tags:
  cost-center: []
""", "test")


def sent_run_instances(monkeypatch: pytest.MonkeyPatch, region: str, instance_type: str, disk_gb: int,
                       tags: dict[str, str]) -> dict[str, Any]:
    """The RunInstances parameters launch.run_instance sends for this request (nothing reaches AWS)."""
    sent: dict[str, Any] = {}

    class Recording:
        def __init__(self) -> None:
            self.region = region

        def call(self, operation: str, **arguments: Any) -> dict[str, Any]:
            sent.update(arguments)
            return {"Instances": [{"InstanceId": "i-0123456789abcdef0"}]}

    monkeypatch.setattr(images, "by_id", lambda region, ami: images.Image(ami, "debian-13", "/dev/xvda"))
    spec = launch.Spec(name="box", region=region, instance_type=instance_type, disk_gb=disk_gb, spot=False, allow_cidr="127.0.0.1/32",
                       ami="ami-0123456789abcdef0", os="debian-13", public_key="ssh-ed25519 AAAA", login_name="alice",
                       deadman_minutes=60, request_tags=tuple(tags.items()))
    launch.run_instance(spec, ALICE, Recording(), "sg-1", "")
    return sent


def decisions(sent: dict[str, Any], region: str, policies: list[dict[str, Any]]) -> dict[str, str]:
    """Each resource RunInstances creates, authorized as AWS does: its request tags, the instance's
    type, the volume's size and the requested region in the context."""
    tagged = {spec["ResourceType"]: {tag["Key"]: tag["Value"] for tag in spec["Tags"]} for spec in sent["TagSpecifications"]}
    base = {"aws:userid": ALICE.owner, "aws:PrincipalAccount": ACCOUNT, "aws:RequestedRegion": region}
    resources = {
        f"arn:aws:ec2:{region}:{ACCOUNT}:instance/*": {"ec2:InstanceType": sent["InstanceType"], **_tags(tagged["instance"])},
        f"arn:aws:ec2:{region}:{ACCOUNT}:volume/*": {"ec2:VolumeSize": str(sent["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]),
                                                     **_tags(tagged["volume"])},
        f"arn:aws:ec2:{region}::image/{sent['ImageId']}": {},
        f"arn:aws:ec2:{region}:{ACCOUNT}:security-group/sg-1": {},
        f"arn:aws:ec2:{region}:{ACCOUNT}:network-interface/*": {},
        f"arn:aws:ec2:{region}:{ACCOUNT}:key-pair/{sent['KeyName']}": {},
    }
    return {arn: evaluate(policies, Request("ec2:RunInstances", arn, {**base, **keys})) for arn, keys in resources.items()}


def _tags(tags: dict[str, str]) -> dict[str, Any]:
    return {**{f"aws:RequestTag/{key}": value for key, value in tags.items()}, "aws:TagKeys": list(tags)}


def scientist_policies(team: policy.TeamPolicy = TEAM) -> list[dict[str, Any]]:
    return [*iam_policy.data_scientists().values(), iam_policy.team_limits(team)]


def test_the_permitted_request_is_allowed(monkeypatch):
    sent = sent_run_instances(monkeypatch, "eu-west-1", "g5.xlarge", 100, {"cost-center": "CC-1"})
    assert set(decisions(sent, "eu-west-1", scientist_policies()).values()) == {ALLOW}


@pytest.mark.parametrize(("region", "instance_type", "disk_gb", "tags", "denied"), [
    ("us-east-1", "p4d.24xlarge", 100, {"cost-center": "CC-1"}, "instance/*"),
    ("us-east-1", "g5.xlarge", 100, {}, "instance/*"),  # untagged: no cost centre
    ("ap-south-1", "g5.xlarge", 100, {"cost-center": "CC-1"}, "instance/*"),
    ("us-east-1", "g5.xlarge", 2000, {"cost-center": "CC-1"}, "volume/*"),
])
def test_a_request_outside_the_team_policy_is_denied_by_aws(monkeypatch, region, instance_type, disk_gb, tags, denied):
    sent = sent_run_instances(monkeypatch, region, instance_type, disk_gb, tags)
    decided = decisions(sent, region, scientist_policies())
    assert decided[f"arn:aws:ec2:{region}:{ACCOUNT}:{denied}"] == EXPLICIT_DENY
    # Without the team's denies the same request is one the data scientists' own policies allow:
    # it is the team policy that denies it.
    assert set(decisions(sent, region, list(iam_policy.data_scientists().values())).values()) == {ALLOW}


def test_listed_tag_values_are_held_to_by_aws(monkeypatch):
    team = policy.parse("version: 1\ncontact: IT\nrequired_tags: {cost-center: [CC-1, CC-2]}\n", "test")
    good = sent_run_instances(monkeypatch, "us-east-1", "g4dn.xlarge", 100, {"cost-center": "CC-2"})
    bad = sent_run_instances(monkeypatch, "us-east-1", "g4dn.xlarge", 100, {"cost-center": "CC-9"})
    assert set(decisions(good, "us-east-1", scientist_policies(team)).values()) == {ALLOW}
    assert EXPLICIT_DENY in decisions(bad, "us-east-1", scientist_policies(team)).values()


def test_the_team_policy_is_read_by_every_data_scientist_and_written_by_it_only():
    parameter = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter{policy.PARAMETER}"
    context = {"aws:userid": ALICE.owner}
    scientists = scientist_policies()
    it = list(iam_policy.it().values())
    assert evaluate(scientists, Request("ssm:GetParameter", parameter, context)) == ALLOW
    assert evaluate(scientists, Request("ssm:PutParameter", parameter, context)) != ALLOW
    assert evaluate(it, Request("ssm:PutParameter", parameter, context)) == ALLOW
    assert evaluate(it, Request("ssm:PutParameter", f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/prod/db-password", context)) != ALLOW


def test_the_committed_team_policy_is_generated_from_the_documented_example():
    committed = json.loads((PROJECT / "docs" / "iam" / "data-scientist-team-policy.json").read_text())
    assert committed == iam_policy.team_limits(policy.load_file(iam_policy.EXAMPLE_TEAM_POLICY))
    assert {statement["Effect"] for statement in committed["Statement"]} == {"Deny"}


def test_a_workstation_the_budget_job_stopped_starts_again_only_after_a_raise():
    team = policy.parse("version: 1\ncontact: IT\nbudget: {monthly_usd: 50}\n", "test")
    instance = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"
    mine = {**launch.resource_tags("box", ALICE)}
    context = {"aws:userid": ALICE.owner, **{f"aws:ResourceTag/{key}": value for key, value in mine.items()}}
    stopped = {**context, f"aws:ResourceTag/{policy.TAG_BUDGET_STOPPED}": "2026-12"}
    assert evaluate(scientist_policies(team), Request("ec2:StartInstances", instance, context)) == ALLOW
    assert evaluate(scientist_policies(team), Request("ec2:StartInstances", instance, stopped)) == EXPLICIT_DENY
    # The data scientist can neither remove the tag nor set it to anything else.
    assert evaluate(scientist_policies(team), Request("ec2:DeleteTags", instance, {**stopped, "aws:TagKeys": [policy.TAG_BUDGET_STOPPED]})) \
        == EXPLICIT_DENY
    assert evaluate(scientist_policies(team), Request("ec2:CreateTags", instance, {
        **stopped, f"aws:RequestTag/{policy.TAG_BUDGET_STOPPED}": "", "aws:TagKeys": [policy.TAG_BUDGET_STOPPED]})) == EXPLICIT_DENY
    # Nor write the warning the workstation shows to everyone logged in (only the budget job does).
    warning = {f"aws:RequestTag/{policy.TAG_BUDGET_WARNING}": "0% of $50.00", "aws:TagKeys": [policy.TAG_BUDGET_WARNING]}
    assert evaluate(scientist_policies(team), Request("ec2:CreateTags", instance, {**context, **warning})) == EXPLICIT_DENY
    assert evaluate(list(iam_policy.it().values()), Request("ec2:CreateTags", instance, {**context, **warning})) == ALLOW
    # IT (budget raise) removes it.
    assert evaluate(list(iam_policy.it().values()), Request("ec2:DeleteTags", instance, {
        **stopped, "aws:TagKeys": [policy.TAG_BUDGET_STOPPED]})) == ALLOW


@pytest.mark.parametrize(("instance_type", "disk_gb", "denied"), [
    ("g5.2xlarge", 200, None),  # both within the team policy below
    ("p4d.24xlarge", 200, "ec2:ModifyInstanceAttribute"),
    ("g4dn.xlarge", 2000, "ec2:ModifyVolume"),
])
def test_a_resize_outside_the_team_policy_is_denied_by_aws(monkeypatch, instance_type, disk_gb, denied):
    """A stopped workstation's type or disk changed after launch (provision on an existing
    workstation, or a raw call) is held to the same list and maximum as the launch."""
    from test_iam_access import RESIZED, resize_requests  # noqa: PLC0415  (the captured calls, one place)

    team = policy.parse("version: 1\ncontact: IT\ninstance_types: [g4dn.xlarge, g5.2xlarge]\nmax_disk_gb: 500\n", "test")
    context = {"aws:userid": ALICE.owner, **{f"aws:ResourceTag/{key}": value for key, value in launch.resource_tags("box", ALICE).items()}}
    for action, keys in resize_requests(monkeypatch, instance_type, disk_gb).items():
        resource = RESIZED[action].replace("111122223333", ACCOUNT)
        verdict = evaluate(scientist_policies(team), Request(action, resource, {**context, **keys}))
        assert verdict == (EXPLICIT_DENY if action == denied else ALLOW), action
        # Without the team's denies the same call is the owner's to make: the team policy denies it.
        assert evaluate(list(iam_policy.data_scientists().values()), Request(action, resource, {**context, **keys})) == ALLOW
