"""gpubox.workstation.pip_install, the one installer of the framework and Jupyter environments:
uv where it runs (installed first, pinned, in its own virtualenv), pip where uv cannot be installed
or fails, always from / under umask 022, and uv reading no project configuration. Run through
Ansible itself, with stand-ins for uv and the environment's Python that record how they were
called (the real installs run in the molecule scenarios' converges)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import PROJECT, VENV_BIN, run_env

PIN = "0.13.9"
PIP = "-m pip install --disable-pip-version-check --no-input --quiet tensorflow-cpu==2.20.0"
TAIL = "umask=0022 cwd=/"


def stand_in(path: Path, calls: Path, body: str = "exit 0") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho \"{path.name} $* umask=$(umask) cwd=$(pwd) uv_config=${{UV_CONFIG_FILE:-}}\" >> {calls}\n{body}\n")
    path.chmod(0o755)


def run_module(tmp_path: Path, installer: str = "auto", cwd: Path | None = None,
               extra_env: dict[str, str] | None = None) -> tuple[dict, list[str]]:
    args = {"python": str(tmp_path / "venv" / "bin" / "python"), "requirements": ["tensorflow-cpu==2.20.0"],
            "installer": installer, "uv_version": PIN, "tools_dir": str(tmp_path / "tools")}
    # A strict umask (a hardened root's is 027): the module must install under 022 whatever it inherits.
    # A UV_CONFIG_FILE in root's environment must not reach uv.
    env = run_env() | {"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
                       "UV_CONFIG_FILE": "/tmp/planted-uv.toml", **(extra_env or {})}
    result = subprocess.run([str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-m", "gpubox.workstation.pip_install",
                             "-a", json.dumps(args)], cwd=cwd or PROJECT, env=env, umask=0o077,
                            capture_output=True, text=True, timeout=120, check=False)
    output = result.stdout.split("=>", 1)[-1].strip()
    outcome = json.loads(output) if output.startswith("{") else {"unparsed": result.stdout + result.stderr}
    outcome["failed"] = result.returncode != 0 and "| FAILED!" in result.stdout
    outcome["shown"] = " ".join(result.stderr.split())
    calls = tmp_path / "calls"
    return outcome, calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture
def venv(tmp_path):
    stand_in(tmp_path / "venv" / "bin" / "python", tmp_path / "calls")
    return tmp_path


def uv(tmp_path: Path, exit_code: int = 0, version: str = PIN) -> None:
    stand_in(tmp_path / "tools" / "bin" / "uv", tmp_path / "calls",
             f'[ "$1" = --version ] && {{ echo "uv {version} (0123abc 2026-11-30)"; exit 0; }}\nexit {exit_code}')


def test_uv_installs_from_the_root_directory_reading_no_project_config(venv, tmp_path):
    uv(tmp_path)
    planted = tmp_path / "writable"
    planted.mkdir()
    (planted / "uv.toml").write_text('index-url = "https://evil.example/simple"\n')
    outcome, calls = run_module(tmp_path, cwd=planted)
    assert outcome["changed"] is True and not outcome["failed"] and outcome["installer"] == "uv" and outcome["notes"] == [], outcome
    [install] = [call for call in calls if not call.startswith("uv --version")]
    python = tmp_path / "venv" / "bin" / "python"
    assert install == (f"uv pip install --no-config --python {python} --system-certs --no-cache --compile-bytecode --quiet "
                       f"tensorflow-cpu==2.20.0 {TAIL} uv_config="), install


def test_pip_installs_where_uv_fails_and_says_why(venv, tmp_path):
    uv(tmp_path, exit_code=2)
    outcome, calls = run_module(tmp_path)
    assert outcome["installer"] == "pip" and outcome["notes"][0].startswith("uv failed, pip installs instead"), outcome
    assert calls[-1] == f"python {PIP} {TAIL} uv_config=/tmp/planted-uv.toml", calls


def test_uv_is_installed_first_when_missing_or_another_version_and_pip_installs_where_it_cannot_be(venv, tmp_path):
    uv(tmp_path, version="0.1.0")
    # uv's own virtualenv exists (its Python runs); its pip cannot install uv (no wheel, no index).
    stand_in(tmp_path / "tools" / "bin" / "python", tmp_path / "calls", '[ "$1" = -c ] && exit 0\nexit 1')
    outcome, calls = run_module(tmp_path)
    assert any(call.startswith(f"python -m pip install --disable-pip-version-check --no-input --quiet --force-reinstall uv=={PIN}") for call in calls), calls
    assert outcome["installer"] == "pip" and outcome["notes"][0].startswith(f"uv {PIN} could not be installed"), outcome
    assert calls[-1] == f"python {PIP} {TAIL} uv_config=/tmp/planted-uv.toml", calls


def test_a_host_without_uv_gets_its_virtualenv_made_and_pip_where_uv_cannot_come(venv, tmp_path):
    """A fresh host: no tools virtualenv at all. The module makes it (a real `python3 -m venv`),
    and where no index serves uv (here: pip told to use none) pip installs instead."""
    outcome, calls = run_module(tmp_path, extra_env={"PIP_NO_INDEX": "1"})
    assert not outcome["failed"] and outcome["installer"] == "pip", outcome
    assert outcome["notes"][0].startswith(f"uv {PIN} could not be installed"), outcome
    assert (tmp_path / "tools" / "bin" / "python").exists()
    assert calls[-1].startswith(f"python {PIP} {TAIL}"), calls


def test_a_broken_uv_is_reinstalled_and_a_fallback_is_a_warning(venv, tmp_path):
    stand_in(tmp_path / "tools" / "bin" / "uv", tmp_path / "calls", "exit 1")  # not even --version runs
    stand_in(tmp_path / "tools" / "bin" / "python", tmp_path / "calls")  # its pip "installs" nothing that helps
    outcome, calls = run_module(tmp_path)
    assert any(call.startswith(f"python -m pip install --disable-pip-version-check --no-input --quiet --force-reinstall uv=={PIN}")
               for call in calls), calls
    assert outcome["installer"] == "pip" and outcome["notes"] == [f"uv {PIN} was installed in {tmp_path / 'tools'} but does not run as uv {PIN}"]
    assert f"[WARNING]: uv {PIN} was installed in" in outcome["shown"], outcome


def test_installer_pip_never_runs_uv(venv, tmp_path):
    uv(tmp_path)
    outcome, calls = run_module(tmp_path, installer="pip")
    assert outcome["installer"] == "pip" and calls == [f"python {PIP} {TAIL} uv_config=/tmp/planted-uv.toml"], (outcome, calls)


def test_a_failed_install_fails_the_task_with_pips_words(tmp_path):
    stand_in(tmp_path / "venv" / "bin" / "python", tmp_path / "calls",
             'echo "ERROR: No matching distribution found for tensorflow-cpu==2.20.0" >&2; exit 1')
    outcome, _ = run_module(tmp_path, installer="pip")
    assert outcome["failed"], outcome
    assert "No matching distribution found for tensorflow-cpu==2.20.0" in outcome["msg"], outcome


def test_a_missing_virtualenv_is_named(tmp_path):
    outcome, calls = run_module(tmp_path)
    assert outcome["failed"] and "is not a virtualenv's Python" in outcome["msg"] and calls == [], outcome
    assert not (tmp_path / "tools").exists()


def test_every_role_installs_through_the_module():
    """No role calls pip or uv for an environment's requirements any other way."""
    for role in ("tensorflow", "pytorch", "jupyter"):
        tasks = (PROJECT / "roles" / role / "tasks" / "install.yml").read_text()
        assert "gpubox.workstation.pip_install:" in tasks and f"installer: \"{{{{ {role}_installer }}}}\"" in tasks, role
        assert "--quiet" not in tasks or role == "tensorflow", role  # tensorflow's build switch keeps pip's --force-reinstall
    assert os.path.exists(PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation" / "plugins" / "modules" / "pip_install.py")
