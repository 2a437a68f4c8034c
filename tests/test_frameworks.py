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


