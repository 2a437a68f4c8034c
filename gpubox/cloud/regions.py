"""Where to look for workstations and snapshots. Local records are a convenience, never the only
pointer to something that bills: a user's own commands search every region this machine ever
provisioned in (kept after destroy, for the snapshots it keeps) and the default one; IT's fleet
views (`status --all`, `cleanup --any-owner`) search every region enabled in the account."""

from __future__ import annotations

from gpubox import validate
from gpubox.cloud import aws, records


def for_caller(region: str | None) -> list[str]:
    """The region asked for, else every region this machine provisioned in and the default one."""
    if region:
        return [validate.region(region)]
    return sorted({validate.region(aws.region_name(None)), *records.used_regions()})


def enabled(home: str | None = None) -> list[str]:
    """Every region the account has enabled (DescribeRegions without AllRegions lists only those)."""
    found = aws.call(aws.client("ec2", home), "describe_regions", home)["Regions"]
    return sorted(item["RegionName"] for item in found
                  if item.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
                  and validate.REGION_PATTERN.fullmatch(item["RegionName"]))


def for_fleet(region: str | None) -> list[str]:
    """IT's view: the region asked for, else every enabled region (and this machine's own)."""
    if region:
        return [validate.region(region)]
    return sorted({*enabled(), *for_caller(None)})


def searched(regions: list[str]) -> str:
    """`searched 17 regions: ap-northeast-1, ...`: what a fleet view looked at, so nobody takes
    "none" for "none anywhere" when a region was left out."""
    return f"searched {len(regions)} region{'s' if len(regions) != 1 else ''}: {', '.join(regions)}"
