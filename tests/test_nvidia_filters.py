"""Driver package selection and the open/proprietary choice for every supported release and GPU
family (gpubox.workstation nvidia filters)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gpubox.workstation.plugins.filter.nvidia import (
    nvidia_describe_gpus, nvidia_driver_candidates, nvidia_gpu_generation, nvidia_kernel_module, nvidia_version_at_least,
)
from ansible_collections.gpubox.workstation.plugins.filter.python_env import pip_unsatisfied

# PCI device IDs of the GPUs EC2 offers, by instance family.
T4, A10G, A100, L4, L40S, H100, B200, V100, K80 = "0x1eb8", "0x2237", "0x20b0", "0x27b8", "0x26b9", "0x2330", "0x2901", "0x1db1", "0x102d"


@pytest.mark.parametrize(("device", "generation"), [
    (K80, "kepler"), (V100, "volta"), (T4, "turing"), (A10G, "ampere"), (A100, "ampere"), ("0x25b6", "ampere"),
    (L4, "ada"), (L40S, "ada"), (H100, "hopper"), ("0x2335", "hopper"), (B200, "blackwell"), ("0x0040", "unknown"),
])
def test_generation_from_pci_id(device, generation):
    assert nvidia_gpu_generation(device) == generation


@pytest.mark.parametrize(("family", "devices", "module"), [
    ("g4dn (T4)", [T4], "proprietary"),
    ("g5 (A10G)", [A10G], "proprietary"),
    ("p4d (A100)", [A100] * 8, "proprietary"),
    ("p3 (V100)", [V100], "proprietary"),
    ("g6 (L4)", [L4], "open"),
    ("g6e (L40S)", [L40S], "open"),
    ("p5 (H100)", [H100] * 8, "open"),
    ("p6 (B200)", [B200], "open"),
    ("mixed T4 and L4", [T4, L4], "proprietary"),
    ("no GPU (forced install)", [], "proprietary"),
])
def test_kernel_module_follows_the_gpu_generation(family, devices, module):
    assert nvidia_kernel_module([{"device_id": device} for device in devices], "auto") == module, family


def test_kernel_module_override_and_its_limits():
    assert nvidia_kernel_module([{"device_id": T4}], "open") == "open"
    assert nvidia_kernel_module([{"device_id": L4}], "proprietary") == "proprietary"
    with pytest.raises(AnsibleFilterError, match="volta GPUs, which only the proprietary module supports"):
        nvidia_kernel_module([{"device_id": V100}], "open")
    with pytest.raises(AnsibleFilterError, match="Blackwell GPUs need the open module"):
        nvidia_kernel_module([{"device_id": B200}], "proprietary")


def test_gpus_get_a_model_name_without_lspci():
    described = nvidia_describe_gpus([{"device_id": T4, "name": ""}, {"device_id": "0x2237", "name": "GA102GL [A10G]"}])
    assert [gpu["model"] for gpu in described] == ["Tesla T4", "GA102GL [A10G]"]
    assert [gpu["generation"] for gpu in described] == ["turing", "ampere"]


def facts(distribution: str, version: str, kernel: str) -> dict:
    return {"distribution": distribution, "distribution_version": version, "kernel": kernel}


UBUNTU_CASES = [
    ("22.04", "5.15.0-1050-aws", "535", "proprietary", "aws", "535-server"),
    ("22.04", "6.5.0-1022-aws", "550", "open", "aws", "550-server-open"),
    ("24.04", "6.8.0-1015-aws", "580", "proprietary", "aws", "580-server"),
    ("24.04", "6.8.0-1015-aws", "580", "open", "aws", "580-server-open"),
    ("24.04", "6.8.0-45-generic", "570", "proprietary", "generic", "570-server"),
]


@pytest.mark.parametrize(("release", "kernel", "branch", "module", "flavour", "suffix"), UBUNTU_CASES)
def test_ubuntu_prefers_precompiled_signed_modules(release, kernel, branch, module, flavour, suffix):
    plan = nvidia_driver_candidates(facts("Ubuntu", release, kernel), branch, module)
    assert plan["precompiled"] == [
        f"linux-modules-nvidia-{suffix}-{flavour}", f"linux-modules-nvidia-{suffix}-{kernel}",
        f"nvidia-headless-no-dkms-{suffix}", f"nvidia-utils-{branch}-server", f"nvidia-compute-utils-{branch}-server",
    ]
    assert plan["dkms"] == [f"nvidia-headless-{suffix}", f"nvidia-utils-{branch}-server", f"nvidia-compute-utils-{branch}-server"]
    assert plan["headers"] == f"linux-headers-{kernel}"
    # Compute only: nothing that pulls in X11 or a desktop.
    assert not any("xserver" in name or name.startswith("nvidia-driver-") for name in plan["precompiled"] + plan["dkms"])


@pytest.mark.parametrize(("version", "module", "kernel_package"), [
    ("12", "proprietary", "nvidia-kernel-dkms"), ("12.8", "open", "nvidia-open-kernel-dkms"),
    ("13", "proprietary", "nvidia-kernel-dkms"), ("13", "open", "nvidia-open-kernel-dkms"),
])
def test_debian_uses_dkms_packages_from_non_free(version, module, kernel_package):
    plan = nvidia_driver_candidates(facts("Debian", version, "6.1.0-28-cloud-amd64"), "580", module)
    assert plan["precompiled"] == []
    assert plan["dkms"] == [kernel_package, "nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-nvidia-gsp"]
    assert plan["headers"] == "linux-headers-6.1.0-28-cloud-amd64"


@pytest.mark.parametrize(("distribution", "version", "kernel", "branch", "message"), [
    ("Ubuntu", "20.04", "5.4.0-1100-aws", "535", "supports Debian 12/13 and Ubuntu 22.04/24.04, not Ubuntu 20.04"),
    ("Rocky", "9.4", "5.14.0-427.el9.x86_64", "535", "not Rocky 9.4"),
    ("Ubuntu", "24.04", "6.8.0-1015-aws", "latest", "three-digit branch such as 580, not 'latest'"),
    ("Ubuntu", "24.04", "6.8.0-custom", "580", "cannot tell the Ubuntu kernel flavour"),
])
def test_unsupported_hosts_and_bad_branches_are_refused(distribution, version, kernel, branch, message):
    with pytest.raises(AnsibleFilterError, match=message):
        nvidia_driver_candidates(facts(distribution, version, kernel), branch, "proprietary")


@pytest.mark.parametrize(("version", "minimum", "expected"), [
    ("535.261.03", "535.0", True), ("525.60.13", "525.60.13", True), ("525.60.12", "525.60.13", False),
    ("470.256.02", "535", False), ("580.65.06", "535.0", True), ("", "535.0", False),
])
def test_version_comparison_is_numeric(version, minimum, expected):
    assert nvidia_version_at_least(version, minimum) is expected


def test_pip_unsatisfied_compares_pins_and_the_cuda_extra():
    installed = {"tensorflow": "2.20.0", "Pandas": "2.3.3", "numpy": "2.1.3"}
    assert pip_unsatisfied(["tensorflow==2.20.0", "pandas==2.3.3"], installed) == []
    assert pip_unsatisfied(["tensorflow==2.19.0"], installed) == ["tensorflow==2.19.0"]
    assert pip_unsatisfied(["tensorflow[and-cuda]==2.20.0"], installed) == ["tensorflow[and-cuda]==2.20.0"]
    assert pip_unsatisfied(["tensorflow[and-cuda]==2.20.0"], dict(installed, **{"nvidia-cudnn-cu12": "9.3"})) == []
    assert pip_unsatisfied(["tensorflow-cpu==2.20.0"], installed) == ["tensorflow-cpu==2.20.0"]
    with pytest.raises(AnsibleFilterError, match="'pandas' is not pinned"):
        pip_unsatisfied(["pandas"], installed)
