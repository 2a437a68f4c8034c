"""The workstation's IAM role and instance profile for `provision --data`: created or updated
before the instance is launched (gpubox/cloud/launch.py attaches the profile), shown by `status`,
deleted by `destroy`, and the caller's IAM rights for them checked by `doctor`.

IAM is global while workstations live in a region, so the names carry both: gpubox-NAME-REGION.
Only a role and profile tagged gpubox:managed=true and gpubox:name=NAME are ever changed or deleted;
one of that name without the tags is someone else's and is left alone.

Every role carries IT's permissions boundary (gpubox/cloud/iam_policy.py: S3 object and list
actions only), and the IAM policies allow creating a role or putting its policy only with it: a
data scientist cannot turn the role into an administrator. The boundary is created once by IT
(docs/iam.md); provision --data refuses, before anything is created, when it does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from gpubox import contract, data_access
from gpubox.cloud import aws, iam_policy
from gpubox.cloud.aws import Check
from gpubox.data_access import Grant
from gpubox.errors import GpuboxError

PATH = "/gpubox/"
POLICY_NAME = "gpubox-data-access"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# What provision --data and destroy call, by the resource each is checked on (doctor).
ROLE_ACTIONS = ["iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies", "iam:DeleteRolePolicy", "iam:DeleteRole", "iam:PassRole"]
BOUNDARY_STEP = ("Ask IT to create it once (docs/iam.md): aws iam create-policy --path /gpubox/ --policy-name "
                 f"{iam_policy.BOUNDARY_NAME} --policy-document file://docs/iam/data-role-boundary.json")
PROFILE_ACTIONS = ["iam:GetInstanceProfile", "iam:CreateInstanceProfile", "iam:TagInstanceProfile", "iam:AddRoleToInstanceProfile",
                   "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"]
EC2_ACTIONS = ["ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation",
               "ec2:DescribeIamInstanceProfileAssociations"]


def role_name(name: str, region: str) -> str:
    """The role's and the instance profile's name (IAM names are global; the region keeps regions apart)."""
    return f"{contract.alias(name)}-{region}"


def _tags(name: str, owner: str) -> list[dict[str, str]]:
    return [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": name},
            {"Key": contract.TAG_OWNER, "Value": owner}]


def _ours(resource: dict, name: str) -> bool:
    tags = {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}
    return tags.get(contract.TAG_MANAGED) == contract.MANAGED_VALUE and tags.get(contract.TAG_NAME) == name


# IAM's code for a role, profile, policy or boundary that does not exist.
MISSING = ("NoSuchEntity",)


def plan_lines(name: str, region: str, grants: Sequence[Grant]) -> list[str]:
    """What --dry-run lists for the grants: the role, its exact statements, the profile."""
    if not grants:
        return []
    role = role_name(name, region)
    return [f"IAM role {PATH}{role} (assumed by EC2 only) with one inline policy, {POLICY_NAME}, replacing any earlier one",
            *(f"{POLICY_NAME}: {line}" for line in data_access.statement_lines(grants)),
            f"instance profile {role}, attached to the instance (instance role credentials through IMDSv2 only; no keys on the host)"]


@dataclass(frozen=True)
class Found:
    """Our role and instance profile as IAM has them ({} when absent)."""

    role: dict
    profile: dict


def find(iam, name: str, region: str, *, strict: bool = True, owner: str = "") -> Found:
    """The role and profile of this name. One gpubox did not tag for this workstation (or, given
    `owner`, tagged for another owner) is refused (strict, before changing anything) or passed over
    as absent (listing and deleting)."""
    wanted = role_name(name, region)
    found: dict[str, dict] = {}
    for kind, operation, key, answer in (("role", "get_role", "RoleName", "Role"),
                                         ("instance profile", "get_instance_profile", "InstanceProfileName", "InstanceProfile")):
        resource = aws.call(iam, operation, region, absent=MISSING, **{key: wanted}).get(answer, {})
        if not resource:
            found[kind] = {}
            continue
        if not _ours(resource, name):
            if not strict:
                found[kind] = {}
                continue
            raise GpuboxError(f"An IAM {kind} named {wanted} exists that gpubox did not create for workstation '{name}'.",
                              f"gpubox leaves it alone: ask its owner to rename or delete it, or provision under another --name.")
        held_by = {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}.get(contract.TAG_OWNER, "")
        if strict and owner and held_by != owner:
            raise GpuboxError(f"The IAM {kind} {wanted} of workstation '{name}' belongs to {held_by or 'someone else (no owner tag)'}, "
                              f"not to you ({owner}). Nothing was changed.", "Pick another --name for yours; IT can delete it.")
        found[kind] = resource
    return Found(role=found["role"], profile=found["instance profile"])


def check(name: str, region: str, owner: str) -> None:
    """Before anything is created: the role's name is not someone else's, and IT's boundary exists."""
    find(aws.client("iam", region), name, region, owner=owner)
    boundary(region)


