"""Progress and failure summaries from ansible-runner events, without a host."""

from __future__ import annotations

import io
from pathlib import Path

from gpubox import ansible
from gpubox.ssh import Connection


def test_inventory_puts_hosts_in_the_workstation_group():
    conn = Connection(alias="gpubox-a", address="127.0.0.1", port=2201, user="admin", key=Path("/k"))
    inv = ansible.inventory([conn])
    host = inv["all"]["children"]["gpu_workstations"]["hosts"]["gpubox-a"]
    assert host["ansible_port"] == 2201 and host["ansible_user"] == "admin"
    assert "HostKeyAlias=gpubox-a" in host["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=accept-new" in host["ansible_ssh_common_args"]


def test_progress_counts_steps_and_keeps_the_failure():
    out = io.StringIO()
    progress = ansible.Progress(out, total_tasks=3)
    events = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Base"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Install the common packages"}},
        {"event": "runner_on_failed", "event_data": {"host": "gpubox-a", "task": "Install the common packages",
                                                     "res": {"msg": "No package matching 'foo' is available"}}},
        {"event": "runner_on_failed", "event_data": {"host": "gpubox-a", "task": "ignored", "ignore_errors": True,
                                                     "res": {"msg": "x"}}},
        {"event": "playbook_on_stats", "event_data": {"changed": {"gpubox-a": 2}}},
    ]
    for event in events:
        assert progress(event) is True
    assert "[1/3] Install the common packages" in out.getvalue()
    assert progress.failures == [ansible.Failure("gpubox-a", "Install the common packages", "No package matching 'foo' is available")]
    assert progress.changed == {"gpubox-a": 2}


def test_long_messages_are_cut():
    assert len(ansible._message({"msg": "x" * 5000})) < 2100
