"""What workstations cost, per region: the bundled us-east-1 list prices (gpubox/prices.py) times
each region's factor, and month-to-date spend per workstation and owner read from AWS itself
(instance state transitions, volumes, snapshots)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gpubox import contract, prices
from gpubox.cloud import aws, cleanup
from gpubox.errors import GpuboxError

# The regions' factors live with the prices (gpubox/prices.py), where snapshots.py reads them too.
REGION_FACTOR = prices.REGION_FACTOR
region_factor = prices.region_factor
region_known = prices.region_known


def hourly(instance_type: str, region: str, spot: bool = False) -> float | None:
    """USD per hour of the instance type in the region (None: no bundled price)."""
    base = prices.hourly(instance_type, spot)
    return None if base is None else round(base * region_factor(region), 4)


def gb_month(region: str) -> float:
    """gp3 storage, USD per GB-month, in the region."""
    return prices.GP3_GB_MONTH * region_factor(region)


def snapshot_gb_month(region: str) -> float:
    return prices.SNAPSHOT_GB_MONTH * region_factor(region)


# --- Month-to-date spend, read from AWS.

OWNER_TAG_GROUP = f"{contract.TAG_OWNER}$"  # Cost Explorer's group key for a tag: "<key>$<value>"


def now() -> datetime:
    """The clock every figure is taken at (one place, so a test can set it)."""
    return datetime.now(timezone.utc)


def month_window(month: str | None, at: datetime | None = None) -> tuple[str, datetime, datetime]:
    """("YYYY-MM", its start, its end or now if it is the running month); --month is checked here."""
    at = at or now()
    if month is None:
        start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        try:
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=timezone.utc)
        except ValueError:
            raise GpuboxError(f"--month {month} is not YYYY-MM.", "Example: --month 2026-11", exit_code=2) from None
    following = (start + timedelta(days=32)).replace(day=1)
    if start > at:
        raise GpuboxError(f"--month {month} has not begun.", "Give this month or an earlier one.", exit_code=2)
    return start.strftime("%Y-%m"), start, min(following, at)


def month_hours(start: datetime) -> float:
    """EBS bills a GB-month over the month's own length."""
    following = (start + timedelta(days=32)).replace(day=1)
    return (following - start).total_seconds() / 3600


def _overlap_hours(begin: datetime | None, finish: datetime | None, start: datetime, end: datetime) -> float:
    if begin is None or finish is None:
        return 0.0
    seconds = (min(finish, end) - max(begin, start)).total_seconds()
    return max(seconds, 0.0) / 3600


@dataclass
class Line:
    """One workstation's spend in the window: its instance hours, its disks, its snapshots."""

    owner: str
    name: str
    region: str
    state: str  # running, stopped ... or "destroyed" when only its snapshots are left
    instance_type: str = ""
    instance_hours: float = 0.0
    instance_usd: float = 0.0
    disk_gb: int = 0
    disk_usd: float = 0.0
    snapshot_count: int = 0
    snapshot_gb: int = 0
    snapshot_usd: float = 0.0

    @property
    def total(self) -> float:
        return self.instance_usd + self.disk_usd + self.snapshot_usd

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_usd": round(self.total, 2), "instance_usd": round(self.instance_usd, 2),
                "disk_usd": round(self.disk_usd, 2), "snapshot_usd": round(self.snapshot_usd, 2),
                "instance_hours": round(self.instance_hours, 2)}


@dataclass
class Spend:
    month: str
    start: datetime
    end: datetime
    regions: list[str]
    lines: list[Line] = field(default_factory=list)
    # Cost Explorer's billed figure per owner up to billed_until (where the account has the owner
    # tag activated for cost allocation); the estimate from billed_until on is added on top.
    billed: dict[str, float] = field(default_factory=dict)
    billed_until: datetime | None = None
    accrued: dict[str, float] = field(default_factory=dict)  # the estimate after billed_until, per owner

    def estimate(self, owner: str) -> float:
        return sum(line.total for line in self.lines if line.owner == owner)

    def owners(self) -> list[str]:
        return sorted({line.owner for line in self.lines} | set(self.billed))

    def of(self, owner: str) -> float:
        """The owner's month to date: billed plus what accrued since, else the estimate."""
        if owner in self.billed:
            return self.billed[owner] + self.accrued.get(owner, 0.0)
        return self.estimate(owner)

    def source(self, owner: str) -> str:
        if owner in self.billed and self.billed_until:
            return f"Cost Explorer to {self.billed_until:%Y-%m-%d}, estimate since"
        return "estimate from EC2 (instance hours since each start, disks, snapshots)"


def _line_for(lines: dict[tuple[str, str, str], Line], owner: str, name: str, region: str) -> Line:
    key = (owner, name, region)
    if key not in lines:
        lines[key] = Line(owner=owner, name=name, region=region, state="destroyed")
    return lines[key]


