# Copyright: gpubox
# Apache-2.0
"""NVIDIA GPUs on the PCI bus and the loaded NVIDIA kernel module, from sysfs and procfs."""

from __future__ import annotations

import glob
import os
import subprocess

from ansible_collections.gpubox.workstation.plugins.module_utils.host import read_text, run

PCI_DEVICES = "/sys/bus/pci/devices"
NVIDIA_VENDOR = "0x10de"
# VGA compatible controller and 3D controller (data-centre GPUs have no display).
GPU_CLASSES = ("0x0300", "0x0302")


def _gpu_class(device: str) -> str:
    """The device's class when it is an NVIDIA GPU, else ""."""
    if read_text(os.path.join(device, "vendor")) != NVIDIA_VENDOR:
        return ""
    device_class = read_text(os.path.join(device, "class"))[:6]
    return device_class if device_class in GPU_CLASSES else ""


def lspci_name(address: str) -> str:
    """The model name lspci knows for a PCI address, "" without lspci or a name."""
    try:
        code, out = run("lspci", "-mm", "-s", address, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    # -mm prints quoted fields: slot "class" "vendor" "device" ...
    fields = out.split('"')
    return fields[5] if code == 0 and len(fields) > 5 else ""


def gpus(root: str = PCI_DEVICES, names: bool = True) -> list[dict]:
    """Address, device ID, class and (with names) model of every NVIDIA GPU, in bus order."""
    found = []
    for device in sorted(glob.glob(os.path.join(root, "*"))):
        device_class = _gpu_class(device)
        if device_class:
            address = os.path.basename(device)
            found.append({"address": address, "device_id": read_text(os.path.join(device, "device")),
                          "class": device_class, "name": lspci_name(address) if names else ""})
    return found


def gpu_count(root: str = PCI_DEVICES) -> int:
    """How many NVIDIA GPUs the bus has (no lspci, so it is cheap)."""
    return len(gpus(root, names=False))


def loaded_driver_version() -> str:
    """Version of the loaded nvidia kernel module, "" when none is loaded."""
    version = read_text("/sys/module/nvidia/version")
    if version:
        return version
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Sat ..."
    words = read_text("/proc/driver/nvidia/version").split("Kernel Module", 1)[-1].split()
    return words[0] if words and words[0][0].isdigit() else ""
