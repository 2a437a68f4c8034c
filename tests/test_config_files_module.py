"""gpubox.workstation.config_files, run by Ansible itself against files on this machine."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import PROJECT, VENV_BIN, run_env


def config_files(files: list[dict], *flags: str) -> dict:
    env = run_env()
    env.update(ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", "gpubox.workstation.config_files", "-a", json.dumps({"files": files}), *flags],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_writes_once_then_changes_nothing(tmp_path):
    files = [{"path": str(tmp_path / "new" / "a.conf"), "content": "a=1\n"},
             {"path": str(tmp_path / "secret"), "content": "token", "mode": "0600"}]
    first = config_files(files)
    assert first["changed"] and sorted(first["changed_paths"]) == sorted(f["path"] for f in files)
    assert (tmp_path / "new" / "a.conf").read_text() == "a=1\n"
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new" / "a.conf").stat().st_mode & 0o777 == 0o644
    second = config_files(files)
    assert second["changed"] is False and second["changed_paths"] == []


def test_mode_drift_is_repaired(tmp_path):
    target = tmp_path / "secret"
    files = [{"path": str(target), "content": "token", "mode": "0600"}]
    config_files(files)
    target.chmod(0o666)
    result = config_files(files)
    assert result["changed_paths"] == [str(target)]
    assert target.stat().st_mode & 0o777 == 0o600


def test_failed_validation_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "checked.conf"
    target.write_text("good\n")
    result = config_files([{"path": str(target), "content": "bad\n", "validate": "grep -q good %s"}])
    assert result.get("failed") is True
    assert "failed validation" in result["msg"] and str(target) in result["msg"]
    assert target.read_text() == "good\n"
    assert os.listdir(tmp_path) == ["checked.conf"]


def test_check_mode_reports_and_changes_nothing_with_a_diff(tmp_path):
    target = tmp_path / "a.conf"
    target.write_text("old\n")
    result = config_files([{"path": str(target), "content": "new\n"}, {"path": str(tmp_path / "gone"), "state": "absent"}],
                          "--check", "--diff")
    assert result["changed_paths"] == [str(target)]
    assert result["diff"][0]["before"] == "old\n" and result["diff"][0]["after"] == "new\n"
    assert target.read_text() == "old\n"


def test_absent_removes(tmp_path):
    target = tmp_path / "stale.crt"
    target.write_text("x")
    assert config_files([{"path": str(target), "state": "absent"}])["changed_paths"] == [str(target)]
    assert not target.exists()


def test_a_path_twice_is_refused(tmp_path):
    path = str(tmp_path / "a")
    result = config_files([{"path": path, "content": "1"}, {"path": path, "content": "2"}])
    assert result.get("failed") is True and path in result["msg"]
    assert not (tmp_path / "a").exists()
