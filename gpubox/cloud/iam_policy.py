"""The IAM policies gpubox needs, generated from this one source: the data scientists' policy, IT's
policy (fleet jobs, AWX, --any-owner) and the permissions boundary of the data roles gpubox creates.

`python -m gpubox.cloud.iam_policy` writes them to docs/iam/ (tests/test_iam_policy.py fails when the
committed files differ from this output). docs/iam.md says how IT installs them.

AWS enforces ownership here, not runner.py:
- every create carries aws:RequestTag/gpubox:owner equal to the caller's stable identity,
  ${aws:userid} (what gpubox writes as the owner: gpubox/cloud/ownership.py explains the choice);
- every change, delete and iam:PassRole needs the resource's gpubox:owner to be the caller;
- only IT adds, changes or removes a gpubox:owner tag after creation (explicit denies);
- a role is created, or given a policy, only under IT's permissions boundary, which allows S3
  object and list actions and nothing else; removing or changing a boundary is denied. So
  PutRolePolicy with Action * Resource * gives the role S3 access at most, never the account.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gpubox import contract, data_access
from gpubox.cloud import policy as team_policy
from gpubox.errors import GpuboxError

VERSION = "2012-10-17"
# The caller's stable identity as a policy variable: for an IAM user its unique ID, for an assumed
# role "<role ID>:<session name>"; equal to STS GetCallerIdentity's UserId, which runner.py writes.
OWNER_VARIABLE = "${aws:userid}"
ACCOUNT_VARIABLE = "${aws:PrincipalAccount}"

# The permissions boundary IT creates once per account (docs/iam.md) and every gpubox role carries.
BOUNDARY_PATH = "/gpubox/"
BOUNDARY_NAME = "gpubox-data-role-boundary"


def boundary_arn(account: str = ACCOUNT_VARIABLE) -> str:
    """The boundary's ARN: for an account, or (default) with the caller's account as a policy
    variable, for condition values (a Resource element takes variables only after the fifth colon:
    there, BOUNDARY_RESOURCE)."""
    return f"arn:aws:iam::{account}:policy{BOUNDARY_PATH}{BOUNDARY_NAME}"


# IAM's managed policies are the account's own: no other account's can be read or changed.
BOUNDARY_RESOURCE = boundary_arn("*")


ROLES = "arn:aws:iam::*:role/gpubox/*"
PROFILES = "arn:aws:iam::*:instance-profile/gpubox/*"
OWNER_KEY = contract.TAG_OWNER
# Tags that say who owns and what gpubox manages: set only when the resource is created (or by IT),
# and the budget job's stop and warning (the workstation shows the warning to everyone logged in).
PROTECTED_KEYS = [contract.TAG_OWNER, contract.TAG_MANAGED, team_policy.TAG_BUDGET_STOPPED, team_policy.TAG_BUDGET_WARNING]

LOOKUPS = ["ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeImages", "ec2:DescribeKeyPairs",
           "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
           "ec2:DescribeSpotInstanceRequests", "ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypeOfferings",
           "ec2:DescribeRegions",
           "ec2:DescribeIamInstanceProfileAssociations", "servicequotas:GetServiceQuota", "sts:GetCallerIdentity"]
IAM_READS = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
             "iam:ListInstanceProfilesForRole", "iam:GetInstanceProfile"]
# Changes and deletes of existing gpubox resources (EC2): allowed only on the caller's own.
EC2_CHANGES = ["ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances", "ec2:CancelSpotInstanceRequests",
               "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup",
               "ec2:DeleteKeyPair", "ec2:ModifyInstanceMetadataOptions", "ec2:AssociateIamInstanceProfile",
               "ec2:ReplaceIamInstanceProfileAssociation", "ec2:DeleteSnapshot", "ec2:DeregisterImage", "ec2:ModifyVolume"]
# ModifyInstanceAttribute changes one attribute per call: the owner may change the type (provision
# --instance-type on an existing workstation) and nothing else. User data runs as root at boot and
# security groups open the host: a data scientist changing those would be root on a shared host.
TYPE_ATTRIBUTE = "ec2:Attribute/InstanceType"
# ModifyVolume's requested size (ec2:VolumeSize is the volume's current one).
SIZE_ATTRIBUTE = "ec2:Attribute/Size"
# Creates that read an existing resource: launch or restore from a snapshot, bake an instance,
# snapshot a volume (the existing one must be the caller's).
USES = ["ec2:RunInstances", "ec2:RegisterImage", "ec2:CreateImage", "ec2:CreateSnapshot"]
# The create calls whose tags EC2 applies with ec2:CreateTags as part of the call.
TAGGED_CREATES = ["RunInstances", "CreateSecurityGroup", "ImportKeyPair", "CreateSnapshot", "RegisterImage", "CreateImage"]
ROLE_CHANGES = ["iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRole"]
PROFILE_CHANGES = ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"]
# The team policy and the budget raises (gpubox/cloud/policy.py, budget.py): every data scientist
# reads them, only IT (and the managers IT gives the same statement) writes them.
TEAM_PARAMETERS = "arn:aws:ssm:*:*:parameter/gpubox/*"
TEAM_READS = ["ssm:GetParameter", "ssm:GetParametersByPath", "ssm:GetParameterHistory"]
TEAM_WRITES = ["ssm:PutParameter"]
# Calls in gpubox/ that only IT makes (budget raise: the record, and the budget stop's tag removed):
# the data scientists' policy must not allow them.
IT_ONLY_CALLS = {*TEAM_WRITES, "ec2:DeleteTags"}
# Changing the boundary policy itself (IT only).
BOUNDARY_CHANGES = ["iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"]


def _statement(sid: str, actions: list[str] | str, resources: list[str] | str, condition: dict[str, Any] | None = None,
               *, effect: str = "Allow") -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _created_by(owner: str | None) -> dict[str, Any]:
    """The create request carries gpubox:managed=true and, for a data scientist, gpubox:owner=the
    caller (owner None: IT, who creates for anyone but never without an owner tag)."""
    if owner is None:
        return {"StringEquals": {f"aws:RequestTag/{contract.TAG_MANAGED}": contract.MANAGED_VALUE},
                "Null": {f"aws:RequestTag/{OWNER_KEY}": "false"}}
    return {"StringEquals": {f"aws:RequestTag/{contract.TAG_MANAGED}": contract.MANAGED_VALUE, f"aws:RequestTag/{OWNER_KEY}": owner}}


def _owned_by(owner: str | None) -> dict[str, Any]:
    """The resource acted on is gpubox's and, for a data scientist, the caller's."""
    tags = {f"aws:ResourceTag/{contract.TAG_MANAGED}": contract.MANAGED_VALUE}
    if owner is not None:
        tags[f"aws:ResourceTag/{OWNER_KEY}"] = owner
    return {"StringEquals": tags}


def _with(condition: dict[str, Any], operator: str, values: dict[str, Any]) -> dict[str, Any]:
    return {**condition, operator: {**condition.get(operator, {}), **values}}


def _with_boundary(condition: dict[str, Any]) -> dict[str, Any]:
    return _with(condition, "StringEquals", {"iam:PermissionsBoundary": boundary_arn()})


def _workstation_allows(owner: str | None) -> list[dict[str, Any]]:
    """The Allow statements for workstations (EC2); owner: the data scientists' variable, or None
    for IT (any owner)."""
    who = "Own" if owner is not None else "Gpubox"
    created, owned = _created_by(owner), _owned_by(owner)
    statements = [
        _statement("LookupsCannotBeScopedByTag", LOOKUPS, "*"),
        # Read-only; "${aws:PrincipalArn}" cannot be a Resource (a variable only after the fifth colon).
        _statement("DoctorSimulatesRights", "iam:SimulatePrincipalPolicy", "*"),
        _statement("PublicImageParameters", "ssm:GetParameter", "arn:aws:ssm:*::parameter/aws/service/*"),
        _statement("ReadTheTeamPolicyAndBudgets", TEAM_READS, TEAM_PARAMETERS),
        # Creates: only with the tags, the owner tag naming the caller. Each create's own resource
        # types only: a source it reads (a snapshot, an instance) is never allowed by request tags.
        _statement("LaunchTaggedInstances", "ec2:RunInstances",
                   ["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:spot-instances-request/*"], created),
        _statement("LaunchWithTheseResources", "ec2:RunInstances",
                   ["arn:aws:ec2:*::image/*", "arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:*:*:network-interface/*",
                    "arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*:*:key-pair/*"]),
        _statement("CreateTaggedGroupsKeysImagesSnapshots", ["ec2:CreateSecurityGroup", "ec2:ImportKeyPair", "ec2:CreateImage",
                                                             "ec2:CreateSnapshot"],
                   ["arn:aws:ec2:*:*:security-group/*", "arn:aws:ec2:*:*:key-pair/*", "arn:aws:ec2:*::image/*",
                    "arn:aws:ec2:*::snapshot/*"], created),
        _statement("RegisterTaggedRestoreImages", "ec2:RegisterImage", "arn:aws:ec2:*::image/*", created),
        _statement("CreateGroupsInTheVpc", "ec2:CreateSecurityGroup", "arn:aws:ec2:*:*:vpc/*"),
        _statement("TagOnCreate", "ec2:CreateTags", "*", {"StringEquals": {"ec2:CreateAction": TAGGED_CREATES}}),
        # Changes, deletes, and creates from an existing resource (launch or restore from a
        # snapshot, bake an instance, snapshot a volume): only on the caller's own. A resource being
        # created has no tags yet, so this never allows a create by itself.
        _statement(f"Use{who}Resources", EC2_CHANGES + USES, "*", owned),
        _statement(f"ResizeOnly{who}Instances", "ec2:ModifyInstanceAttribute", "arn:aws:ec2:*:*:instance/*",
                   _with(owned, "Null", {TYPE_ATTRIBUTE: "false"})),
        _statement(f"Tag{who}Resources", "ec2:CreateTags", "*",
                   owned if owner is None else _with(owned, "ForAllValues:StringNotEquals", {"aws:TagKeys": PROTECTED_KEYS})),
    ]
    if owner is None:  # IT corrects owners: any tag on gpubox's resources, gpubox:owner included.
        statements.append(_statement("UntagGpuboxResources", "ec2:DeleteTags", "*", owned))
        statements.append(_statement("WriteTheTeamPolicyAndBudgets", TEAM_WRITES, TEAM_PARAMETERS))
        # The budget job reads the billed spend per owner tag (ce:GetCostAndUsage has no resource scope).
        statements.append(_statement("BilledSpendPerOwner", "ce:GetCostAndUsage", "*"))
    return statements


def _data_role_allows(owner: str | None) -> list[dict[str, Any]]:
    """The Allow statements for the data-access role (provision --data): created only under the
    boundary, changed only by its owner, passed only to EC2."""
    who = "Own" if owner is not None else "Gpubox"
    created, owned = _created_by(owner), _owned_by(owner)
    statements = [
        _statement("DataRoleReads", IAM_READS, [ROLES, PROFILES]),
        _statement("BoundaryExists", "iam:GetPolicy", BOUNDARY_RESOURCE),
        _statement("CreateRolesOnlyUnderTheBoundary", "iam:CreateRole", ROLES, _with_boundary(created)),
        _statement("CreateTaggedProfiles", "iam:CreateInstanceProfile", PROFILES, created),
        _statement("TagOnCreate", ["iam:TagRole", "iam:TagInstanceProfile"], [ROLES, PROFILES], created),
        # The boundary may be set (on a role an older gpubox made without it), never to another one.
        _statement(f"PolicyOnly{who}RolesUnderTheBoundary", ["iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"], ROLES,
                   _with_boundary(owned)),
        _statement(f"Change{who}RolesAndProfiles", ROLE_CHANGES + PROFILE_CHANGES, [ROLES, PROFILES], owned),
        _statement(f"Pass{who}RolesToEc2Only", "iam:PassRole", ROLES,
                   _with(owned, "StringEquals", {"iam:PassedToService": "ec2.amazonaws.com"})),
    ]
    if owner is None:
        statements += [
            _statement("RetagGpuboxRoles", ["iam:TagRole", "iam:TagInstanceProfile", "iam:UntagRole", "iam:UntagInstanceProfile"],
                       [ROLES, PROFILES], owned),
            # IT creates and updates the boundary (the one-time step, docs/iam.md).
            _statement("MaintainTheBoundary", ["iam:CreatePolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions",
                                               "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"], BOUNDARY_RESOURCE),
        ]
    return statements


def _workstation_denies(owner: str | None) -> list[dict[str, Any]]:
    """Explicit denies: they win over any Allow, in this policy or another one IT attaches."""
    if owner is None:
        return []
    return [
        # gpubox:owner is written by the create call (ec2:CreateAction present), never afterwards.
        _statement("NoOwnerRetagAfterCreate", "ec2:CreateTags", "*",
                   {"ForAnyValue:StringEquals": {"aws:TagKeys": PROTECTED_KEYS}, "Null": {"ec2:CreateAction": "true"}},
                   effect="Deny"),
        _statement("NoTagRemoval", "ec2:DeleteTags", "*", effect="Deny"),
    ]


def _data_role_denies(owner: str | None) -> list[dict[str, Any]]:
    # A data scientist makes no role anywhere without the boundary; IT's other jobs may make other roles.
    roles = "*" if owner is not None else ROLES
    denies = [
        _statement("NoRoleWithoutTheBoundary", ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
                                                "iam:PutRolePermissionsBoundary"], roles,
                   {"StringNotEquals": {"iam:PermissionsBoundary": boundary_arn()}}, effect="Deny"),
        _statement("NoBoundaryRemoval", "iam:DeleteRolePermissionsBoundary", roles, effect="Deny"),
    ]
    if owner is None:
        return denies
    return [
        *denies,
        _statement("NoBoundaryChange", BOUNDARY_CHANGES, BOUNDARY_RESOURCE, effect="Deny"),
        _statement("NoUntag", ["iam:UntagRole", "iam:UntagInstanceProfile"], "*", effect="Deny"),
        # IAM tags a new role through iam:TagRole with no create marker: a role that already has an
        # owner may be tagged only by that owner, and only with itself (the Allow above).
        _statement("NoTaggingOthersRoles", ["iam:TagRole", "iam:TagInstanceProfile"], "*",
                   {"Null": {f"aws:ResourceTag/{OWNER_KEY}": "false"}, "StringNotEquals": {f"aws:ResourceTag/{OWNER_KEY}": owner}},
                   effect="Deny"),
    ]


def _document(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": statements}


def data_scientists() -> dict[str, dict[str, Any]]:
    """The two managed policies IT grants every data scientist (each acts on their own resources
    only): two because one managed policy holds at most 6,144 characters."""
    return {"workstations": _document(_workstation_allows(OWNER_VARIABLE) + _workstation_denies(OWNER_VARIABLE)),
            "data-roles": _document(_data_role_allows(OWNER_VARIABLE) + _data_role_denies(OWNER_VARIABLE))}


def it() -> dict[str, dict[str, Any]]:
    """IT's two policies: the fleet jobs, AWX and --any-owner act on every owner's gpubox resources
    and may correct a gpubox:owner tag; creating roles still needs the boundary."""
    return {"workstations": _document(_workstation_allows(None) + _workstation_denies(None)),
            "data-roles": _document(_data_role_allows(None) + _data_role_denies(None))}


def boundary() -> dict[str, Any]:
    """The permissions boundary of every role gpubox creates: S3 object and list actions, nothing
    else, whatever policy the role itself is given."""
    actions = sorted({*data_access.READ_ACTIONS, *data_access.WRITE_ACTIONS, data_access.LIST_ACTION})
    return {"Version": VERSION, "Statement": [_statement("S3ObjectAndListActionsOnly", actions, "*")]}


def team_limits(team: team_policy.TeamPolicy) -> dict[str, Any]:
    """The team policy as explicit denies for the data scientists (a third managed policy): they
    win over every Allow, so a raw boto3 or console call outside the policy is refused by AWS.
    IAM sees no prices: max_hourly_usd holds through the instance types IT lists; the idle-stop cap
    and the budgets act on the workstation and through the budget job, not here."""
    instances, volumes = "arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:volume/*"
    statements = []
    if team.instance_types is not None:
        statements.append(_statement("OnlyTheTeamsInstanceTypes", "ec2:RunInstances", instances,
                                     {"StringNotEquals": {"ec2:InstanceType": list(team.instance_types)}}, effect="Deny"))
        # A stopped instance's type changed afterwards would step around the launch's deny.
        statements.append(_statement("NoResizeOutsideTheTeamsTypes", "ec2:ModifyInstanceAttribute", instances,
                                     {"Null": {TYPE_ATTRIBUTE: "false"}, "StringNotEquals": {TYPE_ATTRIBUTE: list(team.instance_types)}},
                                     effect="Deny"))
    if team.regions is not None:
        statements.append(_statement("OnlyTheTeamsRegions", ["ec2:RunInstances", "ec2:CreateVolume"], "*",
                                     {"StringNotEquals": {"aws:RequestedRegion": list(team.regions)}}, effect="Deny"))
    if team.max_disk_gb is not None:
        statements.append(_statement("NoDiskAboveTheTeamsMaximum", ["ec2:RunInstances", "ec2:CreateVolume"], volumes,
                                     {"NumericGreaterThan": {"ec2:VolumeSize": str(team.max_disk_gb)}}, effect="Deny"))
        # Growing the disk later (provision --disk-gb on an existing workstation): the new size.
        statements.append(_statement("NoGrowAboveTheTeamsMaximum", "ec2:ModifyVolume", volumes,
                                     {"NumericGreaterThan": {SIZE_ATTRIBUTE: str(team.max_disk_gb)}}, effect="Deny"))
    for number, (key, allowed) in enumerate(team.required_tags.items(), start=1):
        # Listed values: any other value, or none, is refused; no list: only a missing tag is.
        condition = ({"StringNotEquals": {f"aws:RequestTag/{key}": list(allowed)}} if allowed
                     else {"Null": {f"aws:RequestTag/{key}": "true"}})
        statements.append(_statement(f"RequiredTag{number}", "ec2:RunInstances", [instances, volumes], condition, effect="Deny"))
    if team.budget.monthly_usd is not None or team.budget.owners:
        # The budget job stopped it: only a raise (which removes the tag, IT's right) lets it start again.
        statements.append(_statement("NoStartAfterTheBudgetStop", "ec2:StartInstances", instances,
                                     {"Null": {f"aws:ResourceTag/{team_policy.TAG_BUDGET_STOPPED}": "false"}}, effect="Deny"))
    if not statements:  # a policy needs a statement: this one denies nothing gpubox or anyone needs
        statements.append(_statement("NoTeamLimits", "ec2:RunInstances", "arn:aws:ec2:*:*:instance/*",
                                     {"Null": {"ec2:InstanceType": "true"}}, effect="Deny"))
    return _document(statements)


OUTPUT = Path(__file__).resolve().parent.parent.parent / "docs" / "iam"
# The team policy docs/iam/ is generated from: IT regenerates with its own (--team-policy FILE).
EXAMPLE_TEAM_POLICY = OUTPUT.parent / "policy.example.yml"
# AWS's limit on a managed policy's size, white space not counted.
MANAGED_POLICY_LIMIT = 6144


def documents(team: team_policy.TeamPolicy | None = None) -> dict[str, dict[str, Any]]:
    """Every generated file under docs/iam/, by its name (the team's denies from `team`, by default
    the documented example)."""
    team = team or team_policy.load_file(EXAMPLE_TEAM_POLICY)
    return {**{f"data-scientist-{part}.json": document for part, document in data_scientists().items()},
            "data-scientist-team-policy.json": team_limits(team),
            **{f"it-{part}.json": document for part, document in it().items()},
            "data-role-boundary.json": boundary()}


def rendered(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write(directory: Path = OUTPUT, team: team_policy.TeamPolicy | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, document in documents(team).items():
        path = directory / filename
        path.write_text(rendered(document))
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpubox.cloud.iam_policy", description="write gpubox's IAM policies")
    parser.add_argument("directory", nargs="?", type=Path, default=OUTPUT, help="where (default: docs/iam/)")
    parser.add_argument("--team-policy", type=Path, help=f"the team policy file (default: {EXAMPLE_TEAM_POLICY.name})")
    args = parser.parse_args(argv)
    try:
        team = team_policy.load_file(args.team_policy) if args.team_policy else None
    except GpuboxError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for path in write(args.directory, team):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
