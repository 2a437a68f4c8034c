"""`runner.py autostop MINUTES|off|status`: the wish is written over SSH as the role's checker
reads it (the real checker code judges what the real shell command wrote), held to IT's bounds;
bad input is refused before anything is reached; the verb finds the only workstation."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import PROJECT
from gpubox import cli, contract, ssh
from gpubox.commands import autostop_cli

CHECKER = PROJECT / "roles" / "autostop" / "files" / "gpubox_autostop.py"
spec = importlib.util.spec_from_file_location("gpubox_autostop_for_verb", CHECKER)
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)


def written(tmp_path: Path, monkeypatch, *asked: str) -> Path:
    """Run the verb's remote command in a real shell against a stand-in idle-limits directory."""
    directory = tmp_path / "idle-limits"
    directory.mkdir(exist_ok=True)
    monkeypatch.setattr(contract, "IDLE_LIMITS_DIR", str(directory))
    for value in asked:
        subprocess.run(["sh", "-c", autostop_cli.set_command(autostop_cli.wish(value))], check=True)
    return directory


def limit_in_force(directory: Path, **bounds) -> tuple[tuple[int, str], list[str]]:
    notes: list[str] = []
    config = {"idle_minutes": 60, "idle_limits_dir": str(directory), "shadow_file": "/nonexistent", **bounds}
    return checker.idle_limit(config, NOW, [], notes), notes


def test_the_latest_wish_is_the_one_file_left_and_the_checker_applies_it(tmp_path, monkeypatch):
    me = pwd.getpwuid(os.getuid()).pw_name
    directory = written(tmp_path, monkeypatch, "45", "20")
    [only] = list(directory.iterdir())
    assert only.name.startswith(f"{me}.") and only.read_text() == "20\n"
    assert limit_in_force(directory)[0] == (20, me)


def test_a_wish_above_its_cap_is_held_to_the_cap_and_off_where_it_is_not_allowed(tmp_path, monkeypatch):
    me = pwd.getpwuid(os.getuid()).pw_name
    directory = written(tmp_path, monkeypatch, "600")
    (minutes, _), notes = limit_in_force(directory, max_idle_minutes=240)
    assert minutes == 240 and notes == [f"idle limit of {me}: 600 min asked, beyond IT's bounds (at most 240 min): 240 min applies"]
    written(tmp_path, monkeypatch, "off")
    assert limit_in_force(directory, max_idle_minutes=240, allow_off=False)[0] == (240, me)
    assert limit_in_force(directory)[0] == (0, me)  # off, where IT allows it


@pytest.mark.parametrize("value", ["0", "-5", "ten", "1000000", "30m", ""])
def test_a_limit_that_is_neither_minutes_nor_off_is_refused_before_anything_is_reached(home, capsys, value):
    assert cli.main(["autostop", value, "--name", "nowhere"]) == 2
    assert "neither minutes nor off" in capsys.readouterr().err


def test_the_verb_acts_on_the_only_workstation_and_shows_the_status(home, monkeypatch, capsys):
    ssh.write_config_entry(ssh.Connection(alias="gpubox-solo", address="127.0.0.1", port=1, user="me", key=home / "k"))
    sent: list[tuple[str, str]] = []
    status = {"checked_at": "2026-12-07T06:00:00+00:00", "busy": False, "reasons": [], "idle_minutes": 4.2, "idle_limit": 240,
              "idle_limit_by": "alice", "stops_in_minutes": 235.8,
              "notes": ["idle limit of alice: 600 min asked, beyond IT's bounds (at most 240 min): 240 min applies"]}

    def remote(alias: str, command: str) -> str:
        sent.append((alias, command))
        return json.dumps(status)

    monkeypatch.setattr(autostop_cli, "_remote", remote)
    assert cli.main(["autostop", "600"]) == 0
    assert sent[-1] == ("gpubox-solo", autostop_cli.set_command("600"))
    assert cli.main(["autostop", "status"]) == 0
    out = capsys.readouterr().out
    assert sent[-1] == ("gpubox-solo", f"cat {contract.AUTOSTOP_STATUS_PATH}")
    assert "idle limit: 240 min (set by alice)" in out and "note: idle limit of alice: 600 min asked" in out
