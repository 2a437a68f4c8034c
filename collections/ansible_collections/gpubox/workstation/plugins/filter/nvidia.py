"""Filters for the nvidia_driver role: which kernel module a GPU needs and which packages carry it.

Pure functions of the host's facts, so every distribution release and GPU family is tested
with pytest (tests/test_nvidia_filters.py) without the hardware.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

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
SUPPORTED = {("Debian", "12"), ("Debian", "13"), ("Ubuntu", "22.04"), ("Ubuntu", "24.04")}
UBUNTU_KERNEL = re.compile(r"^\d+\.\d+\.\d+-\d+-(?P<flavour>[a-z0-9-]+)$")


def nvidia_gpu_generation(device_id: str | int) -> str:
    """Generation of an NVIDIA GPU from its PCI device ID ('0x1eb8', '1eb8' or an int)."""
    number = device_id if isinstance(device_id, int) else int(str(device_id), 16)
    for low, high, generation in GENERATIONS:
        if low <= number <= high:
            return generation
    return "unknown"


def nvidia_gpu_model(device_id: str | int) -> str:
    number = device_id if isinstance(device_id, int) else int(str(device_id), 16)
    return KNOWN_MODELS.get(number, f"NVIDIA device {number:04x}")


def nvidia_describe_gpus(gpus: list[dict]) -> list[dict]:
    """Each GPU with its generation and a model name (lspci's when it had one)."""
    return [dict(gpu, generation=nvidia_gpu_generation(gpu["device_id"]),
                 model=gpu.get("name") or nvidia_gpu_model(gpu["device_id"])) for gpu in gpus]


def nvidia_kernel_module(gpus: list[dict], choice: str = "auto") -> str:
    """'open' or 'proprietary' for these GPUs; choice 'auto' decides by the oldest GPU present."""
    generations = [nvidia_gpu_generation(gpu["device_id"]) for gpu in gpus]
    if choice == "open":
        too_old = sorted({g for g in generations if g not in OPEN_CAPABLE})
        if too_old:
            raise AnsibleFilterError(
                f"nvidia_driver_kernel_module is 'open' but this host has {', '.join(too_old)} GPUs, which only "
                "the proprietary module supports. Set nvidia_driver_kernel_module: auto (or proprietary).")
        return "open"
    if choice == "proprietary":
        if "blackwell" in generations:
            raise AnsibleFilterError(
                "nvidia_driver_kernel_module is 'proprietary' but Blackwell GPUs need the open module. "
                "Set nvidia_driver_kernel_module: auto (or open).")
        return "proprietary"
    if choice != "auto":
        raise AnsibleFilterError(f"nvidia_driver_kernel_module must be auto, open or proprietary, not {choice!r}")
    if generations and all(g in OPEN_PREFERRED for g in generations):
        return "open"
    return "proprietary"


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
    def parts(text: str) -> list[int]:
        return [int(piece) for piece in re.findall(r"\d+", str(text))] or [0]
    if not version:
        return False
    return parts(version) >= parts(minimum)


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
