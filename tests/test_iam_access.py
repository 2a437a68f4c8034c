"""The generated policies (docs/iam/) evaluated, with tests/iam_eval.py, for two data scientists
and IT on requests built from the tags gpubox really writes: ownership and the permissions
boundary are enforced by the policy (AWS), not by runner.py.

alice is an IAM user; bob and carol are two SSO sessions of one permission set (one role), so the
owner must be the session (${aws:userid}), not the role. IT is the fleet/AWX role.
"""

from __future__ import annotations

from dataclasses import dataclass
import io
from typing import Any

import pytest

from gpubox.cloud import aws, data_role, iam_policy, launch, ownership, snapshots
from iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate, evaluate_with_boundary

ACCOUNT = "111122223333"
REGION = "us-east-1"
SSO_ROLE = "AWSReservedSSO_DataScientist_0123456789abcdef"
BOUNDARY = iam_policy.boundary_arn(ACCOUNT)
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass(frozen=True)
class Principal:
    caller: ownership.Caller
    principal_arn: str
    principal_type: str
    policies: list[dict[str, Any]]

    def context(self) -> dict[str, str]:
        keys = {"aws:userid": self.caller.owner, "aws:PrincipalArn": self.principal_arn, "aws:PrincipalAccount": ACCOUNT,
                "aws:PrincipalType": self.principal_type}
        if self.principal_type == "User":
            keys["aws:username"] = self.principal_arn.rsplit("/", 1)[-1]
        return keys


# Every data scientist holds the same two policies: only the request context tells them apart.
SCIENTIST_POLICIES = list(iam_policy.data_scientists().values())


def user(name: str, unique_id: str) -> Principal:
    arn = f"arn:aws:iam::{ACCOUNT}:user/{name}"
    return Principal(ownership.Caller(ACCOUNT, arn, unique_id), arn, "User", SCIENTIST_POLICIES)


