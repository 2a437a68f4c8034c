"""The Jupyter service plan: ports, notebook roots, revoked users and their settings files
(gpubox.workstation jupyter filters)."""

from __future__ import annotations

import pytest

from ansible_collections.gpubox.workstation.plugins.filter.jupyter import (
    jupyter_env_files, jupyter_restart_users, jupyter_revoked, jupyter_services,
)

SEEN = {
    "alice": {"exists": True, "uid": 1001, "home": "/home/alice"},
    "bob": {"exists": True, "uid": 1002, "home": "/home/bob"},
    "carol": {"exists": False, "uid": -1, "home": ""},
}


def test_port_follows_the_uid_unless_the_user_sets_one():
    services = jupyter_services([{"name": "alice"}, {"name": "bob", "jupyter_port": 9100}], SEEN, 8888, "")
    assert services == [
        {"name": "alice", "port": 8889, "root": "/home/alice", "uid": 1001},
        {"name": "bob", "port": 9100, "root": "/home/bob", "uid": 1002},
    ]


def test_users_without_an_account_yet_get_no_service():
    assert [s["name"] for s in jupyter_services([{"name": "carol"}, {"name": "alice"}], SEEN, 8888, "")] == ["alice"]


@pytest.mark.parametrize(("notebook_dir", "root"), [
    ("", "/home/alice"), ("notebooks", "/home/alice/notebooks"), ("/srv/notebooks", "/srv/notebooks"),
])
def test_notebook_root_is_home_relative_or_absolute(notebook_dir, root):
    assert jupyter_services([{"name": "alice"}], SEEN, 8888, notebook_dir)[0]["root"] == root


def test_revoked_are_running_users_no_longer_present_each_once():
    running = ["mallory", "alice", "trent", "mallory"]  # enabled, then active: one user can be both
    assert jupyter_revoked(running, [{"name": "alice"}, {"name": "bob"}]) == ["mallory", "trent"]
    assert jupyter_revoked(["alice"], [{"name": "alice"}]) == []


def test_env_files_carry_port_root_and_slice_and_revoked_files_are_removed():
    services = [{"name": "alice", "port": 8889, "root": "/home/alice", "uid": 1001}]
    assert jupyter_env_files(services, ["mallory"], "/etc/gpubox/jupyter", "Managed by gpubox") == [
        {"path": "/etc/gpubox/jupyter/alice.env",
         "content": "# Managed by gpubox\nGPUBOX_JUPYTER_PORT=8889\nGPUBOX_JUPYTER_ROOT=/home/alice\n"},
        {"path": "/etc/systemd/system/jupyter@alice.service.d/50-gpubox-slice.conf",
         "content": "# Managed by gpubox\n[Service]\nSlice=user-1001.slice\n"},
        {"path": "/etc/gpubox/jupyter/mallory.env", "state": "absent"},
        {"path": "/etc/systemd/system/jupyter@mallory.service.d/50-gpubox-slice.conf", "state": "absent"},
    ]


SERVICES = [{"name": name, "port": 8888 + n, "root": f"/home/{name}", "uid": 1000 + n} for n, name in enumerate(["alice", "bob", "dave"], 1)]


def test_a_shared_change_restarts_every_running_server_and_only_running_ones():
    assert jupyter_restart_users(SERVICES, ["alice", "dave"], True, [], [], "/etc/gpubox/jupyter") == ["alice", "dave"]


@pytest.mark.parametrize(("changed", "tokens", "restarted"), [
    ([], [], []),  # a roster change elsewhere (frank added, erin revoked) restarts nobody
    (["/etc/gpubox/jupyter/bob.env"], [], ["bob"]),
    (["/etc/systemd/system/jupyter@dave.service.d/50-gpubox-slice.conf"], [], ["dave"]),
    ([], ["alice"], ["alice"]),
    (["/etc/gpubox/jupyter/erin.env"], [], []),  # a revoked user's removal: erin is stopped, not restarted
])
def test_only_the_users_whose_own_inputs_changed_are_restarted(changed, tokens, restarted):
    assert jupyter_restart_users(SERVICES, ["alice", "bob", "dave"], False, changed, tokens, "/etc/gpubox/jupyter") == restarted
