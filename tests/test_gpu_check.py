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
