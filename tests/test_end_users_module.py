"""gpubox.workstation.end_users' sweep and process look-ups: only the account's own entries, never
through a link, and a directory it owns as a whole. (The molecule ssh_access scenario revokes real
users on a real host with it.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.gpubox.workstation.plugins.modules import end_users

REVOKED = 64123  # an unused uid: root may chown files to any number


@pytest.fixture
def shared(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another uid")
    top = tmp_path / "tmp"
    top.mkdir()
    (top / "theirs").write_text("x")
    os.chown(top / "theirs", REVOKED, REVOKED)
    (top / "mine").write_text("x")
    own_dir = top / "their-dir"
    (own_dir / "deep").mkdir(parents=True)
    os.chown(own_dir, REVOKED, REVOKED)
    other_dir = top / "someone-elses"
    other_dir.mkdir()
    (other_dir / "their-file-inside").write_text("x")
    os.chown(other_dir / "their-file-inside", REVOKED, REVOKED)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("x")
    os.chown(outside / "precious", REVOKED, REVOKED)
    os.symlink(outside, top / "link-to-outside")
    os.lchown(top / "link-to-outside", REVOKED, REVOKED)
    os.symlink(outside, top / "roots-link")
    return top, outside


def test_only_the_accounts_entries_are_found_and_links_are_not_followed(shared):
    top, _ = shared
    found = [os.path.relpath(path, top) for path in end_users.owned_entries(str(top), REVOKED)]
    assert found == ["link-to-outside", "someone-elses/their-file-inside", "their-dir", "theirs"]


def test_removing_a_link_leaves_its_target(shared):
    top, outside = shared
    for path in end_users.owned_entries(str(top), REVOKED):
        end_users.remove(path)
    assert sorted(os.listdir(top)) == ["mine", "roots-link", "someone-elses"]
    assert (outside / "precious").exists()
    assert os.listdir(top / "someone-elses") == []


def test_processes_are_found_by_any_of_their_uids():
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as another uid")
    child = subprocess.Popen([sys.executable, "-c", f"import os, time; os.setresuid({REVOKED}, {REVOKED}, 0); time.sleep(30)"])
    try:
        for _ in range(50):
            if child.pid in end_users.processes_of(REVOKED):
                break
            subprocess.run(["sleep", "0.1"], check=False)
        assert child.pid in end_users.processes_of(REVOKED)
        assert child.pid not in end_users.processes_of(REVOKED + 1)
    finally:
        child.kill()
        child.wait()
