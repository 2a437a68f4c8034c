"""Which keys an account logs in with (module_utils.authorized_keys): IT's root-owned file for the
managed group, the home's files for everyone else, never through a link."""

from __future__ import annotations

import os
import pwd

import pytest

from ansible_collections.gpubox.workstation.plugins.module_utils import authorized_keys

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA1 alice@laptop"
RSA = 'from="10.0.0.0/8" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC2 alice@desk'


def test_key_blobs_skip_options_comments_and_junk():
    text = f"# IT's list\n{ED}\n\n{RSA}\nnot a key\n"
    assert authorized_keys.key_blobs(text) == ["AAAAC3NzaC1lZDI1NTE5AAAAIA1", "AAAAB3NzaC1yc2EAAAADAQABAAABAQC2"]


@pytest.fixture
def account(tmp_path, monkeypatch):
    """A root-owned stand-in for /etc/ssh/authorized_keys and a home, for an account in root's group."""
    managed = tmp_path / "etc-keys"
    managed.mkdir()
    monkeypatch.setattr(authorized_keys, "MANAGED_KEYS_DIR", str(managed))
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(RSA + "\n")
    root = pwd.getpwuid(0)
    entry = pwd.struct_passwd(("root", "x", 0, root.pw_gid, "", str(home), "/bin/sh"))
    return managed, home, entry


def test_a_managed_member_logs_in_with_its_it_file_only(account):
    managed, _, entry = account
    (managed / "root").write_text(ED + "\n")
    group = authorized_keys.groups_of(entry).pop()  # the primary group counts, as for sshd's Match Group
    assert authorized_keys.login_key_blobs(entry, group) == ["AAAAC3NzaC1lZDI1NTE5AAAAIA1"]
    assert authorized_keys.login_key_blobs(entry, "no-such-group") == ["AAAAB3NzaC1yc2EAAAADAQABAAABAQC2"]


def test_a_linked_it_file_is_not_followed(account, tmp_path):
    managed, _, entry = account
    (tmp_path / "elsewhere").write_text(ED + "\n")
    os.symlink(tmp_path / "elsewhere", managed / "root")
    assert authorized_keys.managed_keys("root") is None
    group = authorized_keys.groups_of(entry).pop()
    # sshd reads only IT's file for the group: the home's keys do not count, and a link is no file.
    assert authorized_keys.login_key_blobs(entry, group) == []
