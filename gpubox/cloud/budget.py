"""Monthly budgets per owner (the team policy's `budget`): where an owner stands, the warnings at
the policy's thresholds, the budget job that stops an owner's workstations at 100 % (IT's
scheduler runs it from outside the workstations: playbooks/budget.yml), and the raises a manager
or IT records for one month (who, why, when: an SSM parameter, whose history AWS keeps with the
identity that wrote it).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, TextIO

from gpubox.cloud import aws, cost, ownership, policy, regions
from gpubox.errors import GpuboxError

RAISES = "/gpubox/budget/raises"
# On an owner's instances: the warning the budget job gave (read by status and, through the
# instance's tags, on the workstation), and the month whose budget stopped it.
TAG_WARNING = policy.TAG_BUDGET_WARNING
TAG_STOPPED = policy.TAG_BUDGET_STOPPED


@dataclass(frozen=True)
class Raise:
    owner: str
    month: str
    to: float
    reason: str
    by: str  # the AWS identity that recorded it
    at: str


@dataclass(frozen=True)
class Standing:
    owner: str
    month: str
    spent: float
    limit: float
    warn_at: tuple[int, ...]
    raised: Raise | None = None

    @property
    def percent(self) -> float:
        return 100 * self.spent / self.limit

    @property
    def over(self) -> bool:
        return self.spent >= self.limit

    @property
    def warned_at(self) -> int | None:
        """The highest warning threshold reached (None: below every one)."""
        reached = [threshold for threshold in self.warn_at if self.percent >= threshold]
        return max(reached) if reached else None

    @property
    def figures(self) -> str:
        return f"${self.spent:,.2f} of ${self.limit:,.2f} in {self.month} ({self.percent:.0f} %)"

    def line(self) -> str:
        figures = self.figures
        raised = f", raised by {self.raised.by} ({self.raised.reason})" if self.raised else ""
        if self.over:
            return (f"budget: {figures}{raised}: over budget; IT's budget job stops your running workstations "
                    "(disks kept). A manager or IT can raise it: runner.py budget raise.")
        if self.warned_at is not None:
            return f"budget: {figures}{raised}: warning, past {self.warned_at} %; at 100 % your running workstations are stopped."
        return f"budget: {figures}{raised}"


def owner_key(owner: str) -> str:
    """An SSM-safe name for an owner (an owner may hold ':' and '@'), unique by its hash."""
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", owner)[:60]
    return f"{readable}-{hashlib.sha256(owner.encode()).hexdigest()[:10]}"


def raise_name(month: str, owner: str) -> str:
    return f"{RAISES}/{month}/{owner_key(owner)}"


def raised(owner: str, month: str) -> Raise | None:
    where = policy.parameter_region()
    answer = aws.call(aws.client("ssm", where), "get_parameter", where, absent=("ParameterNotFound",), Name=raise_name(month, owner))
    if not answer:
        return None
    return Raise(**json.loads(answer["Parameter"]["Value"]))


def raise_budget(owner: str, to: float, reason: str, month: str | None = None) -> Raise:
    """Record a raise of the owner's budget for the month (this one by default): only IT's (or a
    manager's) IAM policy allows writing it; the parameter's history keeps every earlier value."""
    if not owner.strip():
        raise GpuboxError("--owner is empty.", "Give the owner as `runner.py cost --all` shows it.", exit_code=2)
    if not to > 0:
        raise GpuboxError(f"--to {to} is not a budget.", "Give the month's new budget in USD, e.g. --to 500.", exit_code=2)
    if len(reason.strip()) < 5:
        raise GpuboxError("--reason is missing or too short: a raise is recorded with why.",
                          "Example: --reason 'deadline for the churn model, approved by J. Doe'", exit_code=2)
    label, _, _ = cost.month_window(month)
    where = policy.parameter_region()
    me = ownership.caller(where)
    record = Raise(owner=owner, month=label, to=float(to), reason=reason.strip(), by=me.arn,
                   at=cost.now().strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        aws.call(aws.client("ssm", where), "put_parameter", where, Name=raise_name(label, owner), Value=json.dumps(record.__dict__),
                 Type="String", Overwrite=True, Description=f"gpubox budget raise for {owner} in {label}")
    except GpuboxError as problem:
        raise GpuboxError(f"Could not record the raise: {problem.message}",
                          "Only IT's policy (docs/iam/it-workstations.json) may write /gpubox/ parameters; ask IT.") from problem
    team, _ = policy.load_offline()
    for place in search_regions(team, None, everyone=True):
        for item in aws.workstations(place):
            if item.owner == owner and item.tags.get(TAG_STOPPED) == label:
                # AWS refuses the owner's StartInstances while the tag is there (the team's IAM policy).
                aws.call(aws.client("ec2", place), "delete_tags", place, Resources=[item.instance_id], Tags=[{"Key": TAG_STOPPED}])
    return record


def standing(team: policy.TeamPolicy, owner: str, spent: float, month: str) -> Standing | None:
    """Where the owner stands against the month's budget (None: no budget for them)."""
    extra = raised(owner, month)
    limit = extra.to if extra else team.budget.for_owner(owner)
    if limit is None:
        return None
    return Standing(owner=owner, month=month, spent=spent, limit=limit, warn_at=team.budget.warn_at_percent, raised=extra)


def search_regions(team: policy.TeamPolicy | None, region: str | None, *, everyone: bool) -> list[str]:
    """Where spend is looked for: the policy's regions (IAM keeps workstations there) and this
    machine's own, else (no region list) every region the caller uses, or for IT every enabled one."""
    if region:
        return regions.for_caller(region)
    if team is not None and team.regions is not None:
        return sorted({*team.regions, *regions.for_caller(None)})
    return regions.for_fleet(None) if everyone else regions.for_caller(None)


def my_standing(region: str | None = None) -> Standing | None:
    """The caller's own standing this month (status, provision); None without a budget."""
    team, _ = policy.load_offline()
    if team is None or (team.budget.monthly_usd is None and not team.budget.owners):
        return None
    where = search_regions(team, region, everyone=False)
    me = ownership.caller(where[0])
    found = cost.spend(where, owner=me.owner)
    return standing(team, me.owner, found.of(me.owner), found.month)


def status_lines(region: str | None = None) -> list[str]:
    """`status`'s budget line for the caller (nothing without a budget; a failure is one line)."""
    try:
        mine = my_standing(region)
    except GpuboxError as problem:
        return [f"budget: not read ({problem.message})"]
    return [mine.line()] if mine else []


def check_provision(team: policy.TeamPolicy, region: str) -> None:
    """provision: refused while the caller is at or over the month's budget."""
    if team.budget.monthly_usd is None and not team.budget.owners:
        return
    where = search_regions(team, None, everyone=False)
    me = ownership.caller(region)
    found = cost.spend(sorted({*where, region}), owner=me.owner)
    mine = standing(team, me.owner, found.of(me.owner), found.month)
    if mine is not None and mine.over:
        raise GpuboxError(f"The team policy ({team.source}) does not allow this request:\n"
                          f"  - you have spent {mine.figures} of your monthly budget [rule: budget]",
                          f"Stop or destroy workstations, or ask your manager or {team.contact} to raise it "
                          f"(runner.py budget raise --owner {me.owner} --to USD --reason WHY).", exit_code=2)


@dataclass(frozen=True)
class Action:
    owner: str
    standing: Standing
    stopped: tuple[str, ...]  # "name (instance, region)" of each stopped workstation
    warned: tuple[str, ...]


def enforce(out: TextIO, *, region: str | None = None, dry_run: bool = False) -> list[Action]:
    """The budget job: every owner's standing this month; at a warning threshold their instances
    get the warning tag; at 100 % their running workstations are stopped (disks kept) and tagged
    with the month. Each decision is printed with its figures (the job's log)."""
    team = policy.load()
    if team is None:
        raise GpuboxError("There is no team policy, so no budget to enforce.", "IT publishes one: docs/policy.md.", exit_code=2)
    where = search_regions(team, region, everyone=True)
    found = cost.spend(where, cost_explorer=True)
    instances = [item for place in where for item in aws.workstations(place)]
    actions = []
    for owner in found.owners():
        if not owner:
            continue
        mine = standing(team, owner, found.of(owner), found.month)
        if mine is None:
            continue
        theirs = [item for item in instances if item.owner == owner]
        stopped: list[str] = []
        warned: list[str] = []
        verb = "would stop" if dry_run else "stops"
        print(f"{owner}: ${mine.spent:,.2f} of ${mine.limit:,.2f} in {mine.month} ({mine.percent:.1f} %, {found.source(owner)})",
              file=out, flush=True)
        for item in theirs:
            if mine.over and item.state in ("pending", "running"):
                print(f"  {verb} {item.name} ({item.instance_id}, {item.region}): over budget; its disks are kept", file=out, flush=True)
                if not dry_run:
                    _stop(item, mine)
                stopped.append(f"{item.name} ({item.instance_id}, {item.region})")
            elif mine.warned_at is not None and not dry_run:
                _tag(item, {TAG_WARNING: f"{mine.percent:.0f}% of ${mine.limit:,.2f} in {mine.month}"})
                warned.append(item.name)
        actions.append(Action(owner, mine, tuple(stopped), tuple(warned)))
    lift_earlier_months(instances, found.month, {entry for action in actions for entry in action.stopped}, out, dry_run=dry_run)
    return actions


def lift_earlier_months(instances: list[aws.Workstation], month: str, stopped_now: set[str], out: TextIO, *, dry_run: bool) -> None:
    """A new month is a new budget: an earlier month's stop tag (which makes AWS refuse the owner's
    StartInstances, and which the owner may not remove) goes, so they can start it again. An owner
    over budget this month was stopped and tagged with this month above."""
    for item in instances:
        earlier = item.tags.get(TAG_STOPPED)
        if earlier is None or earlier == month or f"{item.name} ({item.instance_id}, {item.region})" in stopped_now:
            continue
        print(f"  {'would lift' if dry_run else 'lifts'} the {earlier} budget stop of {item.name} ({item.instance_id}, {item.region}): "
              f"{month} is a new budget", file=out, flush=True)
        if not dry_run:
            aws.call(aws.client("ec2", item.region), "delete_tags", item.region, Resources=[item.instance_id],
                     Tags=[{"Key": TAG_STOPPED}, {"Key": TAG_WARNING}])


def _tag(item: aws.Workstation, tags: dict[str, str]) -> None:
    aws.call(aws.client("ec2", item.region), "create_tags", item.region, Resources=[item.instance_id],
             Tags=[{"Key": key, "Value": value} for key, value in tags.items()])


def _stop(item: aws.Workstation, mine: Standing) -> None:
    _tag(item, {TAG_STOPPED: mine.month, TAG_WARNING: f"stopped: ${mine.spent:,.2f} of ${mine.limit:,.2f} in {mine.month}"})
    aws.call(aws.client("ec2", item.region), "stop_instances", item.region, InstanceIds=[item.instance_id])


def as_json(actions: list[Action]) -> list[dict[str, Any]]:
    return [{"owner": action.owner, "month": action.standing.month, "spent_usd": round(action.standing.spent, 2),
             "budget_usd": action.standing.limit, "percent": round(action.standing.percent, 1),
             "stopped": list(action.stopped), "warned": list(action.warned)} for action in actions]

