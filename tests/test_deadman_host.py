"""The dead-man's switch on a real systemd host (a Debian 13 test host): the user data an EC2
launch carries installs a timer that powers the host off, the autostop role's marker makes it
stand down, and without the marker the switch really powers the host off."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from conftest import PROJECT, VENV_BIN, run_env
from gpubox import contract
from gpubox.cloud import deadman

pytestmark = pytest.mark.integration


def autostop(inventory) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/autostop.yml", "-e", json.dumps({})],
                          cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=600, check=False)


def running(name: str) -> bool:
    state = subprocess.run(["podman", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True, check=False)
    return state.stdout.strip() == "true"


def test_the_switch_stands_down_once_configured_and_powers_off_otherwise(untouched_debian13_host, tmp_path):
    host = untouched_debian13_host
    installed = host.exec("sh", "-c", deadman.user_data(120))  # what cloud-init runs at first boot, as root
    assert installed.returncode == 0, installed.stderr
    assert host.exec("systemctl", "is-enabled", f"{deadman.UNIT}.timer").stdout.strip() == "enabled"
    assert host.exec("systemctl", "is-active", f"{deadman.UNIT}.timer").stdout.strip() == "active"
    timer = host.exec("systemctl", "show", "-p", "TimersMonotonic", "--value", f"{deadman.UNIT}.timer").stdout
    assert "OnBootUSec" in timer and "2h" in timer, timer

    inventory = host.inventory(tmp_path / "inventory.yml")
    first = autostop(inventory)
    assert first.returncode == 0, first.stdout[-3000:]
    assert host.exec("test", "-f", contract.CONFIGURED_MARKER).returncode == 0
    again = autostop(inventory)
    assert again.returncode == 0 and re.search(r"changed=0\s", again.stdout), again.stdout[-3000:]

    # The timer fires: with the marker, the host stays up.
    assert host.exec("systemctl", "start", f"{deadman.UNIT}.service").returncode == 0
    assert host.exec("systemctl", "show", "-p", "ConditionResult", "--value", f"{deadman.UNIT}.service").stdout.strip() == "no"
    assert running(host.name)

    # Without it (a provision that never finished), the host powers itself off.
    assert host.exec("rm", contract.CONFIGURED_MARKER).returncode == 0
    host.exec("systemctl", "start", "--no-block", f"{deadman.UNIT}.service")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and running(host.name):
        time.sleep(1)
    assert not running(host.name)
