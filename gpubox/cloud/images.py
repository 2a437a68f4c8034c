"""The image a new EC2 workstation boots: by default the current Debian stable (13, what the test
suite converges), found by its publisher's account and image name; Ubuntu 24.04 on request.

Owner IDs are the publishers' own (Debian's cloud team, Canonical): an image of the same name
from anyone else is never picked.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpubox import contract
from gpubox.cloud import aws
from gpubox.cloud.spec import DEFAULTS, OPERATING_SYSTEMS, Os
from gpubox.errors import GpuboxError

__all__ = ["DEFAULT_OS", "OPERATING_SYSTEMS", "Os"]  # the spec's, named here for the modules that ask images
DEFAULT_OS = DEFAULTS.os


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    root_device: str


def check_os(value: str) -> Os:
    if value not in OPERATING_SYSTEMS:
        raise GpuboxError(f"--os {value!r} is not one gpubox provisions.", f"Use --os {' or --os '.join(OPERATING_SYSTEMS)}.",
                          exit_code=2)
    return OPERATING_SYSTEMS[value]


def describe(os_name: str) -> str:
    """'latest Debian 13' (and for an image the test suite does not converge, that it does not)."""
    pretty = {"debian-13": "Debian 13", "ubuntu-24.04": "Ubuntu 24.04"}.get(os_name, os_name)
    return f"latest {pretty}" + ("" if check_os(os_name).tested else " (not exercised by gpubox's test suite)")


def _describe(region: str, **query: object) -> list[dict]:
    return aws.call(aws.client("ec2", region), "describe_images", region, **query)["Images"]


def latest(region: str, os_name: str) -> Image:
    """The newest x86_64 image of the operating system, from its publisher."""
    wanted = check_os(os_name)
    found = _describe(region, Owners=[wanted.owner], Filters=[{"Name": "name", "Values": [wanted.name_pattern]},
                                                              {"Name": "architecture", "Values": ["x86_64"]},
                                                              {"Name": "state", "Values": ["available"]}])
    if not found:
        raise GpuboxError(f"No {os_name} image from its publisher (account {wanted.owner}) in {region}.",
                          "Pass --ami ami-... of an image you trust, or another --region.")
    newest = max(found, key=lambda image: (image.get("CreationDate", ""), image["ImageId"]))
    return Image(newest["ImageId"], newest.get("Name", ""), newest.get("RootDeviceName", "/dev/xvda"))


def by_id(region: str, image_id: str) -> Image:
    """A given --ami: its root device (Debian's is /dev/xvda, Ubuntu's /dev/sda1) sizes the disk."""
    found = aws.call(aws.client("ec2", region), "describe_images", region, absent=("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"),
                     ImageIds=[image_id]).get("Images", [])
    if not found:
        raise GpuboxError(f"--ami {image_id} does not exist in {region}.", "Check the ID and the region, or leave --ami out.",
                          exit_code=2)
    return Image(found[0]["ImageId"], found[0].get("Name", ""), found[0].get("RootDeviceName", "/dev/xvda"))


# Baked images (`runner.py image build`): the caller's own AMIs, found by gpubox's tags only.

@dataclass(frozen=True)
class Baked:
    image_id: str
    name: str
    series: str
    created: str
    owner: str
    tags: dict[str, str]
    snapshots: tuple[str, ...]

    def line(self) -> str:
        tags = self.tags
        return (f"{self.image_id}  {self.series}  {self.created[:19]}  TensorFlow {tags.get('gpubox:tensorflow', '?')}, "
                f"driver {tags.get('gpubox:driver', '?')}, gpubox {tags.get('gpubox:version', '?')}, "
                f"audit: {tags.get('gpubox:audit', '?')}")


def baked(region: str, owner: str | None, series: str | None = None) -> list[Baked]:
    """gpubox's baked images in this account (the owner's only, unless None), newest first.
    An image without gpubox's tags is never listed, whoever made it."""
    filters = contract.managed_filters() + [contract.tag_filter(contract.TAG_IMAGE, series) if series
                                            else {"Name": "tag-key", "Values": [contract.TAG_IMAGE]}]
    if owner:
        filters.append(contract.tag_filter(contract.TAG_OWNER, owner))
    found = []
    for image in _describe(region, Owners=["self"], Filters=filters):
        tags = {tag["Key"]: tag["Value"] for tag in image.get("Tags", [])}
        if tags.get(contract.TAG_MANAGED) != contract.MANAGED_VALUE or contract.TAG_IMAGE not in tags:
            continue
        if owner and tags.get(contract.TAG_OWNER) != owner:  # exactly the owner: tag filters read `*` as a wildcard
            continue
        snapshots = tuple(mapping["Ebs"]["SnapshotId"] for mapping in image.get("BlockDeviceMappings", [])
                          if mapping.get("Ebs", {}).get("SnapshotId"))
        found.append(Baked(image["ImageId"], image.get("Name", ""), tags[contract.TAG_IMAGE], image.get("CreationDate", ""),
                           tags.get(contract.TAG_OWNER, ""), tags, snapshots))
    return sorted(found, key=lambda item: (item.created, item.image_id), reverse=True)


def beyond(found: list[Baked], keep: int) -> list[Baked]:
    """The images past the newest `keep` of each owner's series (found is newest first): one
    owner's newer builds never push another owner's images out (IT's --any-owner prunes each
    owner's series on its own)."""
    seen: dict[tuple[str, str], int] = {}
    old = []
    for item in found:
        group = (item.owner, item.series)
        seen[group] = seen.get(group, 0) + 1
        if seen[group] > keep:
            old.append(item)
    return old


def baked_image(region: str, owner: str, wanted: str) -> Baked:
    """`--image latest` (the owner's newest baked image), `latest:SERIES`, or an AMI ID of theirs."""
    if wanted == "latest" or wanted.startswith("latest:"):
        series = wanted.partition(":")[2] or None
        found = baked(region, owner, series)
        if not found:
            raise GpuboxError(f"You have no baked gpubox image{' of series ' + series if series else ''} in {region}.",
                              "Build one with `python runner.py image build`, or leave --image out.", exit_code=2)
        return found[0]
    mine = [item for item in baked(region, None) if item.image_id == wanted]
    if not mine:
        raise GpuboxError(f"--image {wanted} is not a gpubox baked image in {region}.",
                          "See `python runner.py image list`; for any other image use --ami.", exit_code=2)
    return mine[0]


def deregister(region: str, image: Baked) -> None:
    """Deregister the image, then delete its snapshots (AWS keeps and bills them otherwise)."""
    client = aws.client("ec2", region)
    aws.call(client, "deregister_image", region, ImageId=image.image_id)
    for snapshot in image.snapshots:
        aws.call(client, "delete_snapshot", region, SnapshotId=snapshot)
