"""Bundled AWS list prices, so `plan` can price a workstation with no credentials and no network.

On-demand: Linux, us-east-1, USD per hour, from AWS's public price list. Spot: a typical recent
us-east-1 price; spot prices move by zone and hour, so the page calls them indicative. Other
regions: the us-east-1 price times the region's factor (REGION_FACTOR), for instances, disks and
snapshots alike, so `plan`, `destroy`, `status` and `cost` quote one price per region. Refresh the
tables (and PRICES_AS_OF) when AWS changes prices.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2026-11-01"
PRICE_REGION = "us-east-1"
# EBS gp3 storage, USD per GB-month: charged while the instance runs and while it is stopped.
GP3_GB_MONTH = 0.08
# EBS snapshots (standard tier), USD per GB-month of the blocks stored (https://aws.amazon.com/ebs/pricing/,
# us-east-1): a final snapshot never costs more than its volume's size at this rate.
SNAPSHOT_GB_MONTH = 0.05


@dataclass(frozen=True)
class InstancePrice:
    gpu: str
    on_demand: float
    spot: float


TABLE: dict[str, InstancePrice] = {
    "g4dn.xlarge": InstancePrice("1 x NVIDIA T4 (16 GB)", 0.526, 0.22),
    "g4dn.2xlarge": InstancePrice("1 x NVIDIA T4 (16 GB)", 0.752, 0.30),
    "g4dn.4xlarge": InstancePrice("1 x NVIDIA T4 (16 GB)", 1.204, 0.48),
    "g4dn.12xlarge": InstancePrice("4 x NVIDIA T4 (16 GB)", 3.912, 1.60),
    "g5.xlarge": InstancePrice("1 x NVIDIA A10G (24 GB)", 1.006, 0.42),
    "g5.2xlarge": InstancePrice("1 x NVIDIA A10G (24 GB)", 1.212, 0.50),
    "g5.4xlarge": InstancePrice("1 x NVIDIA A10G (24 GB)", 1.624, 0.68),
    "g5.12xlarge": InstancePrice("4 x NVIDIA A10G (24 GB)", 5.672, 2.30),
    "g6.xlarge": InstancePrice("1 x NVIDIA L4 (24 GB)", 0.805, 0.35),
    "g6.2xlarge": InstancePrice("1 x NVIDIA L4 (24 GB)", 0.978, 0.42),
    "g6.4xlarge": InstancePrice("1 x NVIDIA L4 (24 GB)", 1.323, 0.56),
    "g6e.xlarge": InstancePrice("1 x NVIDIA L40S (48 GB)", 1.861, 0.80),
    "p3.2xlarge": InstancePrice("1 x NVIDIA V100 (16 GB)", 3.06, 0.95),
    "p4d.24xlarge": InstancePrice("8 x NVIDIA A100 (40 GB)", 32.773, 12.50),
    "p5.48xlarge": InstancePrice("8 x NVIDIA H100 (80 GB)", 98.32, 40.00),
}

# On-demand Linux GPU prices relative to us-east-1 (g4dn/g5 list prices, PRICES_AS_OF): AWS
# prices each region on its own; within a region the GPU families move together closely enough
# for a budget. A region missing here is priced as us-east-1 and said so (region_known).
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


ON_DEMAND: dict[str, float] = {name: price.on_demand for name, price in TABLE.items()}


def hourly(instance_type: str, spot: bool) -> float | None:
    price = TABLE.get(instance_type)
    if price is None:
        return None
    return price.spot if spot else price.on_demand
