"""Who owns a workstation, and where it lives: many data scientists share one AWS account.

The owner is the stable AWS identity that provisioned it, written in the gpubox:owner tag: the
caller's unique ID as STS's GetCallerIdentity gives it (UserId), which is exactly the IAM policy
variable ${aws:userid} the generated policies compare the tag with (gpubox/cloud/iam_policy.py),
so AWS itself, not this code, keeps one data scientist's resources from another:
- an IAM user: the user's unique ID (AIDA...), which no other user ever has, even after a rename;
- an assumed role (SSO, role_arn profiles): the role's unique ID and the session name
  (AROA...:alice@example.com), so two people in one SSO permission set are two owners.
  The ARN variable ${aws:PrincipalArn} would name only the role: everyone in it would be one owner.
A session name botocore made up (botocore-session-<time>) changes on every command: gpubox
refuses to act under one (stable_or_refuse). A named workstation is acted on in the region and
account recorded when it was provisioned, and only by its owner unless --any-owner (IT).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpubox import contract, validate
from gpubox.cloud import aws, records
from gpubox.errors import GpuboxError

ANY_OWNER_FIX = "Pick another --name for yours; IT can act on it with --any-owner."


# The session name botocore gives an assumed role when the profile names none (its time in seconds).
GENERATED_SESSION = re.compile(r"^botocore-session-\d+$")
SESSION_FIX = ("Give your AWS profile a fixed session name of your own: add `role_session_name = <you>` (e.g. your login "
               "name) under its [profile ...] in ~/.aws/config, or log in with `aws sso login` (SSO names the session after you).")


@dataclass(frozen=True)
class Caller:
    account: str
    arn: str  # who the caller is, for people to read (messages)
    owner: str  # the stable identity written in gpubox:owner: ${aws:userid} (see the module's docstring)


def generated_session(arn: str) -> str:
    """The session name of an assumed-role ARN when botocore generated it, else ""."""
    if ":assumed-role/" not in arn:
        return ""
    session = arn.rsplit("/", 1)[-1]
    return session if GENERATED_SESSION.match(session) else ""


def stable_or_refuse(arn: str) -> None:
    """Refuse an identity that changes on every command: what it provisioned would be nobody's a
    minute later (refused by the CLI and by the IAM policy's owner conditions alike)."""
    session = generated_session(arn)
    if session:
        raise GpuboxError(f"Your AWS identity {arn} is an assumed role whose session name, {session}, was made up by botocore: "
                          "it changes on every command, so nothing you create would stay yours. Nothing was changed.",
                          SESSION_FIX, exit_code=2)


def caller(region: str | None) -> Caller:
    """The AWS identity of these credentials (STS needs no permission to answer this); refused
    when it is not stable."""
    identity = aws.call(aws.client("sts", region), "get_caller_identity", region)
    stable_or_refuse(identity["Arn"])
    return Caller(account=identity["Account"], arn=identity["Arn"], owner=identity["UserId"])


def doctor(region: str | None) -> aws.Check:
    """`doctor`'s line on the owner identity: the one gpubox would tag with, or why it refuses."""
    try:
        me = caller(region)
    except GpuboxError as exc:
        return aws.Check("owner identity", False, exc.message, exc.fix)
    return aws.Check("owner identity", True, f"{me.owner} ({me.arn}): what you create is tagged gpubox:owner={me.owner}")


def owner_tag(tags: dict[str, str]) -> str:
    return tags.get(contract.TAG_OWNER, "")


def refuse_foreign(what: str, name: str, owner: str, me: Caller, region: str) -> GpuboxError:
    return GpuboxError(f"Workstation name '{name}' in {region} is taken: its {what} belongs to {owner or 'someone else (no owner tag)'}, "
                       f"not to you ({me.owner}). Nothing was changed. (Owners are AWS unique IDs, the UserId of "
                       f"`aws sts get-caller-identity`; yours is that of {me.arn}.)", ANY_OWNER_FIX)


def require_mine(what: str, name: str, owner: str, me: Caller, region: str, *, any_owner: bool = False) -> None:
    if owner != me.owner and not any_owner:
        raise refuse_foreign(what, name, owner, me, region)


@dataclass(frozen=True)
class Place:
    """Where a named workstation lives: the recorded region (and account), or the one asked for."""

    name: str
    region: str
    account: str  # "" when this machine has no record of it
    instance_id: str  # likewise


def place(name: str, region: str | None) -> Place:
    """The region to act in. A --region that contradicts the record is refused: acting in the
    wrong region finds nothing there while the real instance keeps billing."""
    if region:
        validate.region(region)
    record = records.load_record(name)
    recorded = record.get("region", "")
    if region and recorded and region != recorded:
        raise GpuboxError(f"Workstation '{name}' was provisioned in {recorded} (recorded on this machine), not in {region}.",
                          f"Leave out --region, or pass --region {recorded}.", exit_code=2)
    return Place(name=name, region=region or recorded or aws.region_name(None), account=record.get("account", ""),
                 instance_id=record.get("instance_id", ""))


def check_account(where: Place, me: Caller) -> None:
    if where.account and where.account != me.account:
        raise GpuboxError(f"Workstation '{where.name}' lives in AWS account {where.account}; your credentials are for account "
                          f"{me.account}.", "Switch to that account's credentials (e.g. AWS_PROFILE=...), then run the command again.")


def check_record_agrees(where: Place, found: list[aws.Workstation]) -> None:
    """The recorded instance is still alive but is not the one AWS's tags name: someone retagged or
    replaced it. Acting on the tagged one (or on nothing) would leave the recorded one billing."""
    if not where.instance_id or any(item.instance_id == where.instance_id for item in found):
        return
    state = aws.instance_state(where.region, where.instance_id)
    if state in aws.LIVE_STATES:
        raise GpuboxError(f"This machine recorded workstation '{where.name}' as instance {where.instance_id} in {where.region} "
                          f"({state}), but AWS no longer tags it as gpubox workstation '{where.name}'.",
                          f"Look at it in the EC2 console ({where.region}); stop it there if it is yours "
                          f"(aws ec2 stop-instances --region {where.region} --instance-ids {where.instance_id}).")


@dataclass(frozen=True)
class Mine:
    place: Place
    caller: Caller
    workstation: aws.Workstation


def mine(name: str, region: str | None, *, any_owner: bool = False) -> Mine:
    """The caller's workstation of that name, in its recorded region and account."""
    where = place(name, region)
    me = caller(where.region)
    check_account(where, me)
    found = aws.workstations(where.region, name)
    check_record_agrees(where, found)
    if not found:
        raise GpuboxError(f"No gpubox workstation named '{name}' in {where.region}.",
                          "See `python runner.py status` for the ones there are, or pass --region.")
    item = found[0]
    require_mine("instance", name, item.owner, me, where.region, any_owner=any_owner)
    return Mine(where, me, item)