def exists(name: str, region: str) -> bool:
    """The workstation has a role or instance profile of gpubox's already."""
    current = find(aws.client("iam", region), name, region, strict=False)
    return bool(current.role or current.profile)


def _account(region: str | None) -> str:
    return aws.call(aws.client("sts", region), "get_caller_identity", region)["Account"]


def boundary(region: str | None) -> str:
    """The ARN of IT's permissions boundary in the caller's account; refused, with IT's one-time
    step, when it does not exist (the policies allow no role without it)."""
    account = _account(region)
    arn = iam_policy.boundary_arn(account)
    if not aws.call(aws.client("iam", region), "get_policy", region, absent=MISSING, PolicyArn=arn):
        raise GpuboxError(f"The permissions boundary {arn} does not exist in AWS account {account}: gpubox creates "
                          "a workstation's data role only under it (S3 object and list actions only). Nothing was created.",
                          f"{BOUNDARY_STEP}. Then run the command again; without --data nothing needs it.")
    return arn


def _boundary_of(role: dict) -> str:
    return role.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn", "")


def ensure(name: str, region: str, owner: str, grants: Sequence[Grant]) -> str:
    """Create (or update) the role under IT's boundary, replace its policy with exactly the grants,
    and make the instance profile hold it; returns the profile's name for the launch to attach.
    `owner`: the caller's stable identity (gpubox/cloud/ownership.py)."""
    iam = aws.client("iam", region)
    wanted = role_name(name, region)
    current = find(iam, name, region, owner=owner)
    bounded_by = boundary(region)  # before anything is created
    document = json.dumps(data_access.policy(grants))
    with aws.failures(region):
        if not current.role:
            iam.create_role(RoleName=wanted, Path=PATH, AssumeRolePolicyDocument=json.dumps(TRUST), Tags=_tags(name, owner),
                            PermissionsBoundary=bounded_by,
                            Description=f"gpubox workstation {name} in {region}: S3 data access chosen at provision time")
        elif _boundary_of(current.role) != bounded_by:
            # A role an older gpubox made without it: bounded first, or IAM refuses the policy.
            iam.put_role_permissions_boundary(RoleName=wanted, PermissionsBoundary=bounded_by)
        # Replaced, never added to: the one inline policy always says exactly the latest --data.
        iam.put_role_policy(RoleName=wanted, PolicyName=POLICY_NAME, PolicyDocument=document)
        if not current.profile:
            iam.create_instance_profile(InstanceProfileName=wanted, Path=PATH, Tags=_tags(name, owner))
        held = [role["RoleName"] for role in current.profile.get("Roles", [])]
        if wanted not in held:
            for other in held:  # a profile holds one role: ours
                iam.remove_role_from_instance_profile(InstanceProfileName=wanted, RoleName=other)
            iam.add_role_to_instance_profile(InstanceProfileName=wanted, RoleName=wanted)
    return wanted


def destroy_listing(region: str, name: str) -> dict[str, list[str]]:
    """What destroy deletes in IAM for the workstation (nothing that is not ours)."""
    try:
        current = find(aws.client("iam", region), name, region, strict=False)
    except GpuboxError:
        # Callers without IAM rights never had a role made: destroy goes on, and delete() says so.
        return {}
    listing: dict[str, list[str]] = {}
    if current.role:
        listing["IAM role"] = [f"{current.role['RoleName']} (and its data-access policy)"]
    if current.profile:
        listing["instance profile"] = [current.profile["InstanceProfileName"]]
    return listing


def tagged_owners(region: str, name: str) -> list[tuple[str, str]]:
    """The owners our role and profile name ([] when IAM cannot be read: destroy_listing says so)."""
    try:
        current = find(aws.client("iam", region), name, region, strict=False)
    except GpuboxError:
        return []
    return [(f"IAM {kind}", {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}.get(contract.TAG_OWNER, ""))
            for kind, resource in (("role", current.role), ("instance profile", current.profile)) if resource]


def delete(region: str, name: str) -> str:
    """Delete our profile, the role's policies and the role (after the instance is gone); returns a
    note when IAM could not even be read (the rest of destroy is done by then)."""
    iam = aws.client("iam", region)
    try:
        current = find(iam, name, region, strict=False)
    except GpuboxError as exc:
        return (f"note: IAM could not be checked for a data-access role {role_name(name, region)} ({exc.message}); "
                "if provision --data made one, delete it in the IAM console or re-run destroy with IAM rights.")
    with aws.failures(region):
        if current.profile:
            profile = current.profile["InstanceProfileName"]
            for role in current.profile.get("Roles", []):
                iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=role["RoleName"])
            iam.delete_instance_profile(InstanceProfileName=profile)
        if current.role:
            role = current.role["RoleName"]
            for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
                iam.delete_role_policy(RoleName=role, PolicyName=policy)
            # Someone may have attached a managed policy to our role: detached (it survives), or the role could not go.
            for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
            for profile in iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]:
                iam.remove_role_from_instance_profile(InstanceProfileName=profile["InstanceProfileName"], RoleName=role)
            iam.delete_role(RoleName=role)
    return ""


