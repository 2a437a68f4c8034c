"""This machine's memory of its workstations: for each name, the region and account it was
provisioned in and its instance ID, and every region it ever provisioned in. A cache of
convenience written atomically, never the only pointer to something that bills (AWS's tags are
the truth). No AWS call here, so every other module may read the records without a cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gpubox import safe_write, validate
from gpubox.errors import GpuboxError
from gpubox.paths import config_dir


def records_dir() -> Path:
    return config_dir() / "workstations"


def record_path(name: str) -> Path:
    return records_dir() / f"{name}.json"


# Every region this machine provisioned in, kept after destroy removes a record: the snapshots a
# destroy kept still bill there, and `status`, `snapshots list` and `--from-snapshot` look there.
def used_regions_path() -> Path:
    return config_dir() / "regions.json"


@dataclass(frozen=True)
class BrokenRecord:
    """A record that cannot be used (cut short mid-write by an older gpubox, edited by hand, ...)."""
    name: str
    path: Path
    reason: str

    @property
    def fix(self) -> str:
        return (f"delete it (rm {self.path}); `python runner.py status --all --name {self.name}` finds the workstation "
                "in AWS, and commands then take --region")

    def line(self) -> str:
        return f"{self.name}: local record {self.path} is unusable ({self.reason}); {self.fix}."

    def error(self) -> GpuboxError:
        return GpuboxError(f"{self.name}: local record {self.path} is unusable ({self.reason}).",
                           self.fix[0].upper() + self.fix[1:] + ".", exit_code=2)


def _checked(name: str, path: Path, text: str) -> dict:
    """The record's content, or BrokenRecord's reason as a ValueError."""
    try:
        record = json.loads(text)
    except ValueError:
        raise ValueError("not complete JSON: cut short or edited") from None
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    region = record.get("region", "")
    if region and not (isinstance(region, str) and validate.REGION_PATTERN.fullmatch(region)):
        raise ValueError(f"region {region!r} is not an AWS region name")
    instance_id = record.get("instance_id", "")
    if instance_id and not (isinstance(instance_id, str) and instance_id.startswith("i-")):
        raise ValueError(f"instance_id {instance_id!r} is not an instance ID")
    return record


def save_record(name: str, record: dict) -> None:
    """Written whole or not at all (a temporary file renamed over the old one): a crash or a full
    disk never leaves half a record."""
    safe_write.atomic_write(record_path(name), json.dumps(record, indent=2))
    if record.get("region"):
        remember_region(record["region"])


def load_record(name: str) -> dict:
    """This machine's record of the workstation ({} when there is none); a broken one is refused
    with its path and the fix."""
    path = record_path(name)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BrokenRecord(name, path, f"unreadable: {exc.strerror}").error() from None
    try:
        return _checked(name, path, text)
    except ValueError as exc:
        raise BrokenRecord(name, path, str(exc)).error() from None


def read_records() -> tuple[dict[str, dict], list[BrokenRecord]]:
    """Every record on this machine that can be used, by name, and the broken ones (never an error:
    one bad file must not hide the other workstations)."""
    folder = records_dir()
    good: dict[str, dict] = {}
    broken: list[BrokenRecord] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        name = path.name.removesuffix(".json")
        try:
            good[name] = _checked(name, path, path.read_text())
        except OSError as exc:
            broken.append(BrokenRecord(name, path, f"unreadable: {exc.strerror}"))
        except ValueError as exc:
            broken.append(BrokenRecord(name, path, str(exc)))
    return good, broken


def _kept_regions() -> set[str]:
    """The list remember_region keeps; a damaged one counts as empty (the records and the default
    region are still searched, and the next provision writes it anew)."""
    try:
        kept = json.loads(used_regions_path().read_text())
    except (OSError, ValueError):
        return set()
    return {region for region in kept if isinstance(region, str)} if isinstance(kept, list) else set()


def remember_region(region: str) -> None:
    kept = _kept_regions()
    if region not in kept:
        safe_write.atomic_write(used_regions_path(), json.dumps(sorted(kept | {region})))


def used_regions() -> list[str]:
    """The regions this machine provisioned in: the list kept for it, and the records' own."""
    regions = _kept_regions() | {record["region"] for record in read_records()[0].values() if record.get("region")}
    return sorted(region for region in regions if validate.REGION_PATTERN.fullmatch(region))


def recorded_regions() -> list[str]:
    """Every region this machine provisioned a workstation in (kept even after a destroy)."""
    return used_regions()
