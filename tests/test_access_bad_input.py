"""Bad input and lockout guards of hardening and ssh_access: site.yml stops in its preflight,
before any role has changed anything, names the problem and leaves the host exactly as it was."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT, VENV_BIN, run_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def untouched_host(untouched_debian12_host):
    return untouched_debian12_host


def other_key(tmp_path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    return (tmp_path / "other.pub").read_text().strip()


CASES = {
    "port out of range": ({"hardening_ssh_port": 70000}, ["hardening_ssh_port must be 1-65535 (got 70000)"]),
    "port not a number": ({"hardening_ssh_port": "ssh"}, ["hardening_ssh_port"]),
    "operator's group not allowed": ({"hardening_ssh_allow_groups": ["gpubox"]},
                                     ["'admin' (the account this run logs in with) could no longer log in",
                                      "one line in your inventory's group_vars/gpu_workstations.yml: "
                                      'hardening_ssh_allow_groups: ["gpubox", "admin"]']),
    "unknown host key type": ({"hardening_ssh_host_key_types": ["ed25519", "dsa"]}, ["hardening_ssh_host_key_types"]),
    "bad user list": ({"gpubox_users": [{"name": "Bad Name", "ssh_keys": ["ssh-dss AAAA"]}, {"name": "eve", "ssh_keys": []}]},
                      ["user 'Bad Name': invalid user name", "user 'eve': has no ssh_keys"]),
    "unknown state": ({"gpubox_users": [{"name": "eve", "ssh_keys": [], "state": "gone"}]}, ["state"]),
    "image account as a data scientist": ({"gpubox_users": [{"name": "admin", "state": "absent"}]},
                                          ["user 'admin': is a system or image account"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_before_any_change(case, untouched_host, tmp_path):
    extra, expected = CASES[case]
    assert_refused_without_change(untouched_host, untouched_host.inventory(tmp_path / "hosts.yml"), extra, expected)


def playbook(inventory, playbook_path: str, extra: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), playbook_path, "-e", json.dumps(extra)],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=300, check=False,
    )


def assert_refused_without_change(host, inventory, extra: dict, expected: list[str]) -> None:
    before = host.fingerprint()
    result = playbook(inventory, "site.yml", extra)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-3000:]
    for words in expected:
        assert words in output, output[-3000:]
    assert "changed=0" in output
    assert host.fingerprint() == before


@pytest.fixture(scope="module")
def operator_carol(untouched_host, tmp_path_factory):
    """The same host after IT made carol a sudo data scientist; the next runs log in as carol."""
    folder = tmp_path_factory.mktemp("carol")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "carol")], check=True)
    key = (folder / "carol.pub").read_text().strip()
    users = {"gpubox_users": [{"name": "carol", "ssh_keys": [key], "sudo": True}]}
    made = playbook(untouched_host.inventory(folder / "admin.yml"), "playbooks/ssh_access.yml", users)
    assert made.returncode == 0, made.stdout[-3000:]
    inventory = untouched_host.inventory(folder / "carol.yml")
    inventory.write_text(inventory.read_text().replace("ansible_user: admin", "ansible_user: carol")
                         .replace(str(untouched_host.key), str(folder / "carol")))
    return inventory, key


def test_operator_cannot_revoke_themselves(untouched_host, operator_carol):
    inventory, _ = operator_carol
    assert_refused_without_change(untouched_host, inventory, {"gpubox_users": [{"name": "carol", "state": "absent"}]},
                                  ["'carol' is the account this run logs in with", "revoke it"])


def test_operator_cannot_drop_the_key_they_log_in_with(untouched_host, operator_carol, tmp_path):
    inventory, _ = operator_carol
    assert_refused_without_change(untouched_host, inventory,
                                  {"gpubox_users": [{"name": "carol", "ssh_keys": [other_key(tmp_path)], "sudo": True}]},
                                  ["remove every key it logs in with"])


def test_operator_keeping_one_key_may_rotate_the_other(untouched_host, operator_carol, tmp_path):
    inventory, key = operator_carol
    result = playbook(inventory, "playbooks/ssh_access.yml",
                      {"gpubox_users": [{"name": "carol", "ssh_keys": [key, other_key(tmp_path)], "sudo": True}]})
    assert result.returncode == 0, result.stdout[-3000:]


def test_runner_keeps_an_admin_outside_the_sudo_group_logged_in(home, fresh_debian12_host):
    """A corporate image's admin gets sudo from a sudoers file, not the sudo group: runner.py
    configure --host adds the account's own group for the run instead of stopping at the guard."""
    host = fresh_debian12_host
    assert host.exec("gpasswd", "-d", "admin", "sudo").returncode == 0  # sudo stays, from /etc/sudoers.d
    run = subprocess.run(
        [sys.executable, "runner.py", "configure", "--host", "127.0.0.1", "--port", str(host.port), "--user", "admin",
         "--key", str(host.key), "--name", "corp", "--tags", "hardening_ssh"],
        cwd=PROJECT, env=run_env(home), capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "admin is in none of the groups sshd will admit; its own group 'admin' is added" in run.stdout
    # sshd -T prints one line per group, or all on one line, depending on the version
    allowed = [group for line in host.exec("sshd", "-T").stdout.splitlines() if line.startswith("allowgroups ")
               for group in line.split()[1:]]
    assert allowed == ["sudo", "gpubox", "admin"]
    login = subprocess.run(["ssh", "-p", str(host.port), "-i", str(host.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "admin@127.0.0.1", "sudo", "-n", "true"],
                           capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    assert login.returncode == 0, login.stderr
