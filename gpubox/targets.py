"""Where a workstation lives, turned into an SSH connection: a local container or an existing
host. (EC2 instances come with the aws module.)"""

from __future__ import annotations

import re
from pathlib import Path

from gpubox import containers, contract, validate
from gpubox.errors import GpuboxError
from gpubox.ssh import Connection, ensure_key, forget_host_key, public_key


def check_name(name: str) -> str:
    return validate.name(name)


def alias(name: str) -> str:
    return contract.alias(name)


def local(name: str, release: str, key: Path | None = None, image: str = "") -> Connection:
    """Start (or find) the local container for `name` (from a baked `image` if given) and return how to reach it."""
    check_name(name)
    login_key = ensure_key(key)
    container_name = alias(name)  # the container is named like its SSH alias
    if not containers.exists(container_name):
        forget_host_key(alias(name))  # a new container has new host keys
    started = containers.start(container_name, release, public_key(login_key), label="workstation", image=image)
    return Connection(alias=alias(name), address=started.address, port=started.port, user=started.user, key=login_key)


def host(name: str, address: str, user: str, port: int, key: Path | None = None) -> Connection:
    check_name(name)
    if not 0 < port < 65536:
        raise GpuboxError(f"Port {port} is not a TCP port.", "Pass --port between 1 and 65535 (SSH is usually 22).", exit_code=2)
    return Connection(alias=alias(name), address=address, port=port, user=user, key=ensure_key(key))


def remove_local(name: str) -> bool:
    check_name(name)
    return containers.remove(alias(name))


def derive_name(address: str) -> str:
    """A workstation name from a host address: 'gpu1.corp.example' -> 'gpu1'."""
    first = re.sub(r"[^a-z0-9-]", "-", address.lower().split(".")[0] if not address[0].isdigit() else address.lower())
    name = re.sub(r"-+", "-", first).strip("-")
    if not name or not name[0].isalpha():
        name = f"host-{name}".rstrip("-")
    return name[:31]


def stop_local(name: str) -> None:
    """Stop the local container (its disk stays, as an EC2 stop keeps the volume)."""
    containers._podman("stop", alias(check_name(name)))  # noqa: SLF001  (containers' own podman call: its errors read well)


def start_local(name: str) -> int:
    """Start the stopped local container again; returns its SSH port on 127.0.0.1 (podman may pick a new one)."""
    container = alias(check_name(name))
    containers._podman("start", container)  # noqa: SLF001
    port = containers._published_port(container)  # noqa: SLF001
    containers.wait_for_ssh("127.0.0.1", port)
    return port
