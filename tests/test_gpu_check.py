"""scripts/gpu-check, the GPU proof kit: on this machine (no GPU) it says so cleanly; on a recorded
sysfs tree with a recorded nvidia-smi it runs gpubox's own detection, module choice, nvidia-smi
parsing and autostop sampler, and reports what fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT

KIT = PROJECT / "scripts" / "gpu-check"


def kit(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    result = subprocess.run([sys.executable, str(KIT), "--json", *args], capture_output=True, text=True, timeout=120,
                            check=False, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def statuses(report: dict) -> dict[str, str]:
    return {check["name"]: check["status"] for check in report["checks"]}


def test_no_gpu_here_is_reported_cleanly():
    code, report, _ = kit()
    assert code == 0 and report["nvidia_gpu"] is False
    assert set(statuses(report).values()) == {"not-possible"}
    [pci] = [check for check in report["checks"] if check["name"] == "pci"]
    assert "no NVIDIA GPU" in pci["detail"]
    summary = subprocess.run([sys.executable, str(KIT)], capture_output=True, text=True, timeout=120, check=False)
    assert summary.returncode == 0 and summary.stdout.startswith("No NVIDIA GPU on this machine")


def fake_gpu(root: Path, address: str, device: str) -> None:
    directory = root / address
    directory.mkdir(parents=True)
    for name, value in (("vendor", "0x10de"), ("class", "0x030200"), ("device", device)):
        (directory / name).write_text(value + "\n")


def test_a_gpu_without_driver_fails_with_reasons(tmp_path):
    fake_gpu(tmp_path / "pci", "0000:00:1e.0", "0x1eb8")  # a T4
    fake_gpu(tmp_path / "pci", "0000:00:1f.0", "0x2335")  # an H200
    env = dict(os.environ, PATH="/usr/bin:/bin")  # no nvidia-smi, no lspci names needed
    code, report, _ = kit("--pci-root", str(tmp_path / "pci"), env=env)
    found = statuses(report)
    assert code == 1 and report["nvidia_gpu"] is True
    assert found["pci"] == "pass" and found["kernel_module_choice"] == "pass"
    choice = next(check for check in report["checks"] if check["name"] == "kernel_module_choice")
    # A Turing card beside a Hopper one: the proprietary module, which both run.
    assert choice["data"] == {"generations": ["hopper", "turing"], "choice": "proprietary"}
    assert found["loaded_driver"] == "fail" and found["nvidia_smi"] == "fail"
    idle = next(check for check in report["checks"] if check["name"] == "autostop_idle")
    assert idle["status"] == "fail" and "nvidia-smi is not installed" in idle["detail"]


def test_recorded_nvidia_smi_is_parsed_and_the_idle_gpu_is_not_busy(tmp_path):
    fake_gpu(tmp_path / "pci", "0000:00:1e.0", "0x2335")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text('#!/bin/sh\ncase "$*" in\n  *utilization.gpu*) echo 0 ;;\n'
                   '  *) echo "NVIDIA H200, 570.86.15, 143771 MiB" ;;\nesac\n')
    smi.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    code, report, _ = kit("--pci-root", str(tmp_path / "pci"), env=env)
    found = statuses(report)
    assert found["nvidia_smi"] == "pass", report
    smi_check = next(check for check in report["checks"] if check["name"] == "nvidia_smi")
    assert smi_check["data"]["gpus"] == [{"name": "NVIDIA H200", "driver_version": "570.86.15", "memory": "143771 MiB"}]
    idle = next(check for check in report["checks"] if check["name"] == "autostop_idle")
    assert idle["status"] == "pass" and "not busy" in idle["detail"]
    assert found["loaded_driver"] == "fail"  # no kernel module here: the kit says so, exit 1
    assert code == 1


# A stand-in for torch in a workstation's PyTorch virtualenv: enough of its API for the pytorch
# role's smoke test (devices, tensors, @), on plain lists, seeing `GPUS` CUDA devices. The kit's
# plumbing is under test here, not PyTorch (the jupyter scenario runs the real one).
FAKE_TORCH = '''
import types
__version__ = "9.9.9+fake"
GPUS = {gpus}
class T:
    def __init__(self, rows): self.rows = rows
    def __matmul__(self, other):
        return T([[sum(a * b for a, b in zip(row, col)) for col in zip(*other.rows)] for row in self.rows])
    def __eq__(self, value): return T([[cell == value for cell in row] for row in self.rows])
    def all(self): return types.SimpleNamespace(item=lambda: all(all(row) for row in self.rows))
    def sum(self): return types.SimpleNamespace(item=lambda: sum(map(sum, self.rows)))
    def cpu(self): return self
    def tolist(self): return self.rows
def device(name): return name
def tensor(rows, device=None): return T(rows)
def ones(shape, device=None): return T([[1.0] * shape[1] for _ in range(shape[0])])
def full(shape, value, device=None): return T([[value] * shape[1] for _ in range(shape[0])])
cuda = types.SimpleNamespace(is_available=lambda: GPUS > 0, device_count=lambda: GPUS, get_device_name=lambda i: "Fake H200",
                             synchronize=lambda: None)
version = types.SimpleNamespace(cuda="13.2")
backends = types.SimpleNamespace(cudnn=types.SimpleNamespace(is_available=lambda: True, version=lambda: 92600),
                                 cuda=types.SimpleNamespace(preferred_blas_library=lambda: "_BlasBackend.Cublas"))
'''


def fake_pytorch_venv(root: Path, gpus: int) -> None:
    """root/opt/gpubox/pytorch: a virtualenv of this Python with the stand-in torch."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "opt/gpubox/pytorch")], check=True, timeout=120)
    [site] = (root / "opt/gpubox/pytorch/lib").glob("python3*/site-packages")
    (site / "torch.py").write_text(FAKE_TORCH.format(gpus=gpus))


