"""The no-GPU path of the GPU stack on the whole site: no driver and a reason, TensorFlow's CPU
build in the shared virtualenv, proven by its report and by running Python in it here."""

import json
import subprocess
import time
from pathlib import Path

from testhosts import run_playbook, testinfra_hosts as _hosts

testinfra_hosts = _hosts()
PROJECT = Path(__file__).resolve().parents[3]
VENV_PYTHON = "/opt/gpubox/venv/bin/python"


def test_no_gpu_means_no_driver_packages_or_driver_config(host):
    listed = host.run("dpkg-query -W -f '${Package} ${db:Status-Status}\\n' '*nvidia*' 2>/dev/null | grep ' installed$' || true")
    assert listed.stdout.strip() == ""
    assert not host.file("/etc/modprobe.d/gpubox-blacklist-nouveau.conf").exists
    assert not host.file("/etc/apt/sources.list.d/gpubox-nvidia.sources").exists


def test_driver_role_says_why_and_changes_nothing(host):
    playbook = PROJECT / "playbooks" / "nvidia_driver.yml"
    # A plain run on this converged host skips the role's body (README "No-change runs"); a run
    # with the role's tag evaluates it, and must say why there is no driver.
    assert run_playbook(host.backend.name, playbook)[1] == 0
    output, changed = run_playbook(host.backend.name, playbook, "--tags", "nvidia_driver")
    assert changed == 0
    assert "No NVIDIA GPU on this host (no PCI device of vendor 10de, class 0300/0302): no driver installed." in " ".join(output.split())


def test_report_records_a_passing_cpu_smoke_test(host):
    report_file = host.file("/etc/gpubox/report.json")
    assert report_file.mode == 0o644 and report_file.user == "root"
    report = json.loads(report_file.content_string)
    assert report["ok"] is True
    assert report["tensorflow"]["version"] == "2.20.0" and report["tensorflow"]["cuda_build"] is False
    assert report["inputs"]["package"] == "tensorflow-cpu" and report["inputs"]["gpu_count"] == 0
    assert report["device"] == "/CPU:0" and report["gpus"] == []
    assert report["matmul"]["correct"] is True and report["matmul"]["size"] == 1024 and report["matmul"]["seconds"] > 0


def test_cpu_build_only(host):
    installed = host.run(f"{VENV_PYTHON} -m pip list --format=json --disable-pip-version-check")
    names = {item["name"].lower().replace("_", "-") for item in json.loads(installed.stdout)}
    assert "tensorflow-cpu" in names
    assert "tensorflow" not in names and not any(name.startswith("nvidia-") for name in names)


def test_uv_installed_the_environments_through_the_proxy_readable_by_all(host):
    """The first converge's installs ran with uv (gpubox.workstation.pip_install), through this
    machine's TLS-inspecting proxy with the base role's CAs, and left every file readable by the
    users whose kernels and servers run from them (umask 022, whatever root's)."""
    for venv, distribution in (("/opt/gpubox/venv", "tensorflow_cpu"), ("/opt/gpubox/jupyter", "jupyterlab")):
        installer = host.run(f"cat {venv}/lib/python3*/site-packages/{distribution}-*.dist-info/INSTALLER")
        assert installer.rc == 0 and installer.stdout.strip() == "uv", (venv, installer.stdout, installer.stderr)
        unreadable = host.run(f"find {venv} ! -perm -o+r -print -quit")
        assert unreadable.rc == 0 and unreadable.stdout.strip() == "", (venv, unreadable.stdout)
    assert host.file("/opt/gpubox/tools/bin/uv").user == "root"
    assert host.run("/opt/gpubox/tools/bin/uv --version").stdout.split()[:2] == ["uv", "0.13.9"]


def test_tensorflow_multiplies_in_the_venv(host):
    program = ("import tensorflow as tf; a = tf.reshape(tf.range(1.0, 7.0), (2, 3)); "
               "print(tf.matmul(a, a, transpose_b=True).numpy().astype(int).tolist())")
    result = host.run(f"{VENV_PYTHON} -c '{program}'")
    assert result.rc == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[[14, 32], [32, 77]]"


def test_rerun_does_no_pip_work(host):
    started = time.monotonic()
    output, changed = run_playbook(host.backend.name, PROJECT / "playbooks" / "tensorflow.yml")
    took = time.monotonic() - started
    print(f"\n{host.backend.name}: no-change run of playbooks/tensorflow.yml: {took:.1f} s")
    assert changed == 0
    # Neither pip nor the smoke test ran: their tasks were skipped.
    assert "Install TensorFlow 2.20.0] *" not in output and "Run the TensorFlow smoke test] *" not in output


def test_smoke_test_fails_clearly_when_a_gpu_is_expected_but_unseen(host):
    # The role's own smoke test, told a GPU with a loaded driver is there: it must fail and say why.
    name = host.backend.name
    subprocess.run(["podman", "cp", str(PROJECT / "roles" / "tensorflow" / "files" / "smoke_test.py"), f"{name}:/root/smoke_test.py"],
                   check=True, stdin=subprocess.DEVNULL)
    result = host.run(f"{VENV_PYTHON} /root/smoke_test.py '{{\"expect_gpu\": true, \"size\": 64}}'")
    assert result.rc == 1
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["ok"] is False and report["matmul"]["correct"] is True
    assert "TensorFlow sees no GPU although the host has one and the NVIDIA driver is loaded" in report["message"]
    assert "Libraries it failed to load:" in report["message"] and "tensorflow[and-cuda]" in report["message"]
