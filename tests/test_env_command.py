"""`runner.py env`: bad input stops before anything runs; the remote helper (run here as this
account, HOME in a temporary directory, as it runs as the data scientist on a workstation)
creates an environment and its kernel all or nothing, lists and removes them. The real thing as
alice on a workstation, with --from pytorch, is molecule/jupyter/tests/test_env.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpubox.commands import env
from gpubox.errors import GpuboxError

needs_system_python = pytest.mark.skipif(not os.access("/usr/bin/python3", os.X_OK), reason="no /usr/bin/python3")


def helper(home: Path, request: dict) -> tuple[int, dict]:
    # As runner.py runs it: the program (with its request) on stdin, nothing on the command line.
    result = subprocess.run([sys.executable, "-"], input=env.remote_program(request), capture_output=True, text=True, timeout=900,
                            check=False, env=dict(os.environ, HOME=str(home), GPUBOX_INSTALLER="pip"))
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("name", "python", "framework", "message"), [
    ("Bad Name", None, None, "Environment name 'Bad Name' is not allowed."),
    ("../x", None, None, "Environment name '../x' is not allowed."),
    ("ok", "3", None, "--python 3 is not a Python version."),
])
def test_bad_input_is_refused_before_anything_runs(name, python, framework, message):
    with pytest.raises(GpuboxError, match=message.replace(".", r"\.").replace("(", r"\(")):
        env.create_request(name, None, python, framework)


def test_a_missing_requirements_file_is_named(tmp_path):
    with pytest.raises(GpuboxError, match="Cannot read the requirements file"):
        env.create_request("ok", tmp_path / "absent.txt", None, None)


def test_the_request_never_travels_on_the_command_line(tmp_path):
    """Every account on the workstation can read a process's command line (ps): the requirements,
    which may hold an index URL with a token, travel inside the program on stdin."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--extra-index-url https://user:s3cr3t-token@pypi.example/simple\ntabulate==0.9.0\n")
    request = env.create_request("ok", requirements, None, "pytorch")
    argv = env.remote_argv(["ssh", "gpubox-x"])
    assert argv == ["ssh", "gpubox-x", "/usr/bin/python3 -"]
    program = env.remote_program(request)
    assert "s3cr3t-token" in program and program.index("REQUEST = ") < program.rindex('if __name__ == "__main__":')


@needs_system_python
def test_a_missing_package_fails_naming_it_and_leaves_nothing(tmp_path):
    code, answer = helper(tmp_path, {"action": "create", "name": "broken", "from": "", "python": "",
                                     "requirements": "gpubox-no-such-package-7c1e==1.0\n"})
    assert code == 1 and answer["ok"] is False
    assert "gpubox-no-such-package-7c1e" in answer["error"], answer
    assert not list((tmp_path / ".local/share/gpubox/envs").iterdir())  # not even the temporary build
    assert not (tmp_path / ".local/share/jupyter/kernels/gpubox-env-broken").exists()


@needs_system_python
def test_create_list_remove(tmp_path):
    code, answer = helper(tmp_path, {"action": "create", "name": "plain", "from": "", "python": "",
                                     "requirements": "six==1.17.0\n"})
    assert code == 0 and answer["ok"], answer
    env_python = tmp_path / ".local/share/gpubox/envs/plain/bin/python"
    imported = subprocess.run([str(env_python), "-c", "import six, ipykernel; print(six.__version__)"], capture_output=True, text=True,
                              timeout=120, check=False)
    assert imported.stdout.strip() == "1.17.0", imported.stderr
    spec = json.loads((tmp_path / ".local/share/jupyter/kernels/gpubox-env-plain/kernel.json").read_text())
    assert spec["argv"][0] == str(env_python) and spec["display_name"] == "Python 3 (plain)"
    again, refused = helper(tmp_path, {"action": "create", "name": "plain", "from": "", "python": "", "requirements": ""})
    assert again == 1 and "already have an environment named 'plain'" in refused["error"]
    _, listed = helper(tmp_path, {"action": "list"})
    assert [(item["name"], item["kernel"]) for item in listed["envs"]] == [("plain", "Python 3 (plain)")]
    assert listed["envs"][0]["bytes"] > 0
    code, _ = helper(tmp_path, {"action": "remove", "name": "plain"})
    assert code == 0
    assert not (tmp_path / ".local/share/gpubox/envs/plain").exists()
    assert not (tmp_path / ".local/share/jupyter/kernels/gpubox-env-plain").exists()


def test_list_sweeps_only_builds_older_than_any_create(tmp_path):
    """A killed build is swept; one a create beside this list may still be filling is not."""
    envs = tmp_path / ".local/share/gpubox/envs"
    old, fresh = envs / ".old.building-1", envs / ".fresh.building-2"
    for build in (old, fresh):
        build.mkdir(parents=True)
    os.utime(old, (1, 1))
    code, answer = helper(tmp_path, {"action": "list"})
    assert code == 0 and answer["ok"], answer
    assert not old.exists() and fresh.is_dir()


@needs_system_python
def test_pip_installs_where_uv_fails_and_uv_is_asked_with_the_system_ca_store(tmp_path):
    """uv reads no pip.conf: behind a TLS-inspecting proxy it needs the system store (UV_SYSTEM_CERTS),
    and where it still fails (a proxy only pip.conf names), pip does the install."""
    tools = tmp_path / "tools"
    tools.mkdir()
    calls = tmp_path / "uv-calls"
    (tools / "uv").write_text(f"#!/bin/sh\necho \"$* system-certs=$UV_SYSTEM_CERTS\" >> {calls}\n"
                              "echo 'error: invalid peer certificate: UnknownIssuer' >&2\nexit 2\n")
    (tools / "uv").chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run([sys.executable, "-"], input=env.remote_program({"action": "create", "name": "viapip", "from": "", "python": "",
                                                                               "requirements": "six==1.17.0\n"}),
                            capture_output=True, text=True, timeout=900, check=False,
                            env=dict(os.environ, HOME=str(home), PATH=f"{tools}:{os.environ['PATH']}", GPUBOX_INSTALLER="auto"))
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and answer["ok"], (answer, result.stderr)
    [asked] = calls.read_text().splitlines()
    assert asked.startswith("pip install --python ") and asked.endswith(" system-certs=1"), asked
    imported = subprocess.run([str(home / ".local/share/gpubox/envs/viapip/bin/python"), "-c", "import six; print(six.__version__)"],
                              capture_output=True, text=True, timeout=120, check=False)
    assert imported.stdout.strip() == "1.17.0", imported.stderr
