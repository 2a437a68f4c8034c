"""A host where root may not manage nftables (an unprivileged container without CAP_NET_ADMIN) is
stopped by the preflight with what to do, instead of failing deep into the run with "netlink:
Error: cache initialization failed: Operation not permitted"."""

from __future__ import annotations

import socket
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from ansible_collections.gpubox.workstation.plugins.module_utils import netfilter
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import containers

MODULE_UTILS = PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation" / "plugins" / "module_utils"


def message(kind: int, payload: bytes) -> bytes:
    return netfilter.NLMSG_HEADER.pack(netfilter.NLMSG_HEADER.size + len(payload), kind, 0, 1, 0) + payload


def test_the_request_is_an_nftables_get_generation_with_ack():
    length, kind, flags, _, _ = netfilter.NLMSG_HEADER.unpack_from(netfilter.request())
    assert length == len(netfilter.request()) == 20
    assert kind == (10 << 8) | 16 and flags == netfilter.NLM_F_REQUEST | netfilter.NLM_F_ACK


@pytest.mark.parametrize(("reply", "expected"), [
    (message(netfilter.NLMSG_ERROR, struct.pack("=i", -1) + b"\0" * 16), (True, 1)),        # EPERM
    (message(netfilter.NLMSG_ERROR, struct.pack("=i", 0) + b"\0" * 16), (True, 0)),         # acknowledged
    (message((10 << 8) | 15, b"\0" * 12), (False, 0)),                                       # the generation, ack still to come
    (message((10 << 8) | 15, b"\0" * 12) + message(netfilter.NLMSG_ERROR, struct.pack("=i", 0)), (True, 0)),
    (message(netfilter.NLMSG_DONE, b""), (True, 0)),
    (b"", (False, 0)),
])
def test_replies_are_read(reply, expected):
    assert netfilter.read_answer(reply) == expected


def test_root_here_may_manage_nftables():
    """The test machine runs the test hosts' firewalls: its root has CAP_NET_ADMIN."""
    if not hasattr(socket, "AF_NETLINK"):
        pytest.skip("no netlink on this system")
    assert netfilter.nftables_problem() == ""


def probe_in_container(image: str, *flags: str) -> str:
    result = subprocess.run(
        ["podman", "run", "--rm", "--network", "none", *flags, "-v", f"{MODULE_UTILS}:/m:ro", image, "python3", "-c",
         "import sys; sys.path.insert(0, '/m'); import netfilter; print(netfilter.nftables_problem() or 'ok')"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
def test_a_container_without_net_admin_is_told_what_to_do(tmp_path: Path):
    if subprocess.run(["which", "podman"], capture_output=True, check=False).returncode != 0:
        pytest.skip("podman is not installed; run `make host-tools`")
    image = containers.ensure_image("debian12")
    assert probe_in_container(image, "--cap-add", "NET_ADMIN") == "ok"  # what gpubox's test hosts get
    assert probe_in_container(image) == "Operation not permitted"        # podman's default capabilities

    # The hardening role's input checks (what site.yml's preflight runs) against such a container.
    name = f"gpubox-pytest-nocap-{uuid.uuid4().hex[:6]}"
    subprocess.run(["podman", "run", "--detach", "--name", name, "--network", "none", image, "sleep", "600"],
                   capture_output=True, check=True)
    try:
        playbook = tmp_path / "check.yml"
        playbook.write_text(
            "- name: Preflight of the hardening role\n  hosts: all\n  gather_facts: true\n  tasks:\n"
            "    - name: Check the hardening role's inputs\n      ansible.builtin.include_role:\n"
            "        name: hardening\n        tasks_from: validate\n")
        run = subprocess.run(
            [str(VENV_BIN / "ansible-playbook"), "-i", f"{name},", "-c", "containers.podman.podman", str(playbook)],
            cwd=PROJECT, env=run_env() | {"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")},
            capture_output=True, text=True, timeout=300, check=False)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, check=False)
    output = " ".join((run.stdout + run.stderr).split())
    assert run.returncode == 2, output[-3000:]
    assert "Refuse a firewall this host does not let root manage" in output
    assert ("This host does not let root manage its firewall (nftables over netlink: Operation not permitted; "
            "it is a podman container without the NET_ADMIN capability)") in output
    assert "--cap-add NET_ADMIN" in output and "hardening_firewall: false" in output
