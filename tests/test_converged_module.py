"""The converged module and filters: a record of what a role's body left, compared with the host
(run by Ansible itself against files on this machine), and the skip decision."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ansible_collections.gpubox.workstation.plugins.filter.converged import (converged_plan, converged_selected, converged_skip,
                                                                             converged_whole_role)
from conftest import PROJECT, VENV_BIN, run_env


def module(name: str, args: dict, *flags: str) -> dict:
    env = run_env()
    env.update(ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    result = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-m", f"gpubox.workstation.{name}", "-a", json.dumps(args), *flags],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    return {"state_dir": str(tmp_path / "converged"), "pending_dir": str(tmp_path / "pending")}


def check(dirs: dict, role: str = "demo") -> dict:
    result = module("converged", {"roles": [role], **dirs})
    assert result.get("failed") is not True, result.get("msg")
    return result["roles"][role]


def test_a_record_matches_until_the_host_changes(tmp_path, dirs):
    conf, link, folder = tmp_path / "etc" / "demo.conf", tmp_path / "current", tmp_path / "keys"
    folder.mkdir()
    link.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    # A body: config_files with the role's ledger, then the record.
    written = module("config_files", {"ledger": "demo", "ledger_dir": dirs["state_dir"],
                                      "files": [{"path": str(conf), "content": "a=1\n"}]})
    assert written["changed"] is True
    recorded = module("converged", {"state": "record", "roles": ["demo"], "digest": "d1", "files": [str(link)],
                                    "dirs": [str(folder)], **dirs})
    assert recorded["changed"] is False
    record = Path(dirs["state_dir"]) / "demo.json"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    assert check(dirs) == {"digest": "d1", "pending": [], "drift": []}

    conf.write_text("a=2\n")  # a hand edit of a file config_files manages (from the ledger)
    assert check(dirs)["drift"] == [f"file {conf}"]
    conf.write_text("a=1\n")
    os.chmod(conf, 0o666)  # the same content, a looser mode
    assert check(dirs)["drift"] == [f"file {conf}"]
    os.chmod(conf, 0o644)
    assert check(dirs)["drift"] == []

    link.unlink()
    link.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    (folder / "mallory").write_text("planted\n")
    assert check(dirs)["drift"] == [f"file {link}", f"dir {folder}"]


def test_pending_applies_of_the_role_are_reported(dirs):
    module("converged", {"state": "record", "roles": ["ssh_access"], "digest": "d", **dirs})
    Path(dirs["pending_dir"]).mkdir()
    (Path(dirs["pending_dir"]) / "hardening-sshd").write_text("x\n")  # another role's
    assert check(dirs, "ssh_access")["pending"] == []
    (Path(dirs["pending_dir"]) / "ssh-access-sshd").write_text("x\n")
    assert check(dirs, "ssh_access")["pending"] == ["ssh-access-sshd"]


def test_begin_removes_the_record_and_the_ledger(tmp_path, dirs):
    module("config_files", {"ledger": "demo", "ledger_dir": dirs["state_dir"],
                            "files": [{"path": str(tmp_path / "f"), "content": "x\n"}]})
    module("converged", {"state": "record", "roles": ["demo"], "digest": "d", **dirs})
    assert module("converged", {"state": "begin", "roles": ["demo"], **dirs})["changed"] is False
    assert os.listdir(dirs["state_dir"]) == []
    assert check(dirs) == {"digest": "", "pending": [], "drift": ["no record of a successful run"]}


def test_check_mode_writes_nothing(tmp_path, dirs):
    module("config_files", {"ledger": "demo", "ledger_dir": dirs["state_dir"],
                            "files": [{"path": str(tmp_path / "f"), "content": "x\n"}]}, "--check")
    module("converged", {"state": "record", "roles": ["demo"], "digest": "d", **dirs}, "--check")
    assert not Path(dirs["state_dir"]).exists()


def test_a_role_name_is_never_a_path(dirs):
    result = module("converged", {"roles": ["../etc"], **dirs})
    assert result.get("failed") is True


def test_skip_needs_a_whole_role_run_the_same_digest_and_no_drift():
    clean = {"digest": "d", "pending": [], "drift": []}
    assert converged_skip(clean, "d", "hardening", ["all"], []) is True
    assert converged_skip(clean, "other", "hardening", ["all"], []) is False
    assert converged_skip({**clean, "digest": ""}, "", "hardening", ["all"], []) is False
    assert converged_skip({**clean, "pending": ["hardening-sshd"]}, "d", "hardening", ["all"], []) is False
    assert converged_skip({**clean, "drift": ["file /etc/ssh/sshd_config"]}, "d", "hardening", ["all"], []) is False
    assert converged_skip(clean, "d", "hardening", ["hardening_ssh"], []) is False  # a tagged run does its topic
    assert converged_skip(clean, "d", "hardening", ["all"], ["hardening_firewall"]) is False
    assert converged_skip(clean, "d", "hardening", ["all"], ["tensorflow", "jupyter"]) is True
    assert converged_whole_role("base", ("all",), ()) is True  # Ansible passes tuples
    assert converged_whole_role("base", ["all"], ["base_packages"]) is False
    assert converged_plan({"base": clean}, ["base", "autostop"], ["d", "d"], ["all"], []) == {"base": True, "autostop": False}


def test_a_role_is_selected_by_its_name_or_topic_tags_only():
    per_instance = ["ssh_access", "jupyter_services", "hardening_ssh", "base_time", "autostop"]
    assert [role for role in ("base", "hardening", "ssh_access", "nvidia_driver", "tensorflow", "jupyter", "autostop")
            if converged_selected(role, per_instance, [])] == ["base", "hardening", "ssh_access", "jupyter", "autostop"]
    assert converged_selected("tensorflow", ("all",), ()) is True
    assert converged_selected("tensorflow", ["tagged"], []) is True
    assert converged_selected("tensorflow", ["all"], ["tensorflow"]) is False
    assert converged_selected("tensorflow", ["all"], ["tensorflow_smoke"]) is True  # the rest of the role runs
    assert converged_selected("base", ["base_time"], []) is True
    assert converged_selected("base", ["baseline"], []) is False  # a prefix of another word is not the role's topic


def test_a_roles_digest_follows_its_files_but_not_its_documentation(tmp_path):
    from ansible_collections.gpubox.workstation.plugins.lookup.role_digest import content_digest

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "main.yml").write_text("a")
    first = content_digest([str(tmp_path)])
    (tmp_path / "README.md").write_text("documentation changes no host")
    assert content_digest([str(tmp_path)]) == first
    (tmp_path / "tasks" / "main.yml").write_text("b")
    assert content_digest([str(tmp_path)]) != first
