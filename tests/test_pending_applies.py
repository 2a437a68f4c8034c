"""Pending applies: config_files records an owed reload before the file changes, and only the
`applied` handler after a successful apply removes it, so a run that died in between is
repaired by the next one (run by Ansible itself against files on this machine)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PROJECT, VENV_BIN, run_env


def _env() -> dict[str, str]:
    env = run_env()
    env.update(ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    return env


def module(name: str, args: dict, *flags: str) -> dict:
    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", f"gpubox.workstation.{name}", "-a", json.dumps(args), *flags],
        cwd=PROJECT, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_a_change_owes_its_apply_until_applied(tmp_path):
    pending, target = tmp_path / "pending", tmp_path / "etc" / "svc.conf"
    args = {"pending": "svc-reload", "pending_dir": str(pending), "files": [{"path": str(target), "content": "a=1\n"}]}
    first = module("config_files", args)
    assert first["changed"] and first["pending"] is True and (pending / "svc-reload").is_file()
    # The file is right now, but the apply never ran: the task still reports changed (its handler runs).
    again = module("config_files", args)
    assert again["changed_paths"] == [] and again["changed"] is True and again["pending"] is True
    settled = module("applied", {"name": "svc-reload", "pending_dir": str(pending)})
    assert settled["changed"] is True and not (pending / "svc-reload").exists()
    quiet = module("config_files", args)
    assert quiet["changed"] is False and quiet["pending"] is False
    assert module("applied", {"name": "svc-reload", "pending_dir": str(pending)})["changed"] is False


def test_the_marker_is_on_disk_before_the_file_changes(tmp_path):
    pending, target = tmp_path / "pending", tmp_path / "svc.conf"
    target.write_text("old\n")
    # validate runs on the new content just before it replaces the file: the marker must exist by then.
    check = f"test -e {pending / 'svc-reload'} -a -e %s"
    result = module("config_files", {"pending": "svc-reload", "pending_dir": str(pending),
                                     "files": [{"path": str(target), "content": "new\n", "validate": check}]})
    assert result.get("failed") is not True, result.get("msg")
    assert target.read_text() == "new\n"


def test_without_pending_nothing_is_recorded(tmp_path):
    target = tmp_path / "plain.conf"
    result = module("config_files", {"pending_dir": str(tmp_path / "pending"),
                                     "files": [{"path": str(target), "content": "x\n"}]})
    assert result["changed"] is True and result["pending"] is False
    assert not (tmp_path / "pending").exists()


def test_check_mode_reports_the_apply_and_writes_nothing(tmp_path):
    pending, target = tmp_path / "pending", tmp_path / "svc.conf"
    result = module("config_files", {"pending": "svc-reload", "pending_dir": str(pending),
                                     "files": [{"path": str(target), "content": "x\n"}]}, "--check")
    assert result["changed"] is True and result["pending"] is True
    assert not pending.exists() and not target.exists()
    pending.mkdir()
    (pending / "svc-reload").write_text("left by a killed run\n")
    assert module("applied", {"name": "svc-reload", "pending_dir": str(pending)}, "--check")["changed"] is True
    assert (pending / "svc-reload").exists()


def test_a_name_is_never_a_path(tmp_path):
    result = module("applied", {"name": "../../etc/passwd", "pending_dir": str(tmp_path)})
    assert result.get("failed") is True and "pending name" in result["msg"]
    result = module("config_files", {"pending": "a/b", "pending_dir": str(tmp_path),
                                     "files": [{"path": str(tmp_path / "f"), "content": "x"}]})
    assert result.get("failed") is True and not (tmp_path / "f").exists()


PLAYBOOK = """
- name: A config whose apply is a handler
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the config
      gpubox.workstation.config_files:
        pending: svc-reload
        pending_dir: "{{ pending_dir }}"
        files:
          - path: "{{ target }}"
            content: "a=1\\n"
      notify: Reload the service
  handlers:
    - name: Reload the service
      ansible.builtin.shell: "{{ reload }}"
      changed_when: true
    - name: Settle the reload
      gpubox.workstation.applied:
        name: svc-reload
        pending_dir: "{{ pending_dir }}"
      listen: Reload the service
"""


def playbook(tmp_path: Path, reload: str) -> subprocess.CompletedProcess[str]:
    book = tmp_path / "play.yml"
    book.write_text(PLAYBOOK)
    extra = {"pending_dir": str(tmp_path / "pending"), "target": str(tmp_path / "svc.conf"), "reload": reload}
    env = _env()
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), str(book), "-e", json.dumps(extra)],
                          cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_a_failed_apply_is_retried_by_the_next_run_although_the_file_is_right(tmp_path):
    log = tmp_path / "reloads"
    failed = playbook(tmp_path, "exit 1")
    assert failed.returncode != 0
    assert (tmp_path / "svc.conf").read_text() == "a=1\n" and (tmp_path / "pending" / "svc-reload").exists()
    repaired = playbook(tmp_path, f"echo reloaded >> {log}")
    assert repaired.returncode == 0, repaired.stdout[-2000:]
    assert log.read_text() == "reloaded\n" and not (tmp_path / "pending" / "svc-reload").exists()
    quiet = playbook(tmp_path, f"echo reloaded >> {log}")
    assert quiet.returncode == 0 and "changed=0" in quiet.stdout
    assert log.read_text() == "reloaded\n"


def test_a_change_that_is_not_a_file_can_owe_its_apply(tmp_path):
    pending = tmp_path / "pending"
    owed = {"name": "svc-restart", "state": "owed", "pending_dir": str(pending)}
    assert module("applied", owed, "--check")["changed"] is True and not pending.exists()
    assert module("applied", owed)["changed"] is True and (pending / "svc-restart").is_file()
    assert module("applied", owed)["changed"] is False  # already owed: nothing to write
    # A config_files task of the same apply now reports it owed though its files are right.
    target = tmp_path / "svc.conf"
    target.write_text("x\n")
    again = module("config_files", {"pending": "svc-restart", "pending_dir": str(pending),
                                    "files": [{"path": str(target), "content": "x\n"}]})
    assert again["changed_paths"] == [] and again["changed"] is True
    assert module("applied", {"name": "svc-restart", "pending_dir": str(pending)})["changed"] is True
    assert not (pending / "svc-restart").exists()
