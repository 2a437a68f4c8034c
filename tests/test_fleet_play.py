"""A play through the EC2 inventory reaches a real host: moto plays AWS, a test host plays the
workstation. The host's address and login are overridden as extra vars, so moto's addresses
(real hosts on the internet) are never contacted. The team list in the inventory's group_vars
makes the workstation's owner, from its tag, the only data scientist with sudo there."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from conftest import PROJECT, VENV_BIN
from test_fleet_inventory import _gpubox_tags, _launch, env  # noqa: F401  (env is a fixture)

pytestmark = pytest.mark.integration


def test_the_owner_of_the_workstation_gets_sudo_there(moto_endpoint, env, untouched_debian12_host, tmp_path):
    host = untouched_debian12_host
    _launch(moto_endpoint, "us-east-1", "g4dn.xlarge", _gpubox_tags("alice-1", "alice"))
    _launch(moto_endpoint, "eu-west-1", "g4dn.xlarge", _gpubox_tags("bob-1", "bob"))
    keys = {}
    for user in ("alice", "bob"):
        key = tmp_path / user
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        keys[user] = key.with_suffix(".pub").read_text().strip()
    inventory = tmp_path / "inventory"
    shutil.copytree(PROJECT / "inventory", inventory)
    (inventory / "group_vars" / "gpu_workstations" / "users.yml").write_text(yaml.safe_dump(
        {"gpubox_users": [{"name": user, "ssh_keys": [key]} for user, key in keys.items()]}))
    connection = [
        "-e", "ansible_host=127.0.0.1", "-e", f"ansible_port={host.port}", "-e", "ansible_user=admin",
        "-e", f"ansible_private_key_file={host.key}",
        "-e", "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
    ]
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "playbooks/ssh_access.yml", "-i", str(inventory / "aws_ec2.yml"),
         "--limit", "owner_alice", *connection],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "alice-1" in result.stdout and "bob-1" not in result.stdout

    sudoers = host.exec("cat", "/etc/sudoers.d/gpubox-users")
    assert sudoers.returncode == 0, sudoers.stderr
    granted = sorted(line.split()[0] for line in sudoers.stdout.splitlines() if line and not line.startswith("#"))
    assert granted == ["alice"]
    for user in ("alice", "bob"):
        assert host.exec("id", user).returncode == 0
