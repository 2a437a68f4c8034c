"""What the commands do, without printing: configure a workstation and hook it into SSH."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from gpubox import ansible, ssh
from gpubox.containers import wait_for_ssh
from gpubox.errors import GpuboxError

SITE = "site.yml"
CONTROLLER_CA_DIR = Path("/usr/local/share/ca-certificates")


def local_extravars() -> dict[str, str]:
    """A local container sits behind the same network as this machine: trust the same extra CAs."""
    if any(CONTROLLER_CA_DIR.glob("*.crt")):
        return {"base_ca_certificates_dir": str(CONTROLLER_CA_DIR)}
    return {}


def configure(
    connection: ssh.Connection,
    out: TextIO,
    *,
    extravars: dict[str, str] | None = None,
    tags: str | None = None,
    check: bool = False,
) -> ansible.RunResult:
    """Apply site.yml to the workstation; the SSH config entry is written once it is reachable."""
    wait_for_ssh(connection.address, connection.port, timeout=float(os.environ.get("GPUBOX_SSH_WAIT", "300")))
    ssh.write_config_entry(connection)
    result = ansible.run_playbook(
        SITE, [connection], extravars=extravars, tags=tags, check=check, label=connection.alias, out=out,
    )
    if not result.ok:
        first = result.failures[0]
        raise GpuboxError(
            f"Configuring {connection.alias} failed on {first.host} at task '{first.task}':\n    {first.message}",
            f"Full log: {result.log_path}\n     Fix the cause above and run the same command again; "
            "it picks up where it stopped.",
        )
    return result
