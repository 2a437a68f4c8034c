"""The hardened host, seen from outside with real clients (OpenSSH, ssh-audit, a TCP connect)
and from inside (sshd -T, nft, fail2ban, unattended-upgrades, Lynis)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from testhosts import check_mode_changes, instance, ssh, testinfra_hosts as _hosts

testinfra_hosts = _hosts()


def effective_sshd(host) -> dict[str, str]:
    """sshd -T as a dict; keys it prints once per value (allowgroups) are joined with spaces."""
    config: dict[str, str] = {}
    for key, _, value in (line.partition(" ") for line in host.check_output("sshd -T").splitlines()):
        config[key] = f"{config[key]} {value}" if key in config and key == "allowgroups" else value
    return config


def test_sshd_effective_configuration_ignores_the_cloud_init_dropin(host):
    assert host.file("/etc/ssh/sshd_config.d/50-cloud-init.conf").exists  # still there, not read
    config = effective_sshd(host)
    expected = {
        "passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no",
        "permitemptypasswords": "no", "allowtcpforwarding": "local", "x11forwarding": "no",
        "allowagentforwarding": "no", "allowstreamlocalforwarding": "local", "permittunnel": "no",
        "loglevel": "VERBOSE", "maxauthtries": "3", "allowgroups": "sudo gpubox", "requiredrsasize": "3072",
    }
    assert {key: config.get(key) for key in expected} == expected
    assert config["hostkey"] == "/etc/ssh/ssh_host_ed25519_key"
    assert host.file("/etc/ssh/sshd_config").mode == 0o600


def test_only_the_ed25519_host_key_remains(host):
    assert host.file("/etc/ssh/ssh_host_ed25519_key").exists
    for kind in ("rsa", "ecdsa", "dsa"):
        assert not host.file(f"/etc/ssh/ssh_host_{kind}_key").exists


def test_root_is_refused_even_with_a_valid_key(host):
    result = ssh(host.backend.name, "true", user="root")
    assert result.returncode == 255 and "Permission denied" in result.stderr


def test_password_login_is_not_even_offered(host):
    result = ssh(host.backend.name, "true", user="pwuser",
                 extra=("-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"))
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_local_forwarding_reaches_a_loopback_service(host):
    name = host.backend.name
    target = instance(name)
    local_port = _free_port()
    tunnel = subprocess.Popen(
        ["ssh", "-N", "-p", str(target["port"]), "-i", target["identity_file"], "-o", "IdentitiesOnly=yes",
         "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ExitOnForwardFailure=yes", "-L", f"{local_port}:127.0.0.1:9000", f"{target['user']}@{target['address']}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert tunnel.poll() is None, tunnel.stderr.read()
                assert time.monotonic() < deadline, "the tunnel never carried a request"
                time.sleep(0.3)
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)


def test_remote_forwarding_is_refused(host):
    result = ssh(host.backend.name, "true", extra=("-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22"))
    assert result.returncode != 0
    assert "remote port forwarding failed" in result.stderr.lower()


def test_x11_forwarding_is_refused(host):
    env = dict(os.environ, DISPLAY=":99")
    target = instance(host.backend.name)
    result = subprocess.run(
        ["ssh", "-X", "-p", str(target["port"]), "-i", target["identity_file"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", f"{target['user']}@{target['address']}",
         "echo DISPLAY=$DISPLAY"],
        capture_output=True, text=True, timeout=60, env=env, check=False, stdin=subprocess.DEVNULL,
    )
    assert result.stdout.strip() == "DISPLAY="
    assert "X11 forwarding request failed" in result.stderr


def test_other_ports_are_closed_from_outside_but_work_inside(host):
    assert host.run("curl -fsS -o /dev/null http://127.0.0.1:8080/").rc == 0  # the service is up
    probe_port = instance(host.backend.name)["probe_port"]
    with pytest.raises(OSError):
        with socket.create_connection(("127.0.0.1", probe_port), timeout=3) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if not sock.recv(100):
                raise ConnectionResetError("closed without an answer")


def test_firewall_ruleset_allows_ssh_and_drops_the_rest(host):
    rules = host.check_output("nft list table inet gpubox")
    assert "policy drop" in rules and "tcp dport 22" in rules
    assert host.service("nftables").is_enabled


def test_ssh_audit_reports_no_failure_and_no_warning(host):
    target = instance(host.backend.name)
    audit = Path(sys.executable).parent / "ssh-audit"
    result = subprocess.run([str(audit), "-n", "-p", str(target["port"]), target["address"]],
                            capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    findings = [line for line in result.stdout.splitlines() if re.search(r"\[(fail|warn)\]", line)]
    print(f"ssh-audit {host.backend.name}: exit {result.returncode}, {len(findings)} findings")
    assert findings == []
    assert result.returncode == 0, result.stdout[-3000:]


def test_fail2ban_jail_reads_failed_logins_from_the_journal_and_spares_the_operator(host):
    status = host.check_output("fail2ban-client status sshd")
    assert "Journal matches:" in status and "_COMM=sshd" in status
    ignored = host.check_output("fail2ban-client get sshd ignoreip")
    assert re.search(r"\b(10|172|192)\.\d+\.\d+\.\d+\b", ignored), ignored  # the controller's address
    # A failed login lands in the journal and the jail's filter matches it. (The jail itself does
    # not count it: the controller's address is exempt, and so is the host's own.)
    assert ssh(host.backend.name, "true", user="nosuchuser").returncode == 255
    deadline = time.monotonic() + 20
    while True:
        matched = host.check_output("fail2ban-regex systemd-journal sshd")
        if int(re.search(r"Lines: \d+ lines, \d+ ignored, (\d+) matched", matched).group(1)) >= 1:
            break
        assert time.monotonic() < deadline, matched
        time.sleep(1)


def test_unattended_upgrades_security_only_and_gpu_stack_held(host):
    out = host.run("unattended-upgrade --dry-run -d 2>&1").stdout
    assert re.search(r"Allowed origins are:.*label=Debian-Security", out), out[-2000:]
    assert "Initial blacklist: nvidia- libnvidia-" in out
    assert '"false"' in host.file("/etc/apt/apt.conf.d/52gpubox-unattended-upgrades").content_string.split("Automatic-Reboot ")[1][:8]


def test_legacy_service_removed_banner_and_system_files(host):
    assert not host.package("tftpd-hpa").is_installed
    assert "Authorized access only" in host.file("/etc/issue.net").content_string
    assert "net.ipv4.conf.all.accept_redirects = 0" in host.file("/etc/sysctl.d/60-gpubox-network.conf").content_string
    assert "UMASK\t027" in host.file("/etc/login.defs").content_string
    # Kernel-level settings belong to the container host: skipped, not written.
    assert not host.file("/etc/modprobe.d/gpubox-blacklist.conf").exists


def test_no_failed_units(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", failed


def test_check_mode_on_the_converged_host_changes_nothing(host):
    assert check_mode_changes(host.backend.name) == 0


def test_compilers_run_for_root_and_the_data_scientists_group_only(host):
    # binutils' assembler is on every test image; the override survives its next upgrade.
    real = host.check_output("readlink -f /usr/bin/as")
    assert f"root gpubox 750 {real}" in host.check_output("dpkg-statoverride --list").splitlines()
    assembler = host.file(real)
    assert (assembler.user, assembler.group, assembler.mode) == ("root", "gpubox", 0o750)
    assert host.run("runuser -u nobody -- /usr/bin/as --version").rc != 0