def grants(region: str, name: str) -> list[Grant] | None:
    """The grants on the workstation's role; None when it has no gpubox role."""
    iam = aws.client("iam", region)
    current = find(iam, name, region, strict=False)
    if not current.role:
        return None
    document = aws.call(iam, "get_role_policy", region, absent=MISSING, RoleName=current.role["RoleName"],
                        PolicyName=POLICY_NAME).get("PolicyDocument")
    if document is None:
        return []
    # boto3 hands the document back decoded; moto and older SDKs as URL-encoded JSON text.
    return data_access.grants_of(document if isinstance(document, dict) else json.loads(unquote(document)))


def attached_profile(region: str, instance_id: str) -> str:
    """The name of the instance profile associated with the instance ("" when none)."""
    associations = aws.call(aws.client("ec2", region), "describe_iam_instance_profile_associations", region,
                            Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    live = [item for item in associations if item.get("State") in ("associating", "associated")]
    return live[0]["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] if live else ""


def status_line(region: str, name: str, instance_id: str) -> str:
    """`status`'s line on the workstation's data access."""
    try:
        found = grants(region, name)
        if found is None:
            return "data access: none (no --data given)"
        attached = attached_profile(region, instance_id) == role_name(name, region)
    except GpuboxError as exc:
        return f"data access: could not be read ({exc.message})"
    shown = ", ".join(str(grant) for grant in found) or "none"
    return f"data access: {shown}" + ("" if attached else f" (instance profile {role_name(name, region)} is NOT attached)")


def _principal(arn: str) -> str:
    """The IAM ARN to simulate for the caller: an assumed role's session is its role."""
    if ":assumed-role/" in arn:
        account = arn.split(":")[4]
        return f"arn:aws:iam::{account}:role/{arn.split(':assumed-role/')[1].split('/')[0]}"
    return arn


def boundary_doctor(region: str | None) -> Check:
    """Whether IT's permissions boundary exists (only --data needs it)."""
    try:
        arn = boundary(region)
    except GpuboxError as exc:
        return Check("boundary for --data", False, exc.message, exc.fix)
    return Check("boundary for --data", True, f"{arn} exists: data roles get S3 object and list actions at most")


def doctor(region: str | None) -> Check:
    """Whether the caller may make, pass and delete the data-access role (only `--data` needs it)."""
    where = aws.region_name(region)
    try:
        caller_arn = aws.call(aws.client("sts", region), "get_caller_identity", region)["Arn"]
    except GpuboxError as exc:
        return Check("IAM for --data", False, exc.message, exc.fix)
    account = caller_arn.split(":")[4] if caller_arn.count(":") >= 5 else "ACCOUNT"
    if caller_arn.endswith(":root"):
        return Check("IAM for --data", True, "the account's root user may do everything (better use an IAM identity)")
    sample = role_name("example", where)
    asked = ((ROLE_ACTIONS, f"arn:aws:iam::{account}:role{PATH}{sample}"),
             (PROFILE_ACTIONS, f"arn:aws:iam::{account}:instance-profile{PATH}{sample}"), (EC2_ACTIONS, "*"))
    denied: list[str] = []
    iam = aws.client("iam", region)
    try:
        for actions, resource in asked:
            results = aws.call(iam, "simulate_principal_policy", region, PolicySourceArn=_principal(caller_arn), ActionNames=actions,
                               ResourceArns=[resource])["EvaluationResults"]
            denied += [result["EvalActionName"] for result in results if result["EvalDecision"] != "allowed"]
    except GpuboxError as exc:  # simulation needs iam:SimulatePrincipalPolicy: say so, never call it passed
        return aws.unchecked("IAM for --data", f"IAM's policy simulator did not answer ({exc.message})",
                             f"ask your AWS administrator whether you may call {', '.join(ROLE_ACTIONS + PROFILE_ACTIONS + EC2_ACTIONS)} "
                             "(only provision --data needs them; docs/iam.md)")
    if not denied:
        return Check("IAM for --data", True, "may create, pass (iam:PassRole) and delete the workstation's data-access role")
    return Check("IAM for --data", False, f"not allowed: {', '.join(denied)} (only provision --data and its destroy need them)",
                 f"Ask your AWS administrator to allow {', '.join(denied)} on arn:aws:iam::{account}:role{PATH}* and "
                 f"arn:aws:iam::{account}:instance-profile{PATH}* (iam:PassRole with iam:PassedToService ec2.amazonaws.com); "
                 "docs/iam.md. Without --data you can ignore this.")
