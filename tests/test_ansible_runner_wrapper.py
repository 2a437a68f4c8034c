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
    progress = ansible.Progress(out, total_plays=3)
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
    assert "[play 1/3, task 1, 0:00] Install the common packages" in out.getvalue()
    assert progress.failures == [ansible.Failure("gpubox-a", "Install the common packages", "No package matching 'foo' is available")]
    assert progress.changed == {"gpubox-a": 2}


def test_long_messages_are_cut():
    assert len(ansible._message({"msg": "x" * 5000})) < 2100


def test_progress_says_play_of_plays_task_within_and_elapsed_time():
    """The counts never outrun their total: 40 tasks in a play (more than any listing knows of,
    with roles included at run time) still read play 2/2; the clock is the run's."""
    out = io.StringIO()
    now = [100.0]
    progress = ansible.Progress(out, total_plays=2, clock=lambda: now[0])
    progress({"event": "playbook_on_play_start", "event_data": {"play": "Preflight"}})
    now[0] += 5
    progress({"event": "playbook_on_task_start", "event_data": {"task": "Gathering Facts"}})
    progress({"event": "playbook_on_task_start", "event_data": {"task": "conditional", "is_conditional": True}})
    progress({"event": "playbook_on_play_start", "event_data": {"play": "Base"}})
    for number in range(40):
        now[0] += 2
        progress({"event": "playbook_on_task_start", "event_data": {"task": f"Task {number}"}})
    now[0] += 3600
    progress({"event": "playbook_on_handler_task_start", "event_data": {"task": "Restart sshd"}})
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["== Preflight", "  [play 1/2, task 1, 0:05] Gathering Facts", "== Base"]
    assert lines[3] == "  [play 2/2, task 1, 0:07] Task 0"
    assert lines[-2] == "  [play 2/2, task 40, 1:25] Task 39"
    assert lines[-1] == "  [handler, 1:01:25] Restart sshd"
    assert progress.log_lines == lines


def test_progress_without_a_known_play_count():
    out = io.StringIO()
    progress = ansible.Progress(out, total_plays=None, clock=lambda: 0.0)
    progress({"event": "playbook_on_play_start", "event_data": {"play": "Provision"}})
    progress({"event": "playbook_on_task_start", "event_data": {"task": "Find the instance"}})
    assert "  [play 1, task 1, 0:00] Find the instance" in out.getvalue().splitlines()


def test_elapsed():
    shown = [ansible.elapsed(seconds) for seconds in (0, 59.9, 61, 3599, 3600, 7322)]
    assert shown == ["0:00", "0:59", "1:01", "59:59", "1:00:00", "2:02:02"]


def test_play_count_read_from_the_yaml_matches_ansibles_own_listing():
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from gpubox.paths import PROJECT_DIR  # noqa: PLC0415

    listed = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "--list-tasks", "site.yml"],
                            cwd=PROJECT_DIR, capture_output=True, text=True, check=True,
                            env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT_DIR / "ansible.cfg")})
    plays = sum(1 for line in listed.stdout.splitlines() if line.strip().startswith("play #"))
    assert plays > 1
    assert ansible.count_plays(PROJECT_DIR / "site.yml") == plays


def test_play_count_follows_imports_and_says_none_when_it_cannot_tell(tmp_path: Path):
    (tmp_path / "inner.yml").write_text("- hosts: all\n  tasks: []\n- hosts: all\n  tasks: []\n")
    (tmp_path / "outer.yml").write_text("- ansible.builtin.import_playbook: inner.yml\n- hosts: all\n  tasks: []\n")
    assert ansible.count_plays(tmp_path / "outer.yml") == 3
    (tmp_path / "templated.yml").write_text("- ansible.builtin.import_playbook: '{{ which }}.yml'\n")
    (tmp_path / "broken.yml").write_text("- hosts: [\n")
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe- hosts: all\n")
    (tmp_path / "cycle.yml").write_text("- ansible.builtin.import_playbook: cycle.yml\n")
    for unknown in ("templated.yml", "broken.yml", "missing.yml", "binary.yml", "cycle.yml"):
        assert ansible.count_plays(tmp_path / unknown) is None
