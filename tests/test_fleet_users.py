"""One team list for the fleet: gpubox.workstation.ssh_access_with_owner gives the workstation's
owner (from its tags) sudo there, and nothing to anyone IT did not list."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.gpubox.workstation.plugins.filter.ssh_access import ssh_access_problems, ssh_access_with_owner

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGT8XoQ6M3MEt3ZSyCcpyKhJG8TMAy1JwVXfHA8bMuy6 alice@laptop"
TEAM = [
    {"name": "alice", "ssh_keys": [KEY]},
    {"name": "bob", "ssh_keys": [KEY], "sudo": False},
    {"name": "it-admin", "ssh_keys": [KEY], "sudo": True},
    {"name": "mallory", "state": "absent"},
]


def sudo_of(users: list[dict]) -> dict[str, bool]:
    return {user["name"]: bool(user.get("sudo")) for user in users}


def test_the_owner_gets_sudo_and_nobody_else_changes():
    team = copy.deepcopy(TEAM)
    merged = ssh_access_with_owner(team, "alice")
    assert sudo_of(merged) == {"alice": True, "bob": False, "it-admin": True, "mallory": False}
    assert [user["name"] for user in merged] == ["alice", "bob", "it-admin", "mallory"]
    assert team == TEAM  # the shared list itself is left alone
    assert ssh_access_problems(merged) == []


def test_an_explicit_no_sudo_entry_still_gets_sudo_on_its_own_workstation():
    assert sudo_of(ssh_access_with_owner(TEAM, "bob"))["bob"] is True


@pytest.mark.parametrize("owner", ["", "carol", "mallory", "ALICE", "arn:aws:iam::123456789012:user/alice"])
def test_an_owner_not_listed_as_present_gets_nothing(owner):
    assert ssh_access_with_owner(TEAM, owner) == TEAM


def test_merging_twice_is_the_same_as_once():
    once = ssh_access_with_owner(TEAM, "alice")
    assert ssh_access_with_owner(once, "alice") == once


@pytest.mark.parametrize("users", ["alice", None, {"name": "alice"}])
def test_a_malformed_list_is_left_for_the_key_policy_to_report(users):
    assert ssh_access_with_owner(users, "alice") == users
    assert ssh_access_problems(users)
