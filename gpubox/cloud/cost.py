"""What workstations cost, per region: the bundled us-east-1 list prices (gpubox/prices.py) times
each region's factor, and month-to-date spend per workstation and owner read from AWS itself
(instance state transitions, volumes, snapshots)."""

from __future__ import annotations

from gpubox import prices

# On-demand Linux GPU prices relative to us-east-1 (g4dn/g5 list prices, prices.PRICES_AS_OF):
# AWS prices each region on its own; within a region the GPU families move together closely
# enough for a budget. A region missing here is priced as us-east-1 and said so.
REGION_FACTOR: dict[str, float] = {
    "us-east-1": 1.0, "us-east-2": 1.0, "us-west-2": 1.0, "us-west-1": 1.2, "ca-central-1": 1.11,
    "eu-west-1": 1.116, "eu-west-2": 1.17, "eu-west-3": 1.17, "eu-central-1": 1.25, "eu-north-1": 1.06,
    "ap-south-1": 1.10, "ap-northeast-1": 1.35, "ap-northeast-2": 1.23, "ap-southeast-1": 1.40, "ap-southeast-2": 1.50,
    "sa-east-1": 1.70,
}


def region_factor(region: str) -> float:
    return REGION_FACTOR.get(region, 1.0)


def region_known(region: str) -> bool:
    return region in REGION_FACTOR


def hourly(instance_type: str, region: str, spot: bool = False) -> float | None:
    """USD per hour of the instance type in the region (None: no bundled price)."""
    base = prices.hourly(instance_type, spot)
    return None if base is None else round(base * region_factor(region), 4)


def gb_month(region: str) -> float:
    """gp3 storage, USD per GB-month, in the region."""
    return prices.GP3_GB_MONTH * region_factor(region)


def snapshot_gb_month(region: str) -> float:
    return prices.SNAPSHOT_GB_MONTH * region_factor(region)
