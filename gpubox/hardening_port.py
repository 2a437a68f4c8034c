"""The SSH port of an EC2 workstation is 22 everywhere: security group, SSH entry, sshd, firewall.

hardening_ssh_port moves sshd and the host firewall, but the security group and every SSH entry
runner.py writes use 22, so any other value is a guaranteed lockout: it is refused up front.
"""

from __future__ import annotations

from gpubox import settings
from gpubox.cloud.spec import DEFAULTS
from gpubox.errors import GpuboxError

EC2_SSH_PORT = DEFAULTS.ssh_port


def check_ec2(config: settings.Settings | None = None) -> None:
    configured = (config or settings.load()).get("hardening_ssh_port")
    if str(configured) != str(EC2_SSH_PORT):
        raise GpuboxError(
            f"hardening_ssh_port is {configured} in this project's settings, but an EC2 workstation's security group and SSH "
            f"entry use port {EC2_SSH_PORT}: sshd would move away from the only open port and lock everyone out.",
            f"Set hardening_ssh_port back to {EC2_SSH_PORT} (group_vars) for EC2 workstations; other ports are for --host machines.",
            exit_code=2)
