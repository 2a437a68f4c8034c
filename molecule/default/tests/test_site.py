"""The whole site on a test host: real OpenSSH login, and the base role's results."""

import json

import pytest
from gpubox import evidence, status, workstation
from testhosts import ssh, testinfra_hosts as _hosts

testinfra_hosts = _hosts()


def test_admin_logs_in_with_openssh_and_has_sudo(host):
    name = host.backend.name
    result = ssh(name, "sudo", "-n", "id", "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_password_is_never_asked_for(host):
    # BatchMode forbids prompts: a login that needed a password would fail here.
    result = ssh(host.backend.name, "true", extra=("-o", "PreferredAuthentications=publickey"))
    assert result.returncode == 0, result.stderr


def test_common_packages_installed(host):
    for package in ("acl", "curl", "git", "jq", "python3-venv", "tmux"):
        assert host.package(package).is_installed, package


def test_pip_trusts_the_system_store(host):
    config = host.file("/etc/pip.conf")
    assert config.mode == 0o644
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in config.content_string


def test_container_is_detected_and_time_sync_left_alone(host):
    assert host.run("systemd-detect-virt --container").stdout.strip() == "podman"
    assert not host.package("chrony").is_installed


@pytest.mark.parametrize("unit", ["ssh.service", "systemd-journald.service"])
def test_core_services_running(host, unit):
    assert host.service(unit).is_running


def test_the_hosts_have_no_dbus(host):
    """What makes the converge below prove the D-Bus-free paths (linger, revocation)."""
    assert not host.package("dbus").is_installed
    assert not host.exists("busctl") or host.run("busctl list").rc != 0


def test_data_scientists_linger_without_dbus(host):
    for user in ("alice", "bob"):
        assert "gpubox" in host.user(user).groups
        linger = host.file(f"/var/lib/systemd/linger/{user}")
        assert linger.exists and linger.user == "root"


# The units whose jobs a workstation's first day runs (apt, AIDE, chkrootkit, sysstat, ...). Ours
# is left out: the idle checker could power the test host off.
TIMER_JOBS = ("systemctl list-timers --all --no-legend --plain | awk '{print $(NF-1)}' | grep '\\.timer$'"
              " | grep -vx gpubox-autostop.timer")


def test_no_failed_units_after_each_timers_job_ran_once(host):
    timers = host.check_output(TIMER_JOBS).split()
    assert "chkrootkit.timer" in timers and "dailyaidecheck.timer" in timers, timers
    ran = {}
    for timer in timers:
        unit = host.check_output(f"systemctl show -p Unit --value {timer}")
        # Waits for a oneshot job to end; bounded, so a hanging job fails the test instead of the suite.
        ran[unit] = host.run(f"timeout 900 systemctl start {unit}").rc
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", (failed, ran)


def test_a_planted_rootkit_finding_reaches_the_report(host):
    """A hidden file in /usr/lib is what chkrootkit's suspicious-files check flags; its daily run
    (no mail transport here) must land it in the workstation's report, read over SSH as IT would."""
    planted = "/usr/lib/.gpubox-planted-finding"
    host.run(f"touch {planted}")
    try:
        started = host.run("timeout 900 systemctl start chkrootkit.service")
        assert started.rc == 0, started.stderr
        read = ssh(host.backend.name, "sh", "-s", stdin_text=evidence.script("gpubox"))
        found = evidence.parse(read.stdout)
        audit = next(item for item in evidence.sections(found, {}, None) if item.title.startswith("Audit tools"))
        rows = [(row.label, row.value) for row in audit.rows]
        assert any(label == "chkrootkit finding" and planted in value for label, value in rows), (rows, read.stderr)
        assert any(label == "chkrootkit" and ": ok," in value for label, value in rows), rows
        # The known false findings (fail2ban's test data, the container's) are the ignore file's:
        # only the planted one is left.
        # (Debian 13's chkrootkit adds "[Not from a Debian package]" to the line.)
        findings = [value for label, value in rows if label == "chkrootkit finding"]
        assert len(findings) == 1 and findings[0].split(" [")[0] == planted, findings
        # IT's `status` shows the figures (any login reads them; the lines stay in the journal).
        summary = host.file("/var/lib/gpubox/audit/chkrootkit.json")
        assert summary.user == "root" and summary.mode == 0o644
        assert json.loads(summary.content_string) | {"finished": "?"} == {
            "tool": "chkrootkit", "finished": "?", "result": "success", "finding_lines": 1}
        probed = ssh(host.backend.name, "sh", "-s", stdin_text=status.PROBE)
        line = workstation.audit_line(status.parse_probe(probed.stdout).audit)
        assert line is not None and line.startswith("audit: chkrootkit 1 line of findings ("), (line, probed.stderr)
    finally:
        host.run(f"rm -f {planted}")


def test_no_failed_units(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", failed
