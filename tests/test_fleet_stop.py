"""playbooks/stop.yml through inventory/aws_ec2.yml against moto server: it stops exactly the
limited workstations and refuses a run without a limit. Every stop is an AWS call from the
controller; nothing connects to a moto address."""

from __future__ import annotations

import subprocess

import pytest

from conftest import PROJECT, VENV_BIN
from test_fleet_inventory import INVENTORY, _client, _gpubox_tags, _launch, env  # noqa: F401  (env is a fixture)


@pytest.fixture
def fleet(moto_endpoint) -> dict[str, tuple[str, str]]:
    """Name -> (region, instance id), fresh for each test (moto keeps state per module)."""
    for region in ("us-east-1", "eu-west-1"):
        ec2 = _client(moto_endpoint, region)
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
    made = {"alice-1": ("us-east-1", "alice"), "alice-2": ("eu-west-1", "alice"), "bob": ("eu-west-1", "bob")}
    return {name: (region, _launch(moto_endpoint, region, "g4dn.xlarge", _gpubox_tags(name, owner))["InstanceId"])
            for name, (region, owner) in made.items()}


def states(endpoint: str, fleet: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: _client(endpoint, region).describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
            ["State"]["Name"] for name, (region, instance) in fleet.items()}


def stop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), "playbooks/stop.yml", "-i", str(INVENTORY), *args],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300, check=False,
                          stdin=subprocess.DEVNULL)


def test_stops_exactly_the_limited_owners_workstations(moto_endpoint, fleet, env):
    result = stop(env, "--limit", "owner_alice")
    assert result.returncode == 0, result.stdout + result.stderr
    assert states(moto_endpoint, fleet) == {"alice-1": "stopped", "alice-2": "stopped", "bob": "running"}


def test_refuses_the_whole_fleet_without_a_limit(moto_endpoint, fleet, env):
    result = stop(env)
    assert result.returncode != 0
    assert "pass --limit" in result.stdout
    assert set(states(moto_endpoint, fleet).values()) == {"running"}
