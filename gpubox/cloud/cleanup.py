"""Stopped workstations still bill for their disks: which ones have been stopped too long, and
whether one was stopped by a spot interruption rather than by its owner or autostop.

The stop time is EC2's own: a stopped instance's StateTransitionReason reads
"User initiated (2026-11-01 10:00:00 GMT)" (moto writes UTC). A spot interruption stops the
instance with the state reason Server.SpotInstanceShutdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from gpubox import settings
from gpubox.cloud import aws
from gpubox.errors import GpuboxError

STOPPED_DAYS_VAR = "autostop_stopped_days"
DEFAULT_STOPPED_DAYS = 14
_STOP_TIME = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")
SPOT_REASONS = ("Server.SpotInstanceShutdown", "Server.SpotInstanceTermination")


@dataclass(frozen=True)
class Overdue:
    workstation: aws.Workstation
    since: datetime
    days: float


def stopped_days(config: settings.Settings | None = None) -> int:
    """autostop_stopped_days, as IT set it for the workstations (roles/autostop/defaults/main.yml)."""
    value = (config or settings.load()).get(STOPPED_DAYS_VAR)
    return DEFAULT_STOPPED_DAYS if value is None else int(value)


def stopped_since(item: aws.Workstation) -> datetime | None:
    """When a stopped instance stopped (None when it is not stopped, or EC2 did not say)."""
    if item.state != "stopped":
        return None
    found = _STOP_TIME.search(item.transition_reason)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) if found else None


def interrupted(item: aws.Workstation) -> bool:
    """Stopped (or stopping) because AWS reclaimed the spot capacity, not by its owner."""
    return item.state in ("stopping", "stopped") and item.state_reason in SPOT_REASONS


def overdue(items: list[aws.Workstation], days: int, now: datetime | None = None) -> list[Overdue]:
    """The workstations stopped longer than `days`, longest first."""
    if days < 1:
        raise GpuboxError(f"{STOPPED_DAYS_VAR} (or --days) is {days}.", "Give at least 1 day.", exit_code=2)
    now = now or datetime.now(timezone.utc)
    found = []
    for item in items:
        since = stopped_since(item)
        if since is not None and now - since > timedelta(days=days):
            found.append(Overdue(item, since, (now - since).total_seconds() / 86400))
    return sorted(found, key=lambda entry: entry.since)
