"""The key policy of ssh_access (gpubox.workstation.ssh_access_problems), on real keys made by
ssh-keygen and by the cryptography library (DSA, which current ssh-keygen no longer makes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa

from ansible_collections.gpubox.workstation.plugins.filter.ssh_access import (
    ssh_access_account_changes, ssh_access_key_changes, ssh_access_problems, ssh_key_info,
)


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("keys")
    made = {}
    for name, args in {"ed25519": ["-t", "ed25519"], "ecdsa": ["-t", "ecdsa", "-b", "384"],
                       "rsa2048": ["-t", "rsa", "-b", "2048"], "rsa3072": ["-t", "rsa", "-b", "3072"]}.items():
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", f"{name}@laptop", *args, "-f", str(folder / name)], check=True)
        made[name] = (folder / f"{name}.pub").read_text().strip()
    dsa_key = dsa.generate_private_key(key_size=1024).public_key()
    made["dsa"] = dsa_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " old@laptop"
    return made


def test_key_info_reads_type_and_size(keys):
    assert ssh_key_info(keys["ed25519"]) == {"valid": True, "type": "ssh-ed25519", "bits": 256, "problem": ""}
    assert ssh_key_info(keys["ecdsa"])["bits"] == 384
    assert ssh_key_info(keys["rsa2048"])["bits"] == 2048
    assert ssh_key_info(keys["rsa3072"])["bits"] == 3072
    assert ssh_key_info(keys["dsa"])["type"] == "ssh-dss"


def test_good_list_has_no_problem(keys):
    users = [{"name": "alice", "ssh_keys": [keys["ed25519"], keys["rsa3072"]]},
             {"name": "bob", "ssh_keys": [keys["ecdsa"]], "sudo": True}, {"name": "carol", "state": "absent"}]
    assert ssh_access_problems(users) == []


@pytest.mark.parametrize(("user", "expected"), [
    ({"name": "alice", "ssh_keys": ["dsa"]}, "user 'alice': key 1 is DSA"),
    ({"name": "alice", "ssh_keys": ["ed25519", "rsa2048"]}, "user 'alice': key 2 is RSA of 2048 bits, below the 3072-bit minimum"),
    ({"name": "alice", "ssh_keys": ["ssh-ed25519 AAAAnotbase64!! x"]}, "user 'alice': key 1 is not a public key line"),
    ({"name": "alice", "ssh_keys": ["ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ== x"]}, "user 'alice': key 1 is malformed"),
    ({"name": "Alice", "ssh_keys": ["ed25519"]}, "user 'Alice': invalid user name"),
    ({"name": "root", "ssh_keys": ["ed25519"]}, "user 'root': is a system or image account"),
    ({"name": "alice", "ssh_keys": []}, "user 'alice': has no ssh_keys"),
    ({"name": "alice", "ssh_keys": "ed25519"}, "user 'alice': ssh_keys must be a list"),
])
def test_each_problem_names_the_user_and_the_fix(keys, user, expected):
    user = dict(user)
    if isinstance(user["ssh_keys"], list):
        user["ssh_keys"] = [keys.get(key, key) for key in user["ssh_keys"]]
    problems = ssh_access_problems([user])
    assert len(problems) == 1 and problems[0].startswith(expected), problems
    assert any(fix in problems[0] for fix in ("use ", "paste ", "choose ", "add ", "must be")), problems[0]


def test_duplicates_and_all_problems_reported_at_once(keys):
    users = [{"name": "alice", "ssh_keys": [keys["ed25519"]]}, {"name": "alice", "ssh_keys": [keys["dsa"]]}]
    problems = ssh_access_problems(users)
    assert any("listed more than once" in p for p in problems) and any("DSA" in p for p in problems)


def test_the_minimum_rsa_size_is_a_setting(keys):
    assert ssh_access_problems([{"name": "alice", "ssh_keys": [keys["rsa2048"]]}], 2048) == []


KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBaaa alice@laptop"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabbb alice@desktop"
ACCOUNT = {"exists": True, "in_group": True, "shell": "/bin/bash", "expire": -1, "home_mode": "0750"}


def test_account_as_listed_is_left_alone():
    assert ssh_access_account_changes([{"name": "alice"}], {"alice": ACCOUNT}, "/bin/bash", "0750") == []


@pytest.mark.parametrize("difference", [
    {"exists": False}, {"in_group": False}, {"shell": "/bin/sh"}, {"expire": 19000}, {"home_mode": "0755"},
])
def test_account_that_differs_in_any_way_is_changed(difference):
    alice, bob = {"name": "alice", "ssh_keys": [KEY_A]}, {"name": "bob"}
    seen = {"alice": {**ACCOUNT, **difference}, "bob": ACCOUNT}
    assert ssh_access_account_changes([alice, bob], seen, "/bin/bash", "0750") == [alice]


def test_keys_as_listed_in_any_order_and_spacing_are_left_alone():
    # The probe sorts bytewise; the list may be in any order, with stray blanks around a key.
    seen = {"alice": {"key_lines": sorted([KEY_A, KEY_B])}}
    assert ssh_access_key_changes([{"name": "alice", "ssh_keys": [f"  {KEY_B}\n", KEY_A]}], seen) == []


@pytest.mark.parametrize("on_host", [[KEY_A], [KEY_A, KEY_B, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIold old@laptop"], []])
def test_keys_missing_extra_or_absent_on_the_host_are_changed(on_host):
    alice = {"name": "alice", "ssh_keys": [KEY_A, KEY_B]}
    seen = {"alice": {"key_lines": sorted(on_host)}, "bob": {"key_lines": [KEY_A]}}
    assert ssh_access_key_changes([alice, {"name": "bob", "ssh_keys": [KEY_A]}], seen) == [alice]
