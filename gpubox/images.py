"""The image a new EC2 workstation boots: by default the current Debian stable (13, what the test
suite converges), found by its publisher's account and image name; Ubuntu 24.04 on request.

Owner IDs are the publishers' own (Debian's cloud team, Canonical): an image of the same name
from anyone else is never picked.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpubox import aws
from gpubox.errors import GpuboxError


@dataclass(frozen=True)
class Os:
    owner: str  # the publisher's AWS account
    name_pattern: str
    login_user: str  # the image's default sudo account (cloud-init's default user)
    tested: bool


OPERATING_SYSTEMS: dict[str, Os] = {
    "debian-13": Os("136693071363", "debian-13-amd64-*", "admin", tested=True),
    "ubuntu-24.04": Os("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "ubuntu", tested=False),
}
DEFAULT_OS = "debian-13"


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
    try:
        return aws.client("ec2", region).describe_images(**query)["Images"]
    except Exception as exc:  # noqa: BLE001
        raise aws.explain(exc, region) from exc


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
    try:
        found = _describe(region, ImageIds=[image_id])
    except GpuboxError as problem:
        if "InvalidAMIID" not in problem.message:
            raise
        found = []
    if not found:
        raise GpuboxError(f"--ami {image_id} does not exist in {region}.", "Check the ID and the region, or leave --ami out.",
                          exit_code=2)
    return Image(found[0]["ImageId"], found[0].get("Name", ""), found[0].get("RootDeviceName", "/dev/xvda"))