def test_each_installed_framework_reports_its_devices_and_matmul(tmp_path):
    fake_gpu(tmp_path / "pci", "0000:00:1e.0", "0x2335")
    fake_pytorch_venv(tmp_path / "root", gpus=1)
    env = dict(os.environ, PATH="/usr/bin:/bin")
    _, report, _ = kit("--pci-root", str(tmp_path / "pci"), "--venv-root", str(tmp_path / "root"), "--matmul-size", "8", env=env)
    pytorch = next(check for check in report["checks"] if check["name"] == "pytorch")
    assert pytorch["status"] == "pass", pytorch
    assert pytorch["data"]["version"] == "9.9.9+fake" and pytorch["data"]["devices"] == ["Fake H200"]
    assert pytorch["data"]["python"] == str(tmp_path / "root/opt/gpubox/pytorch/bin/python")
    assert pytorch["data"]["matmul_seconds"] >= 0 and "8x8 matmul on cuda:0" in pytorch["detail"]
    tensorflow = next(check for check in report["checks"] if check["name"] == "tensorflow")
    assert tensorflow["status"] == "not-possible" and "not installed" in tensorflow["detail"]


def test_a_framework_that_sees_no_gpu_fails(tmp_path):
    fake_gpu(tmp_path / "pci", "0000:00:1e.0", "0x2335")
    fake_pytorch_venv(tmp_path / "root", gpus=0)
    env = dict(os.environ, PATH="/usr/bin:/bin")
    code, report, _ = kit("--pci-root", str(tmp_path / "pci"), "--venv-root", str(tmp_path / "root"), "--matmul-size", "8", env=env)
    pytorch = next(check for check in report["checks"] if check["name"] == "pytorch")
    assert code == 1 and pytorch["status"] == "fail"
    assert "sees 0 GPU(s)" in pytorch["detail"] and "sees no GPU" in pytorch["detail"]
