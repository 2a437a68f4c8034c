"""Killed runs, and one-run convergence on a minimal Debian 12.

ansible-playbook dies (SIGKILL) after a role wrote new configuration but before its reload,
restart or daemon-reload ran; the next good run must still leave every service on the
configuration on disk, although it finds every file already right.

One minimal Debian 12 host (images/testhost/build.sh debian12-minimal: no cron, no locales) is
converged once; a second run must change nothing (the first run's packages brought paths, such
as cron.weekly, that the hardening role tightens in that same run). Then a changed configuration
is applied by runs killed at two points (after the hardening role's writes, before its handlers;
then, in a run of the autostop role alone, after it wrote its units, before the daemon-reload),
and a single run to the end must settle both. Live and
disk are compared the way a client sees them: the key exchange, ciphers and MACs sshd offers in
its handshake against `sshd -T`, the firewall table against the one the file loads, fail2ban's
running jail against jail.local, systemd's view of the timer against its unit file. TensorFlow
and Jupyter are left out to stay fast (their handlers follow the same pattern, see
tests/test_pending_applies.py; the whole site converges in one run on a minimal Debian 13 in
molecule's default scenario)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import conftest
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import containers

pytestmark = pytest.mark.integration

PENDING = "/var/lib/gpubox/pending"
SKIP = ["--skip-tags", "tensorflow,jupyter"]
# A new configuration for every service with an apply step this test can see in a container.
CHANGED = {
    "hardening_ssh_kex_algorithms": ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"],
    "hardening_firewall_allowed_tcp_ports": [8080],
    "hardening_fail2ban_maxretry": 4,
    "autostop_interval": "2min",
}
RECAP = re.compile(r"^\S+\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def command(host: conftest.TestHost, tmp_path: Path, extra: dict, *args: str) -> list[str]:
    return [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), "site.yml", *SKIP,
            "-e", json.dumps(extra), *args]


def run(host: conftest.TestHost, tmp_path: Path, extra: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(host, tmp_path, extra), cwd=PROJECT, env=run_env(), capture_output=True, text=True,
                          timeout=1500, check=False)


def run_and_kill(host: conftest.TestHost, tmp_path: Path, extra: dict, ready: str, *args: str) -> bool:
    """Start a run and SIGKILL it (all its processes) the moment `ready` holds on the host.

    False when the run ended before the kill point could be seen: a window of one task is short
    on a loaded machine, and the caller may try again with another configuration."""
    watcher = subprocess.Popen(["podman", "exec", host.name, "sh", "-c", f"until {ready}; do sleep 0.05; done"])
    log = (tmp_path / "killed.log").open("w")
    playbook = subprocess.Popen(command(host, tmp_path, extra, *args), cwd=PROJECT, env=run_env(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 900
        while watcher.poll() is None:
            if playbook.poll() is not None:
                log.flush()
                assert playbook.returncode == 0, f"the run failed before the kill point ({ready}):\n" + \
                    (tmp_path / "killed.log").read_text()[-3000:]
                return False
            assert time.monotonic() < deadline, f"the kill point never came: {ready}"
            time.sleep(0.02)
        os.killpg(playbook.pid, signal.SIGKILL)
        playbook.wait(timeout=30)
        return True
    finally:
        for process in (watcher, playbook):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        log.close()


def shell(host: conftest.TestHost, script: str) -> str:
    result = host.exec("sh", "-c", script)
    assert result.returncode == 0, f"{script}: {result.stderr}"
    return result.stdout


def pending(host: conftest.TestHost) -> set[str]:
    return set(shell(host, f"ls -A {PENDING} 2>/dev/null || true").split())


def sshd_on_disk(host: conftest.TestHost) -> dict[str, list[str]]:
    """What sshd would offer if it read its configuration now."""
    settings = dict(line.split(" ", 1) for line in shell(host, "/usr/sbin/sshd -T").splitlines() if " " in line)
    return {name: settings[name].split(",") for name in ("kexalgorithms", "ciphers", "macs")}


def sshd_live(host: conftest.TestHost) -> dict[str, list[str]]:
    """What the running daemon offers, from a real client's handshake (ssh -vv)."""
    result = subprocess.run(["ssh", "-vv", "-p", str(host.port), "-i", str(host.key), "-o", "BatchMode=yes",
                             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "admin@127.0.0.1", "true"],
                            capture_output=True, text=True, timeout=60, check=False)
    proposal = result.stderr.split("peer server KEXINIT proposal", 1)[1]
    found = dict(re.findall(r"^debug2: (KEX algorithms|ciphers ctos|MACs ctos): (.*)$", proposal, re.M))
    # The server adds markers of extensions to its KEX list; they are no algorithms of its configuration.
    kex = [name for name in found["KEX algorithms"].split(",") if not name.startswith(("ext-info-", "kex-strict-"))]
    return {"kexalgorithms": kex, "ciphers": found["ciphers ctos"].split(","), "macs": found["MACs ctos"].split(",")}


