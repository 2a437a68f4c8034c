"""Every runner.py option that reaches AWS, checked before anything is created: one message that
names the value and the fix, exit code 2. A dry run goes through the same checks as a real run."""

from __future__ import annotations

import ipaddress
import re

from gpubox import contract
from gpubox.errors import GpuboxError

MIN_DISK_GB = 30
# gp3's largest volume.
MAX_DISK_GB = 16384
# Every pattern here is applied with fullmatch: `$` would also match before a final newline.
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-7 ...
REGION_PATTERN = re.compile(r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}")
# family.size: g4dn.xlarge, g6e.12xlarge, p5.48xlarge, u-6tb1.metal
INSTANCE_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9-]*\.[a-z0-9]+")

AMI_PATTERN = re.compile(r"ami-[0-9a-f]{8,17}")
SNAPSHOT_PATTERN = re.compile(r"snap-[0-9a-f]{8,17}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _refuse(message: str, fix: str) -> GpuboxError:
    return GpuboxError(message, fix, exit_code=2)


def cidr(value: str, option: str = "--allow-cidr") -> Network:
    """A source address range, normalised (a bare address is a /32 or /128); host bits set is a
    typo more often than a wish for the whole network, so it is refused with both readings."""
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise _refuse(f"{option} {value!r} is not an IPv4 or IPv6 address range.",
                      f"Give one such as {option} 203.0.113.7/32 (one address) or {option} 2001:db8::/64.") from None
    address = value.strip().split("/")[0]
    raise _refuse(f"{option} {value} has bits set after the /{loose.prefixlen} prefix.",
                  f"Did you mean {option} {address}/{loose.max_prefixlen} (that one address) or {option} {loose} (the whole range)?")


def whole_internet(network: Network) -> bool:
    """0.0.0.0/0 and ::/0, however they were written (0.0.0.0/00 is the same range)."""
    return network.prefixlen == 0


# Address blocks that are not reachable on the public internet (RFC 6890's special-purpose
# registries, plus multicast and reserved): what is left of a range is its public part.
NOT_PUBLIC = [ipaddress.ip_network(block) for block in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
    "::/8", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8")]
# A range that admits more public addresses than a /8 holds counts as open to the internet.
OPEN_PREFIX = 8


def public_addresses(network: Network) -> int:
    """How many addresses of the range are public (the blocks above do not overlap one another)."""
    hidden = 0
    for block in NOT_PUBLIC:
        if block.version != network.version:
            continue
        if network.subnet_of(block):
            return 0
        if block.subnet_of(network):
            hidden += block.num_addresses
    return network.num_addresses - hidden


def too_open(network: Network) -> bool:
    """More public addresses than a /8 of its family: as good as the whole internet for SSH scans."""
    return public_addresses(network) > 2 ** (network.max_prefixlen - OPEN_PREFIX)


# Ranges an office LAN or a VPN's inside uses (RFC 1918, shared address space, unique local, and
# loopback and link-local): never the source address of SSH arriving at a public address.
PRIVATE = [ipaddress.ip_network(block) for block in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "fc00::/7", "fe80::/10", "::1/128")]


def private(network: Network) -> bool:
    """Inside one of the private ranges above (an office LAN, a VPN's inside range)."""
    return any(block.version == network.version and network.subnet_of(block) for block in PRIVATE)


def cidrs(values: str, option: str = "--allow-cidr") -> list[Network]:
    """Several ranges, as the CLI passes them on (joined by commas), each checked; duplicates once."""
    found: list[Network] = []
    for value in values.split(","):
        network = cidr(value, option)
        if network not in found:
            found.append(network)
    return found


def name(value: str, option: str = "--name") -> str:
    """The one name rule (contract.NAME_PATTERN, the playbooks' gpubox_name_pattern): the whole
    value, so a wildcard (EC2's tag filters read `*` and `?` as patterns) or a newline never passes."""
    if not isinstance(value, str) or not contract.NAME_PATTERN.fullmatch(value):
        raise _refuse(f"Workstation name {value!r} is not allowed.",
                      f"Use 1-31 lower-case letters, digits or '-', starting with a letter, e.g. {option} alice-gpu.")
    return value


def optional_name(value: str | None, option: str = "--name") -> str | None:
    """A --name that may be left out (status, snapshots): checked the same when given."""
    return None if value is None else name(value, option)


def region(value: str) -> str:
    if not isinstance(value, str) or not REGION_PATTERN.fullmatch(value):
        raise _refuse(f"--region {value!r} is not an AWS region name.",
                      "Give one such as --region us-east-1 or --region eu-central-1 (`aws ec2 describe-regions` lists yours).")
    return value


def instance_type(value: str) -> str:
    if not INSTANCE_TYPE_PATTERN.fullmatch(value):
        raise _refuse(f"--instance-type {value!r} is not an EC2 instance type.",
                      "Give one such as --instance-type g4dn.xlarge, g5.xlarge or g6.xlarge.")
    return value


def ami(value: str) -> str:
    if not AMI_PATTERN.fullmatch(value):
        raise _refuse(f"--ami {value!r} is not an image ID.", "Give one such as --ami ami-0123456789abcdef0, or leave --ami out.")
    return value


def snapshot_choice(value: str) -> bool:
    """--from-snapshot: `latest` or a snapshot ID."""
    return value == "latest" or bool(SNAPSHOT_PATTERN.fullmatch(value))


def disk_gb(value: int) -> int:
    if value < MIN_DISK_GB:
        raise _refuse(f"--disk-gb {value} is too small for the driver, CUDA and TensorFlow.",
                      f"Use at least {MIN_DISK_GB} (default 100).")
    if value > MAX_DISK_GB:
        raise _refuse(f"--disk-gb {value} is larger than an EBS gp3 volume can be.", f"Use at most {MAX_DISK_GB}.")
    return value


def port(value: int, option: str) -> int:
    if not 0 < value < 65536:
        raise _refuse(f"{option} {value} is not a TCP port.", f"Give a port between 1 and 65535, e.g. {option} 22.")
    return value


def minutes(value: int, option: str, *, low: int, high: int) -> int:
    if not low <= value <= high:
        raise _refuse(f"{option} {value} is out of range.", f"Give minutes between {low} and {high}.")
    return value
