"""Root reads files in users' homes (authorized_keys) without following anything the user
controls: module_utils.safe_files.read_user_file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.gpubox.workstation.plugins.module_utils.safe_files import read_user_file

USER, OTHER = 1234, 4321
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlob alice@laptop\n"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to other users")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """/tmp/.../homes/alice with .ssh/authorized_keys, all owned by the user, under a root-owned anchor."""
    anchor = tmp_path / "homes"
    anchor.mkdir(mode=0o755)
    home = anchor / "alice"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "authorized_keys").write_text(KEY)
    for path in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
        os.chown(path, USER, USER)
    return home


def test_reads_the_users_own_file(home):
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) == KEY


def test_a_root_owned_file_in_the_home_is_read(home):
    os.chown(home / ".ssh" / "authorized_keys", 0, 0)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) == KEY


def test_missing_file_reads_as_none(home):
    assert read_user_file(str(home), ".ssh/authorized_keys2", USER) is None
    assert read_user_file(str(home.parent / "bob"), ".ssh/authorized_keys", USER) is None


def test_a_symlinked_file_is_not_followed(home, tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash:::\n")
    keys = home / ".ssh" / "authorized_keys"
    keys.unlink()
    keys.symlink_to(secret)
    os.lchown(keys, USER, USER)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None


def test_a_symlinked_directory_is_not_followed(home, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "authorized_keys").write_text(KEY)
    os.rename(home / ".ssh", home / "old")
    (home / ".ssh").symlink_to(elsewhere)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None


def test_another_users_file_is_not_read(home):
    os.chown(home / ".ssh" / "authorized_keys", OTHER, OTHER)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None
    os.chown(home / ".ssh" / "authorized_keys", USER, USER)
    os.chown(home / ".ssh", OTHER, OTHER)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None


def test_a_fifo_neither_blocks_nor_reads(home):
    keys = home / ".ssh" / "authorized_keys"
    keys.unlink()
    os.mkfifo(keys)
    os.chown(keys, USER, USER)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None


def test_a_world_writable_anchor_is_refused(home):
    os.chmod(home.parent, 0o777)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None
    # /tmp-like: world-writable but sticky, so nobody can swap the home under us
    os.chmod(home.parent, 0o1777)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) == KEY


def test_an_anchor_owned_by_a_user_is_refused(home):
    os.chown(home.parent, USER, USER)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER) is None


def test_an_oversized_file_is_not_read(home):
    (home / ".ssh" / "authorized_keys").write_text(KEY * 10)
    assert read_user_file(str(home), ".ssh/authorized_keys", USER, max_bytes=len(KEY) * 10) == KEY * 10
    assert read_user_file(str(home), ".ssh/authorized_keys", USER, max_bytes=len(KEY) * 10 - 1) is None


def test_dot_dot_in_the_relative_path_is_refused(home):
    assert read_user_file(str(home), ".ssh/../.ssh/authorized_keys", USER) is None
