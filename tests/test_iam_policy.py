"""docs/iam-policy.json allows every AWS call gpubox makes, and changes only what gpubox tagged.

The calls are read from the code itself: every boto3 operation name that appears in gpubox/ as a
method call or as a string (the EC2 wrapper takes operation names), and the AWS calls of the
amazon.aws modules the EC2 playbooks use. A new call without its permission fails here.
"""

from __future__ import annotations

import json
import re

import boto3
import pytest
import yaml

from conftest import PROJECT

POLICY = PROJECT / "docs" / "iam-policy.json"
SERVICES = {"ec2": "ec2", "ssm": "ssm", "sts": "sts", "service-quotas": "servicequotas", "iam": "iam"}
# What each amazon.aws module in the EC2 playbooks calls, as its documentation lists it.
MODULE_CALLS = {
    "amazon.aws.ec2_key": ["ec2:DescribeKeyPairs", "ec2:ImportKeyPair", "ec2:DeleteKeyPair", "ec2:CreateTags"],
    "amazon.aws.ec2_security_group": ["ec2:DescribeSecurityGroups", "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup",
                                      "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:CreateTags"],
    "amazon.aws.ec2_security_group_info": ["ec2:DescribeSecurityGroups"],
    "amazon.aws.ec2_key_info": ["ec2:DescribeKeyPairs"],
    "amazon.aws.ec2_instance_info": ["ec2:DescribeInstances"],
    "amazon.aws.ec2_instance": ["ec2:DescribeInstances", "ec2:RunInstances", "ec2:StartInstances", "ec2:TerminateInstances",
                                "ec2:CreateTags", "ec2:DescribeImages", "ec2:DescribeSubnets", "ec2:DescribeInstanceAttribute",
                                # iam_instance_profile (provision --data) and metadata_options
                                "iam:GetInstanceProfile", "iam:PassRole", "ec2:DescribeIamInstanceProfileAssociations",
                                "ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation",
                                "ec2:ModifyInstanceMetadataOptions"],
    "amazon.aws.ec2_vpc_subnet_info": ["ec2:DescribeSubnets"],
    "amazon.aws.ec2_snapshot": ["ec2:DescribeVolumes", "ec2:CreateSnapshot", "ec2:DescribeSnapshots", "ec2:CreateTags"],
    "amazon.aws.ec2_snapshot_info": ["ec2:DescribeSnapshots"],
    "amazon.aws.ec2_spot_instance_info": ["ec2:DescribeSpotInstanceRequests"],
    # With state absent, as teardown.yml uses it: it cancels requests, it never makes one.
    "amazon.aws.ec2_spot_instance": ["ec2:DescribeSpotInstanceRequests", "ec2:CancelSpotInstanceRequests"],
}
LOOKUPS = {"amazon.aws.ssm_parameter": "ssm:GetParameter"}


def allowed() -> set[str]:
    actions: set[str] = set()
    for statement in json.loads(POLICY.read_text())["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def operations() -> dict[str, str]:
    """boto3 method name -> IAM action, for every service gpubox talks to."""
    mapping = {}
    for service, prefix in SERVICES.items():
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        mapping.update({method: f"{prefix}:{api}" for method, api in client.meta.method_to_api_mapping.items()})
    return mapping


def code_calls() -> set[str]:
    mapping = operations()
    text = "\n".join(path.read_text() for path in (PROJECT / "gpubox").rglob("*.py"))
    names = set(re.findall(r"\.([a-z_]+)\(", text)) | set(re.findall(r"[\"']([a-z_]+)[\"']", text))
    calls = {mapping[name] for name in names if name in mapping}
    if "get_waiter" in text:  # the instance waiters poll DescribeInstances
        calls.add("ec2:DescribeInstances")
    return calls


def playbook_calls() -> set[str]:
    calls: set[str] = set()
    for playbook in ("provision.yml", "teardown.yml"):
        text = (PROJECT / "playbooks" / playbook).read_text()
        for play in yaml.safe_load(text):
            for task in play["tasks"]:
                module = next((key for key in task if key.startswith("amazon.aws.")), None)
                if module:
                    calls.update(MODULE_CALLS[module])
        calls.update(action for lookup, action in LOOKUPS.items() if lookup in text)
    return calls


def test_the_code_calls_are_found():
    calls = code_calls()
    # Sanity: the reading above sees the calls it must (a broken regex would pass everything).
    assert {"ec2:RunInstances", "ec2:DescribeInstances", "ec2:StopInstances", "ec2:ImportKeyPair", "ec2:CreateTags",
            "sts:GetCallerIdentity", "servicequotas:GetServiceQuota", "iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRole",
            "ec2:AssociateIamInstanceProfile", "ec2:ModifyInstanceMetadataOptions"} <= calls


@pytest.mark.parametrize("source", [code_calls, playbook_calls])
def test_every_call_is_allowed(source):
    missing = sorted(source() - allowed())
    assert missing == [], f"add to {POLICY.name}: {missing}"


def test_changes_are_scoped_to_what_gpubox_tagged():
    for statement in json.loads(POLICY.read_text())["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        reading = r"^(ec2:Describe|ssm:Get|servicequotas:Get|sts:Get|iam:Get|iam:List|iam:SimulatePrincipalPolicy$)"
        changing = [action for action in actions if not re.match(reading, action)]
        if not changing:
            continue
        conditions = json.dumps(statement.get("Condition", {}))
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        # Either tag-scoped, or only on resources gpubox does not own (images, subnets, the VPC ...).
        assert "gpubox:managed" in conditions or "ec2:CreateAction" in conditions or all(
            re.search(r":(image|subnet|network-interface|security-group|key-pair|vpc)/", resource) for resource in resources
        ) and actions == ["ec2:RunInstances"] or actions == ["ec2:CreateSecurityGroup"] or (
            # Passing a role is scoped by path and service: only gpubox's roles, only to EC2.
            actions == ["iam:PassRole"] and "iam:PassedToService" in conditions
            and all(re.search(r":role/gpubox/", resource) for resource in resources)), statement["Sid"]
