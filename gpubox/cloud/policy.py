"""The team policy: IT's rules for workstations (types, regions, price, disk, tags, idle stop) and
the team's monthly budgets, written once and read by everyone (docs/policy.md has the schema).

Where it lives, in the order gpubox looks:
1. GPUBOX_POLICY_FILE: a YAML file (IT's playbooks, AWX, a CI job, and `plan` offline);
2. the SSM parameter /gpubox/team-policy in GPUBOX_POLICY_REGION (default us-east-1): only IT may
   write it, every data scientist may read it (docs/iam/*.json, generated from the same file);
3. neither: no team policy, nothing is refused on its account.

runner.py's check here is the clear message first; AWS enforces the same rules through the
generated IAM policy (gpubox/cloud/iam_policy.py), so a raw boto3 or console call is held to them too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpubox import contract, validate
from gpubox.cloud import aws, cost
from gpubox.errors import GpuboxError

PARAMETER = "/gpubox/team-policy"
# On a workstation the budget job stopped: the month. AWS refuses the data scientist's
# StartInstances while it is there (docs/iam/data-scientist-team-policy.json); a budget raise removes it.
TAG_BUDGET_STOPPED = "gpubox:budget-stopped"
# The budget job's warning on an owner's instances: status shows it, and the workstation (through
# the instance's tags in its metadata) tells the people logged in.
TAG_BUDGET_WARNING = "gpubox:budget"
FILE_VARIABLE = "GPUBOX_POLICY_FILE"
PLAN_TAG = "gpubox:plan"  # provision --plan-ref: the approved plan page's reference (gpubox/cloud/admission.py)
REGION_VARIABLE = "GPUBOX_POLICY_REGION"
SCHEMA_VERSION = 1
# The idle stop runner.py asks for when --idle-stop is not given (roles/autostop's default).
DEFAULT_IDLE_MINUTES = 60
DEFAULT_WARN_PERCENT = (80,)
KNOWN_KEYS = ("version", "contact", "instance_types", "regions", "max_hourly_usd", "max_disk_gb", "required_tags",
              "idle_stop_max_minutes", "budget")
BUDGET_KEYS = ("monthly_usd", "warn_at_percent", "owners")
# Tag keys EC2 accepts (and that AWS's aws:RequestTag/ condition can name).
TAG_KEY_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _.:/=+-@")


@dataclass(frozen=True)
class Budget:
    """A monthly budget per owner (the owner tag, gpubox:owner): a default and overrides."""

    monthly_usd: float | None = None
    warn_at_percent: tuple[int, ...] = DEFAULT_WARN_PERCENT
    owners: dict[str, float] = field(default_factory=dict)

    def for_owner(self, owner: str) -> float | None:
        return self.owners.get(owner, self.monthly_usd)


@dataclass(frozen=True)
class TeamPolicy:
    source: str  # where it was read, for every message that cites it
    contact: str  # who changes it and grants exceptions
    instance_types: tuple[str, ...] | None = None  # None: any type
    regions: tuple[str, ...] | None = None
    max_hourly_usd: float | None = None
    max_disk_gb: int | None = None
    required_tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> allowed values (empty: any value)
    idle_stop_max_minutes: int | None = None
    budget: Budget = field(default_factory=Budget)


@dataclass(frozen=True)
class Ask:
    """A workstation request as the policy sees it (provision, plan, IT's modules)."""

    instance_type: str
    region: str
    disk_gb: int
    spot: bool = False
    idle_stop: int | None = None  # None: the default (60 minutes); 0: never
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Breach:
    rule: str  # the policy key broken, e.g. instance_types
    message: str


def _problem(source: str, key: str, what: str, fix: str) -> GpuboxError:
    return GpuboxError(f"Team policy ({source}): {key} {what}", fix, exit_code=2)


def _string_list(raw: Any, source: str, key: str, check: Any = None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(item, str) and item for item in raw):
        raise _problem(source, key, f"is {raw!r}, not a non-empty list of names.", f"Write it as a YAML list, e.g. {key}: [a, b].")
    for item in raw:
        if check:
            check(item)
    return tuple(raw)


def _number(raw: Any, source: str, key: str, *, whole: bool = False) -> float:
    kinds = (int,) if whole else (int, float)
    if isinstance(raw, bool) or not isinstance(raw, kinds) or raw <= 0:
        kind = "a whole number" if whole else "a number"
        raise _problem(source, key, f"is {raw!r}, not {kind} above 0.", f"Give {key} as {kind} (or leave it out: no limit).")
    return raw


def _tags(raw: Any, source: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise _problem(source, "required_tags", f"is {raw!r}, not a mapping of tag key to allowed values.",
                       "Example: required_tags: {cost-center: [], project: []} ([] allows any value).")
    tags: dict[str, tuple[str, ...]] = {}
    for key, values in raw.items():
        if not isinstance(key, str) or not key or not set(key) <= TAG_KEY_CHARACTERS or key.lower().startswith(("aws:", "gpubox:")):
            raise _problem(source, "required_tags", f"has the key {key!r}, which is no tag a data scientist can set.",
                           "Use letters, digits and _.:/=+-@ (not aws: or gpubox:), e.g. cost-center.")
        if values is None or values == []:
            tags[key] = ()
        else:
            tags[key] = _string_list(values, source, f"required_tags.{key}")
    return tags


def _budget(raw: Any, source: str) -> Budget:
    if not isinstance(raw, dict):
        raise _problem(source, "budget", f"is {raw!r}, not a mapping.", "Example: budget: {monthly_usd: 300, warn_at_percent: [80]}.")
    unknown = sorted(set(raw) - set(BUDGET_KEYS))
    if unknown:
        raise _problem(source, f"budget.{unknown[0]}", "is not a budget setting.", f"Use only {', '.join(BUDGET_KEYS)}.")
    monthly = _number(raw["monthly_usd"], source, "budget.monthly_usd") if raw.get("monthly_usd") is not None else None
    warn = raw.get("warn_at_percent", list(DEFAULT_WARN_PERCENT))
    if (not isinstance(warn, list) or not all(isinstance(item, int) and not isinstance(item, bool) and 0 < item < 100 for item in warn)):
        raise _problem(source, "budget.warn_at_percent", f"is {warn!r}, not a list of whole percentages between 1 and 99.",
                       "Example: warn_at_percent: [50, 80] (at 100 % the budget job stops the owner's workstations).")
    owners = raw.get("owners") or {}
    if not isinstance(owners, dict):
        raise _problem(source, "budget.owners", f"is {owners!r}, not a mapping of owner to monthly USD.",
                       "Key each owner by the gpubox:owner tag (`runner.py status --all` shows it), e.g. 'AIDA...': 500.")
    return Budget(monthly_usd=monthly, warn_at_percent=tuple(sorted(warn)),
                  owners={str(owner): _number(amount, source, f"budget.owners[{owner}]") for owner, amount in owners.items()})


def parse(text: str, source: str) -> TeamPolicy:
    """The policy from its YAML (or JSON) text; every mistake names the source, the key and the fix."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise GpuboxError(f"Team policy ({source}) is not valid YAML{where}.", "Fix the file (docs/policy.md has an example).",
                          exit_code=2) from None
    if not isinstance(raw, dict):
        raise GpuboxError(f"Team policy ({source}) is not a mapping of settings.", "Start from docs/policy.example.yml.", exit_code=2)
    unknown = sorted(set(raw) - set(KNOWN_KEYS))
    if unknown:
        raise _problem(source, unknown[0], "is not a team policy setting.", f"Use only {', '.join(KNOWN_KEYS)} (docs/policy.md).")
    if raw.get("version") != SCHEMA_VERSION:
        raise _problem(source, "version", f"is {raw.get('version')!r}; this gpubox reads version {SCHEMA_VERSION}.",
                       f"Set version: {SCHEMA_VERSION} (and the settings docs/policy.md lists for it).")
    contact = raw.get("contact")
    if not isinstance(contact, str) or not contact.strip():
        raise _problem(source, "contact", "is missing: every refusal names who changes the policy.",
                       "Set contact: to IT's team and address, e.g. 'IT cloud team <it-cloud@example.com>'.")

    def named_as_aws_does(check: Any, key: str, example: str) -> Any:
        def checked(value: str) -> None:
            try:
                check(value)
            except GpuboxError:
                raise _problem(source, key, f"lists {value!r}, which is not an AWS name of that kind.",
                               f"Write names as AWS does, e.g. {example}.") from None
        return checked

    region = named_as_aws_does(validate.region, "regions", "us-east-1")
    instance_type = named_as_aws_does(validate.instance_type, "instance_types", "g5.xlarge")

    return TeamPolicy(
        source=source, contact=contact.strip(),
        instance_types=_string_list(raw["instance_types"], source, "instance_types", instance_type) if "instance_types" in raw else None,
        regions=_string_list(raw["regions"], source, "regions", region) if "regions" in raw else None,
        max_hourly_usd=_number(raw["max_hourly_usd"], source, "max_hourly_usd") if raw.get("max_hourly_usd") is not None else None,
        max_disk_gb=int(_number(raw["max_disk_gb"], source, "max_disk_gb", whole=True)) if raw.get("max_disk_gb") is not None else None,
        required_tags=_tags(raw.get("required_tags") or {}, source),
        idle_stop_max_minutes=(int(_number(raw["idle_stop_max_minutes"], source, "idle_stop_max_minutes", whole=True))
                               if raw.get("idle_stop_max_minutes") is not None else None),
        budget=_budget(raw["budget"], source) if raw.get("budget") is not None else Budget(),
    )


def load_file(path: Path) -> TeamPolicy:
    try:
        text = path.read_text()
    except OSError as exc:
        raise GpuboxError(f"Cannot read the team policy file {path} ({FILE_VARIABLE}): {exc.strerror}.",
                          f"Point {FILE_VARIABLE} at IT's policy file, or unset it to read the SSM parameter {PARAMETER}.",
                          exit_code=2) from None
    return parse(text, f"file {path}")


def parameter_region() -> str:
    return os.environ.get(REGION_VARIABLE) or contract.DEFAULT_REGION


def load_parameter(region: str | None = None) -> TeamPolicy | None:
    """The SSM parameter, or None when the account has none."""
    where = region or parameter_region()
    try:  # making the client resolves the credentials, which can fail too
        answer = aws.call(aws.client("ssm", where), "get_parameter", where, absent=("ParameterNotFound",), Name=PARAMETER)
    except GpuboxError as problem:
        raise GpuboxError(f"Cannot read the team policy (SSM parameter {PARAMETER} in {where}): {problem.message}",
                          "Every data scientist's IAM policy allows reading it (docs/iam/); ask IT if yours lacks ssm:GetParameter.") \
            from problem
    if not answer:
        return None
    return parse(answer["Parameter"]["Value"], f"SSM parameter {PARAMETER} in {where}")


def load() -> TeamPolicy | None:
    """The team policy from the file IT names, else from SSM; None: there is none."""
    path = os.environ.get(FILE_VARIABLE)
    if path:
        return load_file(Path(path))
    return load_parameter()


def load_offline() -> tuple[TeamPolicy | None, str]:
    """For what creates nothing (plan, a dry run): the policy, or None and why it could not be read
    ("" when there is none); a real run reads it with load() and stops when it cannot."""
    path = os.environ.get(FILE_VARIABLE)
    if path:
        return load_file(Path(path)), ""
    try:
        return load_parameter(), ""
    except GpuboxError as problem:
        return None, problem.message


def hourly_price(instance_type: str, region: str, spot: bool) -> float | None:
    return cost.hourly(instance_type, region, spot)


def breaches(policy: TeamPolicy, ask: Ask) -> list[Breach]:
    """Every rule the request breaks, in the order the page and the error list them."""
    found = []
    if policy.instance_types is not None and ask.instance_type not in policy.instance_types:
        found.append(Breach("instance_types", f"instance type {ask.instance_type} is not allowed (allowed: {', '.join(policy.instance_types)})"))
    if policy.regions is not None and ask.region not in policy.regions:
        found.append(Breach("regions", f"region {ask.region} is not allowed (allowed: {', '.join(policy.regions)})"))
    if policy.max_hourly_usd is not None:
        price = hourly_price(ask.instance_type, ask.region, ask.spot)
        if price is None:
            found.append(Breach("max_hourly_usd", f"{ask.instance_type} has no bundled price, so it cannot be held to "
                                                  f"max_hourly_usd {policy.max_hourly_usd:.2f}"))
        elif price > policy.max_hourly_usd:
            found.append(Breach("max_hourly_usd", f"{ask.instance_type} costs ${price:.3f}/h in {ask.region}, above max_hourly_usd "
                                                  f"${policy.max_hourly_usd:.2f}"))
    if policy.max_disk_gb is not None and ask.disk_gb > policy.max_disk_gb:
        found.append(Breach("max_disk_gb", f"disk {ask.disk_gb} GB is above max_disk_gb {policy.max_disk_gb}"))
    for key, allowed in policy.required_tags.items():
        value = ask.tags.get(key, "")
        if not value:
            found.append(Breach(f"required_tags.{key}", f"tag {key} is required (pass --tag {key}=VALUE)"))
        elif allowed and value not in allowed:
            found.append(Breach(f"required_tags.{key}", f"tag {key}={value} is not one of {', '.join(allowed)}"))
    if policy.idle_stop_max_minutes is not None:
        idle = DEFAULT_IDLE_MINUTES if ask.idle_stop is None else ask.idle_stop
        if idle == 0 or idle > policy.idle_stop_max_minutes:
            said = "0 (never)" if idle == 0 else f"{idle} minutes"
            found.append(Breach("idle_stop_max_minutes", f"idle stop {said} is beyond idle_stop_max_minutes {policy.idle_stop_max_minutes}"))
    return found


def refusal(policy: TeamPolicy, broken: list[Breach]) -> GpuboxError:
    lines = "\n".join(f"  - {breach.message} [rule: {breach.rule}]" for breach in broken)
    return GpuboxError(f"The team policy ({policy.source}) does not allow this request:\n{lines}",
                       f"Change the request, or ask {policy.contact} (who owns the team policy) for an exception.", exit_code=2)


def check(ask: Ask, policy: TeamPolicy | None = None, *, read: bool = True) -> TeamPolicy | None:
    """Refuse a request outside the team policy (given, or read now when `read`); returns the policy used."""
    policy = policy if policy is not None or not read else load()
    if policy is None:
        return None
    broken = breaches(policy, ask)
    if broken:
        raise refusal(policy, broken)
    return policy


def parse_tags(values: list[str] | None) -> dict[str, str]:
    """--tag KEY=VALUE (repeatable) as a mapping; the key and value are checked as EC2 would."""
    tags: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value or not set(key) <= TAG_KEY_CHARACTERS or len(key) > 128 or len(value) > 256:
            raise GpuboxError(f"--tag {item} is not KEY=VALUE.", "Example: --tag cost-center=CC-1234 --tag project=churn", exit_code=2)
        if key.lower().startswith(("aws:", "gpubox:")):
            raise GpuboxError(f"--tag {item}: tags starting aws: or gpubox: are set by AWS and gpubox only.",
                              "Use your own key, e.g. cost-center or project.", exit_code=2)
        tags[key] = value
    return tags

