"""Progress and failure summaries from ansible-runner events, without a host."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

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
    progress = ansible.Progress(out, total_plays=3, verbose=False)
    events = [
        {"event": "playbook_on_play_start", "event_data": {"play": "Base system every workstation needs first"}},
        {"event": "playbook_on_task_start", "event_data": {"task": "Install the common packages"}},
        {"event": "runner_on_failed", "event_data": {"host": "gpubox-a", "task": "Install the common packages",
                                                     "res": {"msg": "No package matching 'foo' is available"}}},
        {"event": "runner_on_failed", "event_data": {"host": "gpubox-a", "task": "ignored", "ignore_errors": True,
                                                     "res": {"msg": "x"}}},
        {"event": "playbook_on_stats", "event_data": {"changed": {"gpubox-a": 2}}},
    ]
    for event in events:
        assert progress(event) is True
    assert out.getvalue().splitlines() == ["[0:00] Preparing the system (packages, time, certificates)",
                                           "  FAILED on gpubox-a: Install the common packages"]
    assert "  [play 1/3, task 1, 0:00] Install the common packages" in progress.log_lines
    assert progress.failures == [ansible.Failure("gpubox-a", "Install the common packages", "No package matching 'foo' is available")]
    assert progress.changed == {"gpubox-a": 2}


def test_long_messages_are_cut():
    assert len(ansible._message({"msg": "x" * 5000})) < 2100


PLAYS = ["Check every role's inputs before anything changes", "Base system every workstation needs first",
         "TensorFlow in a virtualenv, smoke-tested"]
USUAL = {"Checking the settings": 20.0, "Preparing the system (packages, time, certificates)": 100.0,
         "Installing TensorFlow and testing it": 130.0}


def _feed(progress: ansible.Progress, now: list[float], tasks_per_play: int = 40) -> None:
    for play in PLAYS:
        progress({"event": "playbook_on_play_start", "event_data": {"play": play}})
        for number in range(tasks_per_play):
            now[0] += 2
            progress({"event": "playbook_on_task_start", "event_data": {"task": f"{play[:4]} task {number}"}})
            progress({"event": "playbook_on_task_start", "event_data": {"task": "conditional", "is_conditional": True}})
        progress({"event": "playbook_on_handler_task_start", "event_data": {"task": "Restart sshd"}})


def test_one_line_per_step_in_plain_words_with_elapsed_time_and_time_left():
    """The screen shows steps, not tasks: what happens, how long it usually takes, the time since
    the start, and the estimates of this step and the ones after it added up."""
    out = io.StringIO()
    now = [100.0]
    progress = ansible.Progress(out, total_plays=3, clock=lambda: now[0], plays=PLAYS, estimate=USUAL.get, verbose=False)
    _feed(progress, now)
    assert out.getvalue().splitlines() == [
        "[0:00] Checking the settings (about 4 minutes left)",
        "[1:20] Preparing the system (packages, time, certificates) (usually about 2 minutes; about 4 minutes left)",
        "[2:40] Installing TensorFlow and testing it (usually about 2 minutes)",
    ]
    # The task names are in the run's log, with play of plays, task within and elapsed time.
    assert "  [play 2/3, task 40, 2:40] Base task 39" in progress.log_lines
    assert "  [handler, 4:00] Restart sshd" in progress.log_lines
    assert progress.finish() == [("Checking the settings", 80.0), ("Preparing the system (packages, time, certificates)", 80.0),
                                 ("Installing TensorFlow and testing it", 80.0)]


def test_verbose_shows_every_task_on_the_screen_too():
    out = io.StringIO()
    now = [0.0]
    progress = ansible.Progress(out, total_plays=3, clock=lambda: now[0], plays=PLAYS, estimate=USUAL.get, verbose=True)
    _feed(progress, now, tasks_per_play=2)
    lines = out.getvalue().splitlines()
    assert lines == progress.log_lines[1:2] + lines[1:] and "  [play 1/3, task 1, 0:02] Chec task 0" in lines
    assert "  [handler, 0:12] Restart sshd" in lines


def test_without_recorded_durations_no_estimate_is_made_up():
    out = io.StringIO()
    progress = ansible.Progress(out, total_plays=None, clock=lambda: 0.0, verbose=False)
    progress({"event": "playbook_on_play_start", "event_data": {"play": "Provision a gpubox workstation on EC2"}})
    progress({"event": "playbook_on_play_start", "event_data": {"play": "A play nobody named in words"}})
    progress({"event": "playbook_on_task_start", "event_data": {"task": "Find the instance"}})
    assert out.getvalue().splitlines() == ["[0:00] Launching the EC2 instance", "[0:00] A play nobody named in words"]
    assert "  [play 2, task 1, 0:00] Find the instance" in progress.log_lines


def test_time_left_is_left_out_while_a_later_step_has_no_estimate():
    out = io.StringIO()
    progress = ansible.Progress(out, total_plays=3, clock=lambda: 0.0, plays=PLAYS, estimate={"Checking the settings": 100.0}.get,
                                verbose=False)
    progress({"event": "playbook_on_play_start", "event_data": {"play": PLAYS[0]}})
    assert out.getvalue().splitlines() == ["[0:00] Checking the settings (usually about 2 minutes)"]


def test_a_run_of_seconds_long_steps_says_no_estimates():
    """A re-run whose steps each took seconds: the lines say what happens, not "under a minute" eight times."""
    out = io.StringIO()
    progress = ansible.Progress(out, total_plays=3, clock=lambda: 0.0, plays=PLAYS, estimate=lambda step: 2.0, verbose=False)
    for play in PLAYS:
        progress({"event": "playbook_on_play_start", "event_data": {"play": play}})
    assert out.getvalue().splitlines() == ["[0:00] Checking the settings", "[0:00] Preparing the system (packages, time, certificates)",
                                           "[0:00] Installing TensorFlow and testing it"]


@pytest.mark.parametrize(("seconds", "words"), [(5, "under a minute"), (60, "about a minute"), (100, "about 2 minutes"),
                                                (1178, "about 20 minutes"), (3600, "about an hour"), (9000, "about 2.5 hours")])
def test_durations_in_words(seconds, words):
    assert ansible.in_words(seconds) == words


def test_durations_are_kept_per_playbook_and_kind_of_run_and_estimated_by_the_median(tmp_path: Path):
    path = tmp_path / "state" / "durations.json"
    durations = ansible.Durations(path)
    assert durations.kind("site.yml", "gpubox-a") == "first"
    for seconds in (100, 300, 120):
        durations.record("site.yml", "first", "gpubox-a", [("Setting up JupyterLab", seconds)], converged=True)
    durations.record("site.yml", "again", "gpubox-a", [("Setting up JupyterLab", 2)], converged=True)
    again = ansible.Durations(path)  # read back from the file
    assert again.kind("site.yml", "gpubox-a") == "again" and again.kind("site.yml", "gpubox-b") == "first"
    assert again.estimate("site.yml", "first", "Setting up JupyterLab") == 120.0
    assert again.estimate("site.yml", "again", "Setting up JupyterLab") == 2.0
    assert again.estimate("playbooks/provision.yml", "first", "Setting up JupyterLab") is None
    for seconds in range(10):
        again.record("site.yml", "first", "gpubox-a", [("Setting up JupyterLab", seconds)], converged=True)
    assert json.loads(path.read_text())["playbooks"]["site.yml"]["first"]["Setting up JupyterLab"] == [5, 6, 7, 8, 9]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_durations_file_means_no_records(tmp_path: Path):
    path = tmp_path / "durations.json"
    for damaged in ("{not json", "[1, 2]", '{"playbooks": {"site.yml": {"first": ["x"]}}}'):
        path.write_text(damaged)
        assert ansible.Durations(path).estimate("site.yml", "again", "Setting up JupyterLab") is None


def test_every_play_a_command_runs_has_plain_words():
    from gpubox.paths import PROJECT_DIR  # noqa: PLC0415

    for playbook in ("site.yml", "playbooks/provision.yml", "playbooks/teardown.yml", "playbooks/bake.yml"):
        plays = ansible.list_plays(PROJECT_DIR / playbook)
        assert plays, playbook
        missing = [play for play in plays if play not in ansible.STEPS]
        assert not missing, f"{playbook}: add these plays to gpubox.ansible.STEPS: {missing}"


def _site_events(tasks_per_play: int) -> list[dict]:
    from gpubox.paths import PROJECT_DIR  # noqa: PLC0415

    events = [{"event": "playbook_on_start", "event_data": {}}]
    for play in ansible.list_plays(PROJECT_DIR / "site.yml"):
        events.append({"event": "playbook_on_play_start", "event_data": {"play": play}})
        for number in range(tasks_per_play):
            events.append({"event": "playbook_on_task_start", "event_data": {"task": f"A task {number}"}})
            events.append({"event": "runner_on_ok", "event_data": {"host": "gpubox-t", "task": f"A task {number}"}})
        events.append({"event": "playbook_on_handler_task_start", "event_data": {"task": "A handler"}})
    events.append({"event": "playbook_on_stats", "event_data": {"changed": {"gpubox-t": 30}}})
    return events


class _FakeRunner:
    """Stands in for ansible_runner.run: feeds the events a site.yml run sends."""

    def __init__(self, events: list[dict], rc: int = 0) -> None:
        self.events, self.rc, self.calls = events, rc, 0

    def __call__(self, **kwargs):
        self.calls += 1
        for event in self.events:
            kwargs["event_handler"](event)
        return type("Result", (), {"rc": self.rc})()


def test_a_first_site_run_prints_at_most_25_lines_and_records_its_steps(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(ansible, "VERBOSE", False)
    conn = Connection(alias="gpubox-t", address="127.0.0.1", port=2201, user="admin", key=Path("/k"))
    out = io.StringIO()
    result = ansible.run_playbook("site.yml", [conn], out=out, runner=_FakeRunner(_site_events(20)))
    lines = out.getvalue().splitlines()
    assert result.ok and 5 <= len(lines) <= 25, lines
    assert all(re.match(r"^\[\d+:\d\d\] [A-Z][a-z]", line) for line in lines), lines
    assert not any("A task" in line for line in lines)
    assert "A task 19" in (result.run_dir / "progress.log").read_text()
    recorded = json.loads((tmp_path / "state" / "gpubox" / "durations.json").read_text())["playbooks"]["site.yml"]
    assert set(recorded["first"]) == {ansible.step_of(play) for play in ansible.list_plays(ansible.PROJECT_DIR / "site.yml")}
    assert recorded["converged"] == ["gpubox-t"]

    # The next run on that workstation is a re-run: estimated from re-runs only (none yet), and recorded as one.
    out = io.StringIO()
    ansible.run_playbook("site.yml", [conn], out=out, runner=_FakeRunner(_site_events(2)))
    assert "usually" not in out.getvalue()
    recorded = json.loads((tmp_path / "state" / "gpubox" / "durations.json").read_text())["playbooks"]["site.yml"]
    assert set(recorded["again"]) == set(recorded["first"])


def test_a_failed_run_records_no_time_for_the_step_that_failed(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    conn = Connection(alias="gpubox-t", address="127.0.0.1", port=2201, user="admin", key=Path("/k"))
    events = _site_events(1)[:6] + [{"event": "runner_on_failed", "event_data": {"host": "gpubox-t", "task": "A task 0",
                                                                                  "res": {"msg": "boom"}}}]
    result = ansible.run_playbook("site.yml", [conn], out=io.StringIO(), runner=_FakeRunner(events, rc=2))
    assert not result.ok
    recorded = json.loads((tmp_path / "state" / "gpubox" / "durations.json").read_text())["playbooks"]["site.yml"]
    assert list(recorded["first"]) == ["Checking the settings"]
    assert recorded.get("converged", []) == []


def test_the_verbose_option_turns_task_names_on(monkeypatch):
    import argparse  # noqa: PLC0415

    monkeypatch.setattr(ansible, "VERBOSE", False)
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action=ansible.ShowTaskNames)
    assert parser.parse_args([]).verbose is False and ansible.VERBOSE is False
    assert parser.parse_args(["--verbose"]).verbose is True and ansible.VERBOSE is True
    assert ansible.Progress(io.StringIO(), total_plays=1).verbose is True


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


def test_tagged_and_check_runs_keep_their_own_records(tmp_path: Path, monkeypatch):
    """A baked image's per-instance run (--tags) takes seconds where a first run installs for
    minutes: neither may set the other's estimate. A --check run records nothing."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    conn = Connection(alias="gpubox-t", address="127.0.0.1", port=2201, user="admin", key=Path("/k"))
    ansible.run_playbook("site.yml", [conn], tags="ssh_access", out=io.StringIO(), runner=_FakeRunner(_site_events(1)))
    ansible.run_playbook("site.yml", [conn], check=True, out=io.StringIO(), runner=_FakeRunner(_site_events(1)))
    recorded = json.loads((tmp_path / "state" / "gpubox" / "durations.json").read_text())["playbooks"]["site.yml"]
    assert set(recorded) == {"tags ssh_access", "converged"}


def test_the_verbose_option_after_the_verb_too(monkeypatch):
    """As gpubox/flags.py offers --debug: a parent group every verb's parser takes, default SUPPRESS."""
    import argparse  # noqa: PLC0415

    monkeypatch.setattr(ansible, "VERBOSE", False)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--verbose", action=ansible.ShowTaskNames, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser()
    parser.add_argument("--verbose", action=ansible.ShowTaskNames)
    parser.add_subparsers(dest="command").add_parser("provision", parents=[shared])
    assert parser.parse_args(["--verbose", "provision"]).verbose is True and ansible.VERBOSE is True
    monkeypatch.setattr(ansible, "VERBOSE", False)
    assert parser.parse_args(["provision", "--verbose"]).verbose is True and ansible.VERBOSE is True
