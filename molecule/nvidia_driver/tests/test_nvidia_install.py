"""The forced install path on Debian 12 and 13: real driver packages, held, nouveau blacklisted,
the persistence daemon enabled, DKMS registration, and "reboot required" without a reboot."""

import pytest
from testhosts import check_mode_changes, run_playbook, testinfra_hosts as _hosts

testinfra_hosts = _hosts()
DRIVER_PACKAGES = ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "nvidia-persistenced", "firmware-nvidia-gsp"]
BRANCH = {"debian12": "535.", "debian13": "550."}


def release(host) -> str:
    return host.backend.name.rsplit("-", 1)[-1]


@pytest.mark.parametrize("package", DRIVER_PACKAGES)
def test_driver_package_installed_from_non_free(host, package):
    assert host.package(package).is_installed
    if package != "nvidia-persistenced":
        assert host.package(package).version.startswith(BRANCH[release(host)])


def test_driver_packages_are_held(host):
    held = host.run("apt-mark showhold").stdout.split()
    assert sorted(held) == sorted(DRIVER_PACKAGES)


def test_no_desktop_stack_came_along(host):
    for package in ("xserver-xorg-core", "nvidia-driver", "libgl1-nvidia-glvnd-glx"):
        assert not host.package(package).is_installed, package


def test_nouveau_blacklisted(host):
    blacklist = host.file("/etc/modprobe.d/gpubox-blacklist-nouveau.conf")
    assert blacklist.mode == 0o644
    assert "blacklist nouveau" in blacklist.content_string.splitlines()
    assert "options nouveau modeset=0" in blacklist.content_string.splitlines()


def test_components_enabled_in_a_file_of_our_own(host):
    sources = host.file("/etc/apt/sources.list.d/gpubox-nvidia.sources").content_string
    assert "Components: contrib non-free non-free-firmware" in sources
    assert "-security" in sources


def test_dkms_knows_the_module(host):
    # The module source is registered with DKMS; it is built when the host boots a kernel of this
    # release (a container runs the host's kernel, which has no headers package here).
    status = host.run("dkms status").stdout
    assert "nvidia" in status and BRANCH[release(host)] in status


def test_persistence_daemon_enabled(host):
    assert host.service("nvidia-persistenced").is_enabled


def test_reboot_required_reported_and_host_not_rebooted(host):
    output, changed = run_playbook(host.backend.name, "converge.yml")
    assert changed == 0
    flat = " ".join(output.split())
    assert "Reboot required: NVIDIA driver " + BRANCH[release(host)] in flat
    assert "A container is never rebooted" in flat
    assert host.file("/run/gpubox-test-boot-marker").exists


def test_check_mode_reports_no_changes(host):
    assert check_mode_changes(host.backend.name) == 0


def test_autostop_counts_a_failing_nvidia_smi_as_busy(host):
    # The real nvidia-smi of the installed driver fails here (no GPU, no loaded module): the autostop
    # checker must log that and keep the host up, never stop it on an error.
    import json
    import subprocess
    from pathlib import Path

    checker = Path(__file__).resolve().parents[3] / "roles" / "autostop" / "files" / "gpubox_autostop.py"
    subprocess.run(["podman", "cp", str(checker), f"{host.backend.name}:/root/gpubox_autostop.py"], check=True, stdin=subprocess.DEVNULL)
    host.run("mkdir -p /root/jupyter-none /root/holds")
    config = {"idle_minutes": 1, "max_hours": 0, "warn_minutes": 0, "gpu_threshold": 10, "gpu_window_minutes": 5,
              "cpu_threshold": 1000, "watch_gpu": True,
              "nvidia_smi": ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
              "action": ["/bin/sh", "-c", "echo acted >> /root/acted"], "warn_command": ["true"],
              "jupyter_config_dir": "/root/jupyter-none", "jupyter_token_file": ".token", "holds_dir": "/root/holds",
              "state_file": "/root/state.json", "status_file": "/root/status.json"}
    host.run(f"cat > /root/autostop.json <<'EOF'\n{json.dumps(config)}\nEOF")
    host.run("echo '{\"last_busy\": \"2026-01-01T00:00:00+00:00\"}' > /root/state.json")
    result = host.run("python3 /root/gpubox_autostop.py /root/autostop.json")
    assert result.rc == 0, result.stderr
    status = json.loads(host.file("/root/status.json").content_string)
    assert status["busy"] and "nvidia-smi failed" in status["reasons"][0]
    assert "autostop: busy: checker failed, counting as busy: nvidia-smi failed" in result.stdout
    assert not host.file("/root/acted").exists
