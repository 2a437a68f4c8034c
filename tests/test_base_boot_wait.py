"""The base role waits, boundedly, for cloud-init and for whoever holds the dpkg lock (fresh
EC2 instances run both at boot), and says what to do when the wait runs out."""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from conftest import PROJECT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

HOLD_DPKG_LOCK = (
    "import fcntl, sys, time\n"
    "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
    "fcntl.lockf(f, fcntl.LOCK_EX)\n"
    "time.sleep(float(sys.argv[1]))\n"
)
SLOW_CLOUD_INIT = "#!/bin/sh\n# stands in for cloud-init still running its modules\n[ \"$1 $2\" = 'status --wait' ] && sleep \"$(cat /run/ci-delay)\"\nexit 0\n"


def playbook(host, tmp_path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), "site.yml",
         "--tags", "base_time", *extra],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=300, check=False,
    )


def hold_lock(host, seconds: int) -> subprocess.Popen:
    process = subprocess.Popen(["podman", "exec", host.name, "python3", "-c", HOLD_DPKG_LOCK, str(seconds)])
    time.sleep(1)  # let it take the lock
    return process


def test_held_dpkg_lock_fails_after_the_timeout_with_advice(debian12_host, tmp_path):
    holder = hold_lock(debian12_host, 60)
    try:
        result = playbook(debian12_host, tmp_path, "-e", "base_wait_timeout=3")
    finally:
        holder.kill()
        debian12_host.exec("pkill", "-f", "fcntl.lockf")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Another apt/dpkg process still held /var/lib/dpkg/lock-frontend after 3s" in output
    assert "raise base_wait_timeout" in output


def test_run_goes_on_once_the_dpkg_lock_is_released(debian12_host, tmp_path):
    # Held long enough that a loaded controller (CI runs two streams on two cores) reaches the
    # probe before the lock goes: with 4 s it sometimes did not, and the probe waited 0 s.
    holder = hold_lock(debian12_host, 20)
    result = playbook(debian12_host, tmp_path, "-e", "base_wait_timeout=120", "-v")
    holder.wait(timeout=60)
    assert result.returncode == 0, result.stdout[-3000:]
    waited = re.findall(r"^\s*waited_seconds: ([0-9.]+)$", result.stdout, re.M)
    assert waited and float(waited[0]) > 0, result.stdout[-3000:]


def test_cloud_init_still_running_fails_after_the_timeout_with_advice(debian12_host, tmp_path):
    subprocess.run(["podman", "exec", "-i", debian12_host.name, "sh", "-c",
                    "cat >/usr/local/bin/cloud-init && chmod 755 /usr/local/bin/cloud-init && echo 30 >/run/ci-delay"],
                   input=SLOW_CLOUD_INIT, text=True, check=True)
    try:
        result = playbook(debian12_host, tmp_path, "-e", "base_wait_timeout=2")
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "cloud-init was still running after 2s" in output and "/var/log/cloud-init-output.log" in output

        debian12_host.exec("sh", "-c", "echo 1 >/run/ci-delay")
        assert playbook(debian12_host, tmp_path, "-e", "base_wait_timeout=20").returncode == 0
    finally:
        debian12_host.exec("rm", "-f", "/usr/local/bin/cloud-init", "/run/ci-delay")
