"""Every option of an EC2 workstation, each default written here once: provision (runner.py and
IT's ec2_workstation module), its dry run, `plan`, `doctor` and the CLI's option defaults all read
them from DEFAULTS, and tests/test_contract.py ties any playbook or AWX copy to them.

No AWS call and no gpubox import here: every other module may read the spec.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Os:
    """An operating system gpubox launches: its newest x86_64 image from its publisher."""

    owner: str  # the publisher's AWS account: an image of the same name from anyone else is never picked
    name_pattern: str
    login_user: str  # the image's default sudo account (cloud-init's default user)
    tested: bool  # converged by the test suite


OPERATING_SYSTEMS: dict[str, Os] = {
    "debian-13": Os("136693071363", "debian-13-amd64-*", "admin", tested=True),  # Debian's cloud team
    "ubuntu-24.04": Os("099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*", "ubuntu", tested=False),
}


@dataclass(frozen=True)
class WorkstationSpec:
    """What `provision` creates on EC2 when an option is left out."""

    instance_type: str = "g4dn.xlarge"  # one NVIDIA T4
    disk_gb: int = 100  # root disk, encrypted gp3
    os: str = "debian-13"  # the current Debian stable, what the test suite converges
    ami: str = ""  # an explicit image instead of the OS's latest
    spot: bool = False
    deadman_minutes: int = 120  # the instance powers itself off this long after boot until configured
    ssh_port: int = 22  # security group, SSH entry, sshd and firewall alike (gpubox/hardening_port.py)
    volume_type: str = "gp3"
    shutdown_behaviour: str = "stop"  # powering off stops the instance: the disk stays

    @property
    def image(self) -> Os:
        return OPERATING_SYSTEMS[self.os]


DEFAULTS = WorkstationSpec()