def sso(session: str) -> Principal:
    # GetCallerIdentity of an SSO session: UserId "<role ID>:<session>", Arn .../assumed-role/<role>/<session>.
    caller = ownership.Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/{SSO_ROLE}/{session}", f"AROADATASCIENTIST0001:{session}")
    return Principal(caller, f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/{SSO_ROLE}", "AssumedRole", SCIENTIST_POLICIES)


ALICE = user("alice", "AIDAALICE00000000001")
BOB = sso("bob@example.com")
CAROL = sso("carol@example.com")
IT = Principal(ownership.Caller(ACCOUNT, f"arn:aws:sts::{ACCOUNT}:assumed-role/GpuboxIT/awx", "AROAGPUBOXIT00000001:awx"),
               f"arn:aws:iam::{ACCOUNT}:role/GpuboxIT", "AssumedRole", list(iam_policy.it().values()))


def instance_arn(number: int) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-{number:017x}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/gpubox/{data_role.role_name(name, REGION)}"


def profile_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:instance-profile/gpubox/{data_role.role_name(name, REGION)}"


SNAPSHOT = f"arn:aws:ec2:{REGION}::snapshot/snap-0123456789abcdef0"


# The tags gpubox writes, from its own code.
def workstation_tags(who: Principal, name: str) -> dict[str, str]:
    return launch.resource_tags(name, who.caller)


def role_tags(who: Principal, name: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in data_role._tags(name, who.caller.owner)}


def snapshot_tags(who: Principal, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What destroy's snapshot carries: snapshots.start's own CreateSnapshot request, captured."""
    sent: dict[str, Any] = {}

    def capture(region: str, operation: str, **arguments: Any) -> dict[str, Any]:
        sent.update(arguments)
        return {"SnapshotId": "snap-0123456789abcdef0", "Tags": []}

    monkeypatch.setattr(snapshots, "_call", capture)
    disk = snapshots.Disk("vol-1", 100, "/dev/xvda", "i-1", root=True)
    snapshots.start(REGION, name, who.caller.owner, disk)
    [spec] = sent["TagSpecifications"]
    return {tag["Key"]: tag["Value"] for tag in spec["Tags"]}


def ask(who: Principal, action: str, resource: str, *, resource_tags: dict[str, str] | None = None,
        request_tags: dict[str, str] | None = None, **keys: Any) -> str:
    context: dict[str, Any] = who.context()
    context.update({f"aws:ResourceTag/{key}": value for key, value in (resource_tags or {}).items()})
    if request_tags is not None:
        context.update({f"aws:RequestTag/{key}": value for key, value in request_tags.items()})
        context["aws:TagKeys"] = list(request_tags)
    context.update(keys)
    return evaluate(who.policies, Request(action, resource, context))


def launch_decisions(who: Principal, tags: dict[str, str], *, snapshot_tags: dict[str, str] | None = None) -> dict[str, str]:
    """RunInstances as AWS authorizes it: each resource of the request, and the tags applied on create."""
    created = {f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*": tags, f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/*": tags}
    used = [f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/subnet-1",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1",
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:key-pair/gpubox-x"]
    decisions = {resource: ask(who, "ec2:RunInstances", resource, request_tags=tags) for resource in created}
    decisions |= {resource: ask(who, "ec2:RunInstances", resource, request_tags=tags) for resource in used}
    decisions |= {f"CreateTags {resource}": ask(who, "ec2:CreateTags", resource, request_tags=tags, **{"ec2:CreateAction": "RunInstances"})
                  for resource in created}
    if snapshot_tags is not None:
        decisions[SNAPSHOT] = ask(who, "ec2:RunInstances", SNAPSHOT, resource_tags=snapshot_tags, request_tags=tags)
    return decisions


def create_role(who: Principal, name: str, tags: dict[str, str], boundary: str | None) -> dict[str, str]:
    """CreateRole with tags: iam:CreateRole and the iam:TagRole it implies."""
    keys = {"iam:PermissionsBoundary": boundary} if boundary else {}
    return {action: ask(who, action, role_arn(name), request_tags=tags, **keys) for action in ("iam:CreateRole", "iam:TagRole")}


# --- The owner's own work is allowed, for an IAM user and for an SSO session alike.

@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_the_owner_may_do_all_that_provision_stop_and_destroy_need(who, monkeypatch):
    mine = workstation_tags(who, "box")
    assert set(launch_decisions(who, mine, snapshot_tags=snapshot_tags(who, "box", monkeypatch)).values()) == {ALLOW}
    group = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"
    for action, resource in (("ec2:CreateSecurityGroup", group), ("ec2:ImportKeyPair", f"arn:aws:ec2:{REGION}:{ACCOUNT}:key-pair/gpubox-box")):
        assert ask(who, action, resource, request_tags=mine) == ALLOW, action
    for action in ("ec2:StopInstances", "ec2:StartInstances", "ec2:TerminateInstances", "ec2:ModifyInstanceMetadataOptions",
                   "ec2:AssociateIamInstanceProfile", "ec2:CreateImage"):
        assert ask(who, action, instance_arn(1), resource_tags=mine) == ALLOW, action
    for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"):
        assert ask(who, action, group, resource_tags=mine) == ALLOW, action
    # runner.py marks the instance configured once site.yml ran (launch.py).
    assert ask(who, "ec2:CreateTags", instance_arn(1), resource_tags=mine, request_tags={"gpubox:configured": "true"}) == ALLOW


@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_the_owner_may_keep_restore_and_delete_their_snapshots(who, monkeypatch):
    kept = snapshot_tags(who, "box", monkeypatch)
    volume = f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-1"
    assert ask(who, "ec2:CreateSnapshot", volume, resource_tags=workstation_tags(who, "box")) == ALLOW
    assert ask(who, "ec2:CreateSnapshot", SNAPSHOT, request_tags=kept) == ALLOW
    assert ask(who, "ec2:CreateTags", SNAPSHOT, request_tags=kept, **{"ec2:CreateAction": "CreateSnapshot"}) == ALLOW
    assert ask(who, "ec2:RegisterImage", SNAPSHOT, resource_tags=kept) == ALLOW
    assert ask(who, "ec2:RegisterImage", f"arn:aws:ec2:{REGION}::image/*", request_tags=workstation_tags(who, "box")) == ALLOW
    assert ask(who, "ec2:DeleteSnapshot", SNAPSHOT, resource_tags=kept) == ALLOW


@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_the_owner_may_make_pass_and_delete_their_data_role_under_the_boundary(who):
    tags = role_tags(who, "box")
    assert set(create_role(who, "box", tags, BOUNDARY).values()) == {ALLOW}
    assert ask(who, "iam:CreateInstanceProfile", profile_arn("box"), request_tags=tags) == ALLOW
    assert ask(who, "iam:TagInstanceProfile", profile_arn("box"), request_tags=tags) == ALLOW
    on_role = {"resource_tags": tags, "iam:PermissionsBoundary": BOUNDARY}
    assert ask(who, "iam:PutRolePolicy", role_arn("box"), **on_role) == ALLOW
    assert ask(who, "iam:PutRolePermissionsBoundary", role_arn("box"), **on_role) == ALLOW  # an older role, bounded
    assert ask(who, "iam:AddRoleToInstanceProfile", profile_arn("box"), resource_tags=tags) == ALLOW
    assert ask(who, "iam:PassRole", role_arn("box"), resource_tags=tags, **{"iam:PassedToService": "ec2.amazonaws.com"}) == ALLOW
    for action in ("iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRole"):
        assert ask(who, action, role_arn("box"), resource_tags=tags) == ALLOW, action
    for action in ("iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"):
        assert ask(who, action, profile_arn("box"), resource_tags=tags) == ALLOW, action
    assert ask(who, "iam:GetPolicy", BOUNDARY) == ALLOW  # doctor's and provision --data's check
    assert ask(who, "iam:SimulatePrincipalPolicy", who.principal_arn) == ALLOW  # doctor: only the caller's own rights


# --- Escalation: the chain to an administrator instance profile stops at its first step.

ESCALATION = [
    ("iam:CreateRole", "role", {"iam:PermissionsBoundary": None}),
    ("iam:PutRolePolicy", "role", {}),
    ("iam:CreateInstanceProfile", "profile", {}),
    ("iam:AddRoleToInstanceProfile", "profile", {}),
    ("iam:PassRole", "role", {"iam:PassedToService": "ec2.amazonaws.com"}),
    ("ec2:AssociateIamInstanceProfile", "instance", {}),
]


@pytest.mark.parametrize("boundary", [None, ADMIN, f"arn:aws:iam::{ACCOUNT}:policy/gpubox/other"], ids=["none", "admin", "another"])
@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_the_admin_chain_is_denied_at_the_role_without_the_boundary(who, boundary):
    tags = role_tags(who, "evil")  # the attacker's own tags, exactly as gpubox writes them
    resources = {"role": role_arn("evil"), "profile": profile_arn("evil"), "instance": instance_arn(9)}
    decisions = []
    for action, kind, keys in ESCALATION:
        keys = {key: (boundary if key == "iam:PermissionsBoundary" else value) for key, value in keys.items()}
        keys = {key: value for key, value in keys.items() if value is not None}
        if kind == "role" and action != "iam:CreateRole" and boundary:
            keys["iam:PermissionsBoundary"] = boundary  # the role as it would have been created
        created = action.startswith(("iam:CreateRole", "iam:CreateInstanceProfile"))
        decisions.append(ask(who, action, resources[kind], **({"request_tags": tags} if created else {"resource_tags": tags}), **keys))
    assert decisions[0] == EXPLICIT_DENY
    # Had the role existed, putting a policy on it is refused as well (no boundary or a foreign one).
    assert decisions[1] in (EXPLICIT_DENY, IMPLICIT_DENY)


def test_a_role_elsewhere_or_outside_gpubox_path_cannot_be_made_at_all():
    tags = role_tags(ALICE, "evil")
    admin_role = f"arn:aws:iam::{ACCOUNT}:role/admin"
    assert ask(ALICE, "iam:CreateRole", admin_role, request_tags=tags, **{"iam:PermissionsBoundary": BOUNDARY}) == IMPLICIT_DENY
    assert ask(ALICE, "iam:CreateRole", admin_role, request_tags=tags) == EXPLICIT_DENY
    assert ask(ALICE, "iam:AttachRolePolicy", role_arn("evil"), resource_tags=tags, **{"iam:PermissionsBoundary": BOUNDARY}) == IMPLICIT_DENY


@pytest.mark.parametrize("who", [ALICE, IT], ids=["scientist", "it"])
def test_the_boundary_can_be_neither_removed_nor_replaced(who):
    tags = role_tags(ALICE, "box")
    assert ask(who, "iam:DeleteRolePermissionsBoundary", role_arn("box"), resource_tags=tags) == EXPLICIT_DENY
    assert ask(who, "iam:PutRolePermissionsBoundary", role_arn("box"), resource_tags=tags,
               **{"iam:PermissionsBoundary": ADMIN}) == EXPLICIT_DENY
    assert ask(who, "iam:PutRolePolicy", role_arn("box"), resource_tags=tags) == EXPLICIT_DENY  # a role without one


def test_a_data_scientist_cannot_change_the_boundary_policy_itself():
    for action in iam_policy.BOUNDARY_CHANGES:
        assert ask(ALICE, action, BOUNDARY) == EXPLICIT_DENY, action


def test_a_role_given_everything_still_has_only_s3_object_and_list_actions():
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    boundary = iam_policy.boundary()
    for action, resource in (("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x"), ("iam:PassRole", role_arn("box")),
                             ("ec2:RunInstances", instance_arn(1)), ("sts:AssumeRole", f"arn:aws:iam::{ACCOUNT}:role/Admin"),
                             ("s3:PutBucketPolicy", "arn:aws:s3:::team-data")):
        assert evaluate_with_boundary([everything], boundary, Request(action, resource)) == IMPLICIT_DENY, action
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert evaluate_with_boundary([everything], boundary, Request(action, "arn:aws:s3:::team-data/a")) == ALLOW, action


def resize_requests(monkeypatch: pytest.MonkeyPatch, instance_type: str = "g5.2xlarge", disk_gb: int = 200) -> dict[str, dict[str, str]]:
    """The calls provision --instance-type/--disk-gb make on an existing stopped workstation
    (launch.apply_changes, captured), as the action and the ec2:Attribute keys AWS sets for each."""
    sent: dict[str, dict[str, Any]] = {}

    class Recording:
        region = REGION

        def call(self, operation: str, **arguments: Any) -> dict[str, Any]:
            sent[operation] = arguments
            return {}

    monkeypatch.setattr(snapshots, "disks", lambda region, found: [snapshots.Disk("vol-1", 100, "/dev/xvda", "i-1", root=True)])
    existing = aws.Workstation("box", "i-1", "stopped", "g5.xlarge", "", None, "owner", "us-east-1a")
    launch.apply_changes(Recording(), existing, [launch.Change("--instance-type", "g5.xlarge", instance_type, "stop, change, start"),
                                                 launch.Change("--disk-gb", "100 GB", f"{disk_gb} GB", "grow")], io.StringIO())
    return {"ec2:ModifyInstanceAttribute": {"ec2:Attribute": "InstanceType",
                                            "ec2:Attribute/InstanceType": sent["modify_instance_attribute"]["InstanceType"]["Value"]},
            "ec2:ModifyVolume": {"ec2:Attribute": "Size", "ec2:Attribute/Size": str(sent["modify_volume"]["Size"])}}


RESIZED = {"ec2:ModifyInstanceAttribute": instance_arn(1), "ec2:ModifyVolume": f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-1"}


@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_the_owner_may_resize_their_workstation_and_change_nothing_else_about_it(who, monkeypatch):
    mine, theirs = workstation_tags(who, "box"), workstation_tags(CAROL, "box")
    for action, keys in resize_requests(monkeypatch).items():
        assert ask(who, action, RESIZED[action], resource_tags=mine, **keys) == ALLOW, action
        assert ask(who, action, RESIZED[action], resource_tags=theirs, **keys) == IMPLICIT_DENY, action
        assert ask(IT, action, RESIZED[action], resource_tags=theirs, **keys) == ALLOW, action
    # One attribute per call: user data (runs as root at boot), security groups, termination
    # protection and the rest are never the data scientist's, even on their own instance.
    for attribute, value in (("UserData", "IyEvYmluL3NoCg=="), ("GroupId", "sg-0ffffffffffffffff"), ("DisableApiTermination", "true"),
                             ("InstanceInitiatedShutdownBehavior", "terminate"), ("Kernel", "aki-1"), ("SourceDestCheck", "false")):
        keys = {"ec2:Attribute": attribute, f"ec2:Attribute/{attribute}": value}
        assert ask(who, "ec2:ModifyInstanceAttribute", instance_arn(1), resource_tags=mine, **keys) == IMPLICIT_DENY, attribute


# --- Another owner's resources: every change is denied, whoever asks (bob and carol share one role).

@pytest.mark.parametrize(("thief", "victim"), [(BOB, ALICE), (ALICE, BOB), (CAROL, BOB)], ids=["bob-alice", "alice-bob", "carol-bob"])
def test_another_owners_workstation_snapshot_and_role_cannot_be_touched(thief, victim, monkeypatch):
    theirs = workstation_tags(victim, "box")
    for action in ("ec2:StopInstances", "ec2:TerminateInstances", "ec2:StartInstances", "ec2:AssociateIamInstanceProfile",
                   "ec2:ModifyInstanceMetadataOptions", "ec2:CreateImage"):
        assert ask(thief, action, instance_arn(1), resource_tags=theirs) == IMPLICIT_DENY, action
    kept = snapshot_tags(victim, "box", monkeypatch)
    assert ask(thief, "ec2:DeleteSnapshot", SNAPSHOT, resource_tags=kept) == IMPLICIT_DENY
    assert ask(thief, "ec2:RegisterImage", SNAPSHOT, resource_tags=kept) == IMPLICIT_DENY  # restoring their data as mine
    assert launch_decisions(thief, workstation_tags(thief, "mine"), snapshot_tags=kept)[SNAPSHOT] == IMPLICIT_DENY
    role = role_tags(victim, "box")
    for action in ("iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"):
        assert ask(thief, action, role_arn("box"), resource_tags=role, **{"iam:PermissionsBoundary": BOUNDARY}) == IMPLICIT_DENY
    for action in ("iam:DeleteRolePolicy", "iam:DeleteRole", "iam:DetachRolePolicy"):
        assert ask(thief, action, role_arn("box"), resource_tags=role) == IMPLICIT_DENY, action
    assert ask(thief, "iam:PassRole", role_arn("box"), resource_tags=role, **{"iam:PassedToService": "ec2.amazonaws.com"}) == IMPLICIT_DENY
    assert ask(thief, "iam:DeleteInstanceProfile", profile_arn("box"), resource_tags=role) == IMPLICIT_DENY


@pytest.mark.parametrize(("thief", "victim"), [(BOB, ALICE), (CAROL, BOB)], ids=["bob-alice", "carol-bob"])
def test_nobody_creates_in_another_owners_name(thief, victim):
    posing = workstation_tags(victim, "box")
    assert IMPLICIT_DENY in launch_decisions(thief, posing).values()
    assert ask(thief, "ec2:CreateSnapshot", SNAPSHOT, request_tags=posing) == IMPLICIT_DENY
    assert set(create_role(thief, "box", role_tags(victim, "box"), BOUNDARY).values()) == {IMPLICIT_DENY}


@pytest.mark.parametrize("who", [ALICE, BOB], ids=["iam-user", "sso-session"])
def test_no_data_scientist_may_retag_the_owner_after_creation(who):
    alices, own = workstation_tags(ALICE, "box"), workstation_tags(who, "mine")
    claim = {"gpubox:owner": who.caller.owner}
    for tags in (alices, own):  # another's instance, and giving one's own away
        assert ask(who, "ec2:CreateTags", instance_arn(1), resource_tags=tags, request_tags=claim) == EXPLICIT_DENY
        assert ask(who, "ec2:CreateTags", instance_arn(1), resource_tags=tags, request_tags={"gpubox:owner": "AIDAOTHER"}) == EXPLICIT_DENY
        assert ask(who, "ec2:DeleteTags", instance_arn(1), resource_tags=tags, request_tags={"gpubox:owner": ""}) == EXPLICIT_DENY
        assert ask(who, "ec2:DeleteTags", instance_arn(1), resource_tags=tags) == EXPLICIT_DENY  # no Tags: all of them
    roles = role_tags(ALICE, "box")
    # IAM has no create marker: TagRole is allowed only with the caller's own full tags, and never
    # on a role that already names another owner.
    verdict = ask(who, "iam:TagRole", role_arn("box"), resource_tags=roles, request_tags=role_tags(who, "box"))
    assert verdict == (ALLOW if who is ALICE else EXPLICIT_DENY)  # alice re-saying her own tags changes nothing
    assert ask(who, "iam:TagRole", role_arn("box"), resource_tags=roles, request_tags={"gpubox:owner": "AIDAOTHER"}) != ALLOW
    assert ask(who, "iam:UntagRole", role_arn("box"), resource_tags=roles, **{"aws:TagKeys": ["gpubox:owner"]}) == EXPLICIT_DENY
    assert ask(who, "iam:UntagInstanceProfile", profile_arn("box"), resource_tags=roles, **{"aws:TagKeys": ["gpubox:owner"]}) == EXPLICIT_DENY


# --- IT: --any-owner, fleet jobs and AWX act on everyone's, and correct owners.

@pytest.mark.parametrize("owner", [ALICE, BOB], ids=["alice", "bob"])
def test_it_acts_on_every_owners_resources(owner, monkeypatch):
    theirs = workstation_tags(owner, "box")
    for action in ("ec2:StopInstances", "ec2:StartInstances", "ec2:TerminateInstances", "ec2:CreateImage"):
        assert ask(IT, action, instance_arn(1), resource_tags=theirs) == ALLOW, action
    kept = snapshot_tags(owner, "box", monkeypatch)
    assert ask(IT, "ec2:DeleteSnapshot", SNAPSHOT, resource_tags=kept) == ALLOW
    assert ask(IT, "ec2:CreateSnapshot", f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-1", resource_tags=theirs) == ALLOW
    assert ask(IT, "ec2:CreateSnapshot", SNAPSHOT, request_tags=kept) == ALLOW  # cleanup --any-owner keeps the owner's tag
    role = role_tags(owner, "box")
    for action in ("iam:DeleteRolePolicy", "iam:DeleteRole", "iam:DetachRolePolicy"):
        assert ask(IT, action, role_arn("box"), resource_tags=role) == ALLOW, action
    assert ask(IT, "iam:DeleteInstanceProfile", profile_arn("box"), resource_tags=role) == ALLOW
    # Correcting an owner tag is IT's.
    assert ask(IT, "ec2:CreateTags", instance_arn(1), resource_tags=theirs, request_tags={"gpubox:owner": CAROL.caller.owner}) == ALLOW
    assert ask(IT, "iam:TagRole", role_arn("box"), resource_tags=role, request_tags={"gpubox:owner": CAROL.caller.owner}) == ALLOW
    assert ask(IT, "iam:CreatePolicy", BOUNDARY) == ALLOW  # the one-time step


def test_it_acts_only_on_gpubox_resources_and_never_creates_untagged_or_unbounded():
    foreign = {"Name": "prod-db"}
    assert ask(IT, "ec2:TerminateInstances", instance_arn(1), resource_tags=foreign) == IMPLICIT_DENY
    assert ask(IT, "ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*", request_tags={"gpubox:managed": "true"}) == IMPLICIT_DENY
    assert create_role(IT, "box", role_tags(ALICE, "box"), None)["iam:CreateRole"] == EXPLICIT_DENY
    assert set(create_role(IT, "box", role_tags(ALICE, "box"), BOUNDARY).values()) == {ALLOW}


# The existing resource each change acts on (the Service Authorization Reference's resource type).
ACTED_ON = {"ec2:CancelSpotInstanceRequests": f"arn:aws:ec2:{REGION}:{ACCOUNT}:spot-instances-request/sir-1",
            **dict.fromkeys(["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
                            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-1"),
            "ec2:DeleteKeyPair": f"arn:aws:ec2:{REGION}:{ACCOUNT}:key-pair/gpubox-box",
            **dict.fromkeys(["ec2:DeleteSnapshot", "ec2:RunInstances", "ec2:RegisterImage"], SNAPSHOT),
            "ec2:DeregisterImage": f"arn:aws:ec2:{REGION}::image/ami-0123456789abcdef0",
            **dict.fromkeys(["ec2:CreateSnapshot", "ec2:ModifyVolume"], f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-1")}


@pytest.mark.parametrize("action", iam_policy.EC2_CHANGES + iam_policy.USES)
def test_every_ec2_change_is_the_owners_and_its(action):
    resource, alices = ACTED_ON.get(action, instance_arn(1)), workstation_tags(ALICE, "box")
    assert ask(ALICE, action, resource, resource_tags=alices) == ALLOW
    assert ask(BOB, action, resource, resource_tags=alices) == IMPLICIT_DENY
    assert ask(IT, action, resource, resource_tags=alices) == ALLOW
    assert ask(IT, action, resource, resource_tags={"Name": "not gpubox's"}) == IMPLICIT_DENY


@pytest.mark.parametrize("action", iam_policy.ROLE_CHANGES + iam_policy.PROFILE_CHANGES)
def test_every_data_role_change_is_the_owners_and_its(action):
    resource = profile_arn("box") if action in iam_policy.PROFILE_CHANGES else role_arn("box")
    alices = role_tags(ALICE, "box")
    assert ask(ALICE, action, resource, resource_tags=alices) == ALLOW
    assert ask(BOB, action, resource, resource_tags=alices) == IMPLICIT_DENY
    assert ask(CAROL, action, resource, resource_tags=role_tags(BOB, "box")) == IMPLICIT_DENY
    assert ask(IT, action, resource, resource_tags=alices) == ALLOW
