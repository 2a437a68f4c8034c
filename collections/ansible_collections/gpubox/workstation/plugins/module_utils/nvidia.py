# Copyright: gpubox
# Apache-2.0
"""NVIDIA GPUs by PCI device ID (generation, model, which kernel module they need) and what
nvidia-smi reports. Standard library only: the nvidia_driver facts module and filters use it, and
so does scripts/gpu-check on a GPU machine without Ansible."""

from __future__ import annotations

import re
import subprocess

# PCI device ID ranges of NVIDIA data-centre GPU generations (vendor 10de). The open kernel
# module supports Turing and newer; NVIDIA recommends it from Ada/Hopper on, and Blackwell
# requires it. Older parts (K80, M60, V100) only run on the proprietary module.
GENERATIONS: tuple[tuple[int, int, str], ...] = (
    (0x0FC0, 0x133F, "kepler"),
    (0x1340, 0x17FF, "maxwell"),
    (0x1B00, 0x1D7F, "pascal"),
    (0x1D80, 0x1DFF, "volta"),
    (0x1E00, 0x1FFF, "turing"),
    (0x2080, 0x20FF, "ampere"),
    (0x2100, 0x21FF, "turing"),
    (0x2200, 0x22FF, "ampere"),
    (0x2300, 0x233F, "hopper"),
    (0x2340, 0x23FF, "hopper"),
    (0x2400, 0x25FF, "ampere"),
    (0x2600, 0x28FF, "ada"),
    (0x2900, 0x2FFF, "blackwell"),
)
OPEN_CAPABLE = {"turing", "ampere", "ada", "hopper", "blackwell"}
OPEN_PREFERRED = {"ada", "hopper", "blackwell"}
# Names for the GPUs EC2 offers, for hosts without lspci's ID database.
KNOWN_MODELS = {
    0x102D: "Tesla K80", 0x13F2: "Tesla M60", 0x1DB1: "Tesla V100-SXM2-16GB", 0x1DB5: "Tesla V100-SXM2-32GB",
    0x1EB8: "Tesla T4", 0x1EB4: "Tesla T4G", 0x2237: "A10G", 0x2236: "A10", 0x20B0: "A100-SXM4-40GB",
    0x20B2: "A100-SXM4-80GB", 0x27B8: "L4", 0x26B9: "L40S", 0x2330: "H100-SXM5-80GB", 0x2335: "H200",
    0x2901: "B200",
}
def gpu_generation(device_id: str | int) -> str:
    """Generation of an NVIDIA GPU from its PCI device ID ('0x1eb8', '1eb8' or an int)."""
    number = device_id if isinstance(device_id, int) else int(str(device_id), 16)
    for low, high, generation in GENERATIONS:
        if low <= number <= high:
            return generation
    return "unknown"


def gpu_model(device_id: str | int) -> str:
    number = device_id if isinstance(device_id, int) else int(str(device_id), 16)
    return KNOWN_MODELS.get(number, f"NVIDIA device {number:04x}")


def describe_gpus(gpus: list[dict]) -> list[dict]:
    """Each GPU with its generation and a model name (lspci's when it had one)."""
    return [dict(gpu, generation=gpu_generation(gpu["device_id"]),
                 model=gpu.get("name") or gpu_model(gpu["device_id"])) for gpu in gpus]


def kernel_module(gpus: list[dict], choice: str = "auto") -> str:
    """'open' or 'proprietary' for these GPUs; choice 'auto' decides by the oldest GPU present."""
    generations = [gpu_generation(gpu["device_id"]) for gpu in gpus]
    if choice == "open":
        too_old = sorted({g for g in generations if g not in OPEN_CAPABLE})
        if too_old:
            raise ValueError(
                f"nvidia_driver_kernel_module is 'open' but this host has {', '.join(too_old)} GPUs, which only "
                "the proprietary module supports. Set nvidia_driver_kernel_module: auto (or proprietary).")
        return "open"
    if choice == "proprietary":
        if "blackwell" in generations:
            raise ValueError(
                "nvidia_driver_kernel_module is 'proprietary' but Blackwell GPUs need the open module. "
                "Set nvidia_driver_kernel_module: auto (or open).")
        return "proprietary"
    if choice != "auto":
        raise ValueError(f"nvidia_driver_kernel_module must be auto, open or proprietary, not {choice!r}")
    if generations and all(g in OPEN_PREFERRED for g in generations):
        return "open"
    return "proprietary"


def version_at_least(version: str, minimum: str) -> bool:
    """'535.261.03' >= '535.0'? Compares numerically, component by component."""
    def parts(text: str) -> list[int]:
        return [int(piece) for piece in re.findall(r"\d+", str(text))] or [0]
    if not version:
        return False
    return parts(version) >= parts(minimum)


def nvidia_smi() -> dict:
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        return {"present": False, "ok": False, "message": "nvidia-smi is not installed", "gpus": []}
    except subprocess.TimeoutExpired:
        return {"present": True, "ok": False, "message": "nvidia-smi did not answer within 60 s", "gpus": []}
    rows = [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines() if line.strip()]
    message = (result.stderr.strip() or result.stdout.strip()) if result.returncode else ""
    return {"present": True, "ok": result.returncode == 0, "message": message,
            "gpus": [{"name": row[0], "driver_version": row[1], "memory": row[2]} for row in rows if len(row) >= 3]}