def estimate(regions: list[str], start: datetime, end: datetime, owner: str | None) -> list[Line]:
    """Each workstation's spend from start to end, read from EC2: the instance's hours since its
    last start (LaunchTime) and, stopped, up to its stop (StateTransitionReason); every gpubox
    volume by size for the time it existed; every gpubox snapshot by its volume's size (what it can
    cost at most). Runs before the last start are not in EC2's state: Cost Explorer has them."""
    lines: dict[tuple[str, str, str], Line] = {}
    hours_in_month = month_hours(start.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    for region in regions:
        for item in aws.workstations(region):
            if owner is not None and item.owner != owner:
                continue
            line = _line_for(lines, item.owner, item.name, region)
            line.state, line.instance_type = item.state, item.instance_type
            finish = end if item.state in ("pending", "running") else cleanup.stopped_since(item)
            hours = _overlap_hours(item.launched, finish, start, end)
            line.instance_hours += hours
            line.instance_usd += hours * (hourly(item.instance_type, region, item.lifecycle == "spot") or 0.0)
        client = aws.client("ec2", region)
        filters = contract.managed_filters() + ([contract.tag_filter(contract.TAG_OWNER, owner)] if owner is not None else [])
        volumes = aws.call(client, "describe_volumes", region, Filters=filters)["Volumes"]
        kept = aws.call(client, "describe_snapshots", region, OwnerIds=["self"], Filters=filters)["Snapshots"]
        for volume in volumes:
            tags = {tag["Key"]: tag["Value"] for tag in volume.get("Tags", [])}
            line = _line_for(lines, tags.get(contract.TAG_OWNER, ""), tags.get(contract.TAG_NAME, "?"), region)
            line.disk_gb += volume["Size"]
            line.disk_usd += volume["Size"] * gb_month(region) * _overlap_hours(volume["CreateTime"], end, start, end) / hours_in_month
        for snap in kept:
            tags = {tag["Key"]: tag["Value"] for tag in snap.get("Tags", [])}
            line = _line_for(lines, tags.get(contract.TAG_OWNER, ""), tags.get(contract.TAG_NAME, "?"), region)
            line.snapshot_count += 1
            line.snapshot_gb += snap["VolumeSize"]
            line.snapshot_usd += (snap["VolumeSize"] * snapshot_gb_month(region)
                                  * _overlap_hours(snap["StartTime"], end, start, end) / hours_in_month)
    return sorted(lines.values(), key=lambda line: (line.owner, line.name, line.region))


def billed_by_owner(start: datetime, end: datetime) -> dict[str, float] | None:
    """Cost Explorer's unblended cost per gpubox:owner from start to the day `end` falls on (its
    figures are daily and about a day late); None where the account has no Cost Explorer, it is
    not allowed, or the owner tag is not activated for cost allocation (no owner group comes back)."""
    until = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if until <= start:
        return None
    try:
        answer = aws.call(aws.client("ce", "us-east-1"), "get_cost_and_usage", "us-east-1",
                          TimePeriod={"Start": f"{start:%Y-%m-%d}", "End": f"{until:%Y-%m-%d}"}, Granularity="MONTHLY",
                          Metrics=["UnblendedCost"], GroupBy=[{"Type": "TAG", "Key": contract.TAG_OWNER}])
    except GpuboxError:  # no Cost Explorer, no right to it: the estimate stands
        return None
    billed: dict[str, float] = {}
    for period in answer.get("ResultsByTime", []):
        for group in period.get("Groups", []):
            key = group["Keys"][0]
            if key.startswith(OWNER_TAG_GROUP) and key != OWNER_TAG_GROUP:
                owner = key.removeprefix(OWNER_TAG_GROUP)
                billed[owner] = billed.get(owner, 0.0) + float(group["Metrics"]["UnblendedCost"]["Amount"])
    return billed or None


def spend(regions: list[str], month: str | None = None, owner: str | None = None, *, cost_explorer: bool = False) -> Spend:
    """Month-to-date (or a past month's) spend per workstation, for one owner or (None) everyone;
    with cost_explorer (IT), billed figures where the account has them, the estimate on top."""
    label, start, end = month_window(month)
    found = Spend(month=label, start=start, end=end, regions=regions, lines=estimate(regions, start, end, owner))
    billed = billed_by_owner(start, end) if cost_explorer else None
    if billed:
        until = end.replace(hour=0, minute=0, second=0, microsecond=0)
        found.billed = {who: amount for who, amount in billed.items() if owner is None or who == owner}
        found.billed_until = until
        for line in estimate(regions, until, end, owner):
            found.accrued[line.owner] = found.accrued.get(line.owner, 0.0) + line.total
    return found
