"""Filters for the nvidia_driver role: which kernel module a GPU needs and which packages carry it.

Pure functions of the host's facts, so every distribution release and GPU family is tested
with pytest (tests/test_nvidia_filters.py) without the hardware.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.gpubox.workstation.plugins.module_utils import nvidia

SUPPORTED = {("Debian", "12"), ("Debian", "13"), ("Ubuntu", "22.04"), ("Ubuntu", "24.04")}
UBUNTU_KERNEL = re.compile(r"^\d+\.\d+\.\d+-\d+-(?P<flavour>[a-z0-9-]+)$")


def nvidia_gpu_generation(device_id: str | int) -> str:
    """Generation of an NVIDIA GPU from its PCI device ID ('0x1eb8', '1eb8' or an int)."""
    return nvidia.gpu_generation(device_id)


def nvidia_gpu_model(device_id: str | int) -> str:
    return nvidia.gpu_model(device_id)


def nvidia_describe_gpus(gpus: list[dict]) -> list[dict]:
    """Each GPU with its generation and a model name (lspci's when it had one)."""
    return nvidia.describe_gpus(gpus)


def nvidia_kernel_module(gpus: list[dict], choice: str = "auto") -> str:
    """'open' or 'proprietary' for these GPUs; choice 'auto' decides by the oldest GPU present."""
    try:
        return nvidia.kernel_module(gpus, choice)
    except ValueError as error:
        raise AnsibleFilterError(str(error)) from None


def nvidia_driver_candidates(facts: dict, branch: str | int, module: str) -> dict:
    """The package sets that install a headless, compute-only driver on the host these Ansible
    facts (distribution, distribution_version, kernel) describe, best first.

    Returns {'precompiled': [...], 'dkms': [...], 'headers': name}: the role installs 'precompiled'
    when every one of them is available (Ubuntu's signed modules for the running kernel), else
    'dkms' plus 'headers' (DKMS builds the module against them); it holds what it installed.
    """
    distribution, kernel = facts["distribution"], facts["kernel"]
    version = str(facts["distribution_version"])
    if distribution == "Debian":
        version = version.split(".")[0]
    if (distribution, version) not in SUPPORTED:
        raise AnsibleFilterError(
            f"nvidia_driver supports Debian 12/13 and Ubuntu 22.04/24.04, not {distribution} {version}. "
            "Install the driver yourself and set nvidia_driver_manage: false.")
    if module not in ("open", "proprietary"):
        raise AnsibleFilterError(f"kernel module must be open or proprietary, not {module!r}")
    headers = f"linux-headers-{kernel}"
    if distribution == "Debian":
        # One driver branch per Debian release (535 in 12, 550 in 13), from contrib/non-free.
        kernel_module = "nvidia-open-kernel-dkms" if module == "open" else "nvidia-kernel-dkms"
        dkms = [kernel_module, "nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-nvidia-gsp"]
        return {"precompiled": [], "dkms": dkms, "headers": headers}
    branch = str(branch)
    if not re.fullmatch(r"\d{3}", branch):
        raise AnsibleFilterError(f"nvidia_driver_branch must be a three-digit branch such as 580, not {branch!r}")
    match = UBUNTU_KERNEL.match(kernel)
    if not match:
        raise AnsibleFilterError(f"cannot tell the Ubuntu kernel flavour from kernel release {kernel!r}")
    flavour = match.group("flavour")
    suffix = f"{branch}-server" + ("-open" if module == "open" else "")
    userspace = [f"nvidia-headless-no-dkms-{suffix}", f"nvidia-utils-{branch}-server",
                 f"nvidia-compute-utils-{branch}-server"]
    precompiled = [f"linux-modules-nvidia-{suffix}-{flavour}", f"linux-modules-nvidia-{suffix}-{kernel}", *userspace]
    dkms = [f"nvidia-headless-{suffix}", f"nvidia-utils-{branch}-server", f"nvidia-compute-utils-{branch}-server"]
    return {"precompiled": precompiled, "dkms": dkms, "headers": headers}


def nvidia_version_at_least(version: str, minimum: str) -> bool:
    """'535.261.03' >= '535.0'? Compares numerically, component by component."""
    return nvidia.version_at_least(version, minimum)


class FilterModule:
    def filters(self) -> dict:
        return {
            "nvidia_gpu_generation": nvidia_gpu_generation,
            "nvidia_gpu_model": nvidia_gpu_model,
            "nvidia_describe_gpus": nvidia_describe_gpus,
            "nvidia_kernel_module": nvidia_kernel_module,
            "nvidia_driver_candidates": nvidia_driver_candidates,
            "nvidia_version_at_least": nvidia_version_at_least,
        }
