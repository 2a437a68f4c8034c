"""Framework choice: which PyTorch release fits a host, and which kernel specs the launcher gets."""

from __future__ import annotations

import json

import pytest
from ansible_collections.gpubox.workstation.plugins.filter.frameworks import pytorch_release
from ansible_collections.gpubox.workstation.plugins.filter.jupyter import jupyter_kernel_files, jupyter_kernels_needing_pip

from test_contract import role_variables

RELEASES = role_variables("pytorch")["pytorch_releases"]
KERNELS = [{"framework": "tensorflow", "name": "gpubox-tensorflow", "display_name": "Python 3 (TensorFlow)", "venv": "/opt/gpubox/venv"},
           {"framework": "pytorch", "name": "gpubox-pytorch", "display_name": "Python 3 (PyTorch)", "venv": "/opt/gpubox/pytorch"}]
LAUNCHER = "/usr/local/lib/gpubox/jupyter_kernel.py"


@pytest.mark.parametrize(("python", "driver", "expected"), [
    ("3.11", "", "2.15.0"),              # CPU host (or driver not loaded yet): the newest
    ("3.13", "580.95.05", "2.15.0"),     # a CUDA 13 driver runs the newest
    ("3.11", "570.172.08", "2.10.0"),    # a CUDA 12.8 driver: the newest CUDA 12 build on PyPI
    ("3.10", "", "2.14.1"),              # 2.15.0 has no wheels for 3.10 (Ubuntu 22.04)
    ("3.11", "470.256.02", ""),          # older than every floor: validate names the fix
])
def test_auto_picks_the_newest_release_the_driver_and_python_run(python, driver, expected):
    assert pytorch_release("auto", RELEASES, python, driver) == expected


def test_a_named_release_is_kept_for_validate_to_judge():
    assert pytorch_release("2.9.1", RELEASES, "3.11", "470.256.02") == "2.9.1"


def test_every_release_names_its_cuda_floor():
    for version, needs in RELEASES.items():
        major = needs["cuda"].split(".")[0]
        assert needs["driver_min"] == {"12": "525.60.13", "13": "580.65.06"}[major], version


def test_the_launcher_gets_exactly_the_chosen_frameworks():
    both = jupyter_kernel_files(KERNELS, ["tensorflow", "pytorch"], LAUNCHER)
    assert [json.loads(spec["content"])["display_name"] for spec in both] == ["Python 3 (TensorFlow)", "Python 3 (PyTorch)"]
    default = jupyter_kernel_files(KERNELS, ["tensorflow"], LAUNCHER)
    assert default[1] == {"path": "/usr/local/share/jupyter/kernels/gpubox-pytorch/kernel.json", "state": "absent"}
    spec = json.loads(default[0]["content"])
    assert spec["argv"][0] == "/opt/gpubox/venv/bin/python" and spec["metadata"] == {"debugger": False}


def test_ipykernel_goes_only_where_it_is_missing_or_another_version():
    installed = {"/opt/gpubox/venv": {"ipykernel": "7.4.0"}, "/opt/gpubox/pytorch": {"torch": "2.15.0"}}
    assert jupyter_kernels_needing_pip(KERNELS, installed, "7.4.0") == ["/opt/gpubox/pytorch"]
    assert jupyter_kernels_needing_pip(KERNELS, {"/opt/gpubox/venv": None}, "7.4.0") == ["/opt/gpubox/venv", "/opt/gpubox/pytorch"]


def test_provision_framework_reaches_the_roles_input():
    from gpubox import cli
    from gpubox.commands import env, provision

    args = cli.build_parser().parse_args(["provision", "--local", "--framework", "pytorch", "--framework", "tensorflow"])
    target = provision.Target(local=True, frameworks=args.frameworks)
    assert provision._extravars(target, trust_local_cas=False)["gpubox_frameworks"] == ["tensorflow", "pytorch"]
    default = cli.build_parser().parse_args(["provision", "--local"])
    assert "gpubox_frameworks" not in provision._extravars(provision.Target(local=True, frameworks=default.frameworks), trust_local_cas=False)
    # A baked image holds TensorFlow only: adding PyTorch runs its role and the kernels' step too.
    assert env.image_tags("ssh_access,autostop", ["tensorflow", "pytorch"]) == "ssh_access,autostop,tensorflow,pytorch,jupyter_install"
    assert env.image_tags("ssh_access,autostop", None) == "ssh_access,autostop"
    assert env.image_tags(None, ["pytorch"]) is None  # a full run already runs every role


def _install_command_run(tmp_path, uv_exit: int | None) -> list[str]:
    """The pytorch role's install command with stand-ins: a uv that exits `uv_exit` (None: no uv at
    all) and a Python that records how pip was called."""
    import subprocess

    command = role_variables("pytorch")["pytorch_install_command"]
    calls = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\necho \"python $*\" >> {calls}\n")
    python.chmod(0o755)
    uv = tmp_path / "uv"
    if uv_exit is not None:
        uv.write_text(f"#!/bin/sh\necho \"uv $*\" >> {calls}\nexit {uv_exit}\n")
        uv.chmod(0o755)
    result = subprocess.run([*command, str(python), str(uv), "torch==2.15.0"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return calls.read_text().splitlines()


def test_uv_installs_and_pip_is_not_called(tmp_path):
    calls = _install_command_run(tmp_path, uv_exit=0)
    assert len(calls) == 1 and calls[0].startswith("uv pip install --no-config --python ") and "--native-tls" in calls[0], calls


def test_root_installs_from_the_root_directory_and_uv_reads_no_project_config(tmp_path):
    """A uv.toml (or pyproject.toml) where root runs from could name another index: uv reads none,
    and the command leaves the working directory it was given."""
    import subprocess

    command = role_variables("pytorch")["pytorch_install_command"]
    planted = tmp_path / "writable"
    planted.mkdir()
    (planted / "uv.toml").write_text('index-url = "https://evil.example/simple"\n')
    where = tmp_path / "where"
    uv = tmp_path / "uv"
    uv.write_text(f"#!/bin/sh\npwd > {where}\n")
    uv.chmod(0o755)
    result = subprocess.run([*command, "/nonexistent/python", str(uv), "torch"], cwd=planted, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert where.read_text().strip() == "/"


def test_pip_does_the_install_where_uv_fails_or_is_missing(tmp_path):
    pip = "python -m pip install --disable-pip-version-check --no-input --quiet torch==2.15.0"
    (tmp_path / "failed").mkdir()
    failed = _install_command_run(tmp_path / "failed", uv_exit=2)
    assert failed[0].startswith("uv ") and failed[1:] == [pip], failed
    (tmp_path / "missing").mkdir()
    assert _install_command_run(tmp_path / "missing", uv_exit=None) == [pip]
