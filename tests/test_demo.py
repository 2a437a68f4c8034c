"""The README's `make demo` path end to end: runner.py provision --local starts a container,
configures it with site.yml through ansible-runner with live progress, and a plain `ssh
gpubox-NAME` then works; a second provision changes nothing; destroy removes it all."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from conftest import PROJECT, run_env
from gpubox import containers

pytestmark = pytest.mark.integration


def runner(home, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=run_env(home),
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_provision_local_then_ssh_then_destroy(home):
    name = f"pt{uuid.uuid4().hex[:6]}"
    try:
        first = runner(home, "provision", "--local", "--name", name)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert "Install the common packages" in first.stdout  # live progress, task by task
        assert f"ssh gpubox-{name}" in first.stdout
        assert "Traceback" not in first.stdout + first.stderr

        login = subprocess.run(
            ["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", f"gpubox-{name}", "sudo", "-n", "cat", "/etc/pip.conf"],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        )
        assert login.returncode == 0, login.stderr
        assert "cert = /etc/ssl/certs/ca-certificates.crt" in login.stdout

        key = home / ".ssh" / "gpubox_ed25519"
        assert key.stat().st_mode & 0o777 == 0o600
        assert (home / ".ssh" / "config").read_text().startswith(f"Include {home}/.ssh/gpubox/*.conf")

        again = runner(home, "provision", "--local", "--name", name)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert ": 0 changed." in again.stdout

        gone = runner(home, "destroy", "--local", "--name", name, "--yes")
        assert gone.returncode == 0, gone.stderr
        assert not containers.exists(f"gpubox-{name}")
        assert not (home / ".ssh" / "gpubox" / f"gpubox-{name}.conf").exists()
    finally:
        containers.remove(f"gpubox-{name}")


def test_failed_run_names_host_task_and_log(home, fresh_debian12_host):
    host = fresh_debian12_host
    # A host where the login user lost sudo: the very first privileged step fails.
    assert host.exec("rm", "/etc/sudoers.d/90-cloud-init-users").returncode == 0
    broken = runner(home, "configure", "--host", "127.0.0.1", "--port", str(host.port), "--user", "admin",
                    "--key", str(host.key), "--name", "nosudo")
    assert broken.returncode == 1
    assert "failed on gpubox-nosudo at task 'Gathering Facts'" in broken.stderr
    assert "sudo" in broken.stderr  # the host's own words about what went wrong
    assert "Full log:" in broken.stderr and "Traceback" not in broken.stdout + broken.stderr