def firewall_live_and_disk(host: conftest.TestHost) -> tuple[str, str]:
    """The live table, then the table after loading the file again: equal when the file is live."""
    live = shell(host, "nft list table inet gpubox 2>&1 || true")
    reloaded = shell(host, "nft -f /etc/nftables.conf && nft list table inet gpubox")
    return live, reloaded


def fail2ban_maxretry(host: conftest.TestHost) -> tuple[str, str]:
    live = shell(host, "fail2ban-client get sshd maxretry").strip()
    disk = re.search(r"^maxretry = (\d+)$", shell(host, "cat /etc/fail2ban/jail.local"), re.M).group(1)
    return live, disk


def timer(host: conftest.TestHost) -> dict[str, str]:
    out = shell(host, "systemctl show gpubox-autostop.timer -p NeedDaemonReload -p ActiveState -p TimersMonotonic")
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.fixture
def minimal_debian12_host(tmp_path_factory: pytest.TempPathFactory):
    host = conftest._start_host(tmp_path_factory, "debian12-minimal")
    yield host
    containers.remove(host.name)


def test_killed_runs_leave_every_service_on_the_configuration_on_disk(minimal_debian12_host, tmp_path):
    host = minimal_debian12_host
    assert host.exec("test", "-e", "/etc/cron.weekly").returncode != 0, "the image is not minimal: cron is there"
    first = run(host, tmp_path, {})
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert pending(host) == set()
    assert shell(host, "stat -c %a /etc/cron.weekly /etc/cron.monthly").split() == ["700", "700"]
    converged = run(host, tmp_path, {})
    assert converged.returncode == 0 and RECAP.findall(converged.stdout) == [("0", "0", "0")], converged.stdout[-6000:]

    # Killed after hardening wrote sshd_config, the ruleset and jail.local (its handlers run at the
    # end of its play, so all three are owed).
    assert run_and_kill(host, tmp_path, CHANGED,
                        f"test -e {PENDING}/hardening-fail2ban && grep -q '^maxretry = 4$' /etc/fail2ban/jail.local"), \
        "the run ended before hardening's handlers could be cut off"
    assert {"hardening-sshd", "hardening-firewall", "hardening-fail2ban"} <= pending(host)
    # The fault is real: the files are new, the services still run the old configuration.
    assert "curve25519-sha256" in sshd_on_disk(host)["kexalgorithms"]
    assert "curve25519-sha256" not in sshd_live(host)["kexalgorithms"]
    assert fail2ban_maxretry(host) == ("5", "4")
    assert "8080" not in shell(host, "nft list table inet gpubox")

    # Killed again: a run of autostop alone, once it wrote its units and before the daemon-reload,
    # one task later. A run that slipped through that window applied its interval: the next try
    # writes another one (the fault must be injected, not assumed).
    for interval in ("2min", "3min", "4min"):
        changed = {**CHANGED, "autostop_interval": interval}
        if run_and_kill(host, tmp_path, changed, f"test -e {PENDING}/autostop-units && "
                        f"grep -q 'OnUnitActiveSec={interval}$' /etc/systemd/system/gpubox-autostop.timer",
                        "--tags", "autostop"):
            break
    else:
        pytest.fail("three autostop runs ended before the kill point")
    owed = {"hardening-sshd", "hardening-firewall", "hardening-fail2ban", "autostop-units"}
    assert owed <= pending(host)
    assert timer(host)["NeedDaemonReload"] == "yes"

    # One run to the end finds every file right and still applies all four.
    final = run(host, tmp_path, changed)
    assert final.returncode == 0, final.stdout[-4000:] + final.stderr[-2000:]
    assert pending(host) == set()
    assert sshd_live(host) == sshd_on_disk(host)
    assert "curve25519-sha256" in sshd_live(host)["kexalgorithms"]
    assert fail2ban_maxretry(host) == ("4", "4")
    state = timer(host)
    assert state["NeedDaemonReload"] == "no" and state["ActiveState"] == "active", state
    assert interval in state["TimersMonotonic"], state
    live, reloaded = firewall_live_and_disk(host)
    assert "8080" in live and live == reloaded

    # On this converged host, base installs a package that brings a file hardening tightens:
    # hardening must see it in the same run (it looked at the host in preflight, before base).
    assert host.exec("test", "-e", "/etc/nanorc").returncode != 0, "the image is not minimal: nano is there"
    defaults = yaml.safe_load((PROJECT / "roles" / "hardening" / "defaults" / "main.yml").read_text())
    with_nano = {**changed, "base_extra_packages": ["nano"],
                 "hardening_file_modes": {**defaults["hardening_file_modes"], "/etc/nanorc": "0600"}}
    added = run(host, tmp_path, with_nano)
    assert added.returncode == 0, added.stdout[-4000:] + added.stderr[-2000:]
    assert shell(host, "stat -c %a /etc/nanorc").strip() == "600"
    again = run(host, tmp_path, with_nano)
    assert again.returncode == 0 and RECAP.findall(again.stdout) == [("0", "0", "0")], again.stdout[-6000:]
