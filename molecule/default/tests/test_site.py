"""The whole site on a test host: real OpenSSH login, and the base role's results."""

import json
import shlex

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
    assert {"chkrootkit.timer", "dailyaidecheck.timer", "debsums.timer"} <= set(timers), timers
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


def test_a_changed_package_file_reaches_the_report_once(host):
    """debsums' check (its own timer's unit here: Debian only runs it from cron, off by default)
    names a packaged file that changed since install, once, in the report and in `status`."""
    changed = "/usr/bin/rdebsums"  # a script of debsums' own package
    host.run(f"cp -p {changed} /root/rdebsums.orig && echo '# planted' >> {changed}")
    try:
        started = host.run("timeout 900 systemctl start debsums.service")
        assert started.rc == 0, started.stderr
        read = ssh(host.backend.name, "sh", "-s", stdin_text=evidence.script("gpubox"))
        audit = next(item for item in evidence.sections(evidence.parse(read.stdout), {}, None)
                     if item.title.startswith("Audit tools"))
        rows = [(row.label, row.value) for row in audit.rows]
        assert [value for label, value in rows if label == "debsums finding"] == [changed], (rows, read.stderr)
        summary = json.loads(host.file("/var/lib/gpubox/audit/debsums.json").content_string)
        assert (summary["result"], summary["finding_lines"]) == ("success", 1), summary
        # A copy of Debian's job started by cron (where cron is installed) stops at once: one check, not two.
        assert host.run("sh /etc/cron.daily/debsums 2>&1").stdout == ""
    finally:
        host.run(f"mv /root/rdebsums.orig {changed}")
    clean = host.run("timeout 900 systemctl start debsums.service")
    assert clean.rc == 0 and json.loads(host.file("/var/lib/gpubox/audit/debsums.json").content_string)["finding_lines"] == 0


def test_no_failed_units(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", failed


# EC2's metadata service, serving only the budget job's tag (IMDSv2: a token first), for the test.
BUDGET_IMDS = r"""
import http.server
TAG = "/latest/meta-data/tags/instance/gpubox:budget"
class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        self.answer(200, b"stand-in-token")
    def do_GET(self):
        ok = self.path == TAG and self.headers.get("X-aws-ec2-metadata-token") == "stand-in-token"
        self.answer(200, b"86% of $50.00 in 2026-12") if ok else self.answer(404)
http.server.HTTPServer(("127.0.0.1", 18169), Handler).serve_forever()
"""


def test_the_budget_warning_reaches_an_interactive_login(host):
    """The installed checker, pointed at a stand-in metadata service holding the budget job's tag
    (on EC2 it asks 169.254.169.254), leaves the warning that the installed login script shows."""
    written = host.run(f"printf '%s' {shlex.quote(BUDGET_IMDS)} > /tmp/gpubox-budget-imds.py")
    assert written.rc == 0, written.stderr
    config = json.loads(host.file("/etc/gpubox/autostop.json").content_string)
    # Disabled (0): this check must never act on the host, only read the tag.
    test_config = {**config, "imds_url": "http://127.0.0.1:18169", "idle_minutes": 0, "action": ["true"], "warn_command": ["true"]}
    assert host.run(f"printf '%s' {shlex.quote(json.dumps(test_config))} > /tmp/gpubox-budget-check.json").rc == 0
    login = "su alice -s /bin/bash -c 'bash -ilc true'"
    # The timer's own checks (no metadata service in a container) would take the warning away meanwhile.
    assert host.run("systemctl stop gpubox-autostop.timer gpubox-autostop.service").rc == 0
    try:
        started = host.run("systemd-run --unit gpubox-test-imds --collect python3 /tmp/gpubox-budget-imds.py")
        assert started.rc == 0, started.stderr
        host.run("for i in $(seq 50); do python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 18169), 1)' "
                 "2>/dev/null && break; sleep 0.2; done")
        checked = host.run("python3 /usr/local/lib/gpubox/gpubox_autostop.py /tmp/gpubox-budget-check.json")
        assert checked.rc == 0, checked.stdout + checked.stderr
        budget = host.file("/var/lib/gpubox/autostop/budget")
        assert budget.user == "root" and budget.mode == 0o644 and budget.content_string == "86% of $50.00 in 2026-12\n"
        shown = host.run(login)
        assert "gpubox budget: 86% of $50.00 in 2026-12" in shown.stdout, shown.stdout + shown.stderr
        assert "gpubox budget" not in host.run("su alice -s /bin/bash -c true").stdout  # not in scp, rsync or ssh CMD
        # The raise, or a new month, removes the tag: the next check takes the warning away.
        host.run("systemctl stop gpubox-test-imds")
        assert host.run("python3 /usr/local/lib/gpubox/gpubox_autostop.py /tmp/gpubox-budget-check.json").rc == 0
        assert not host.file("/var/lib/gpubox/autostop/budget").exists
        assert "gpubox budget" not in host.run(login).stdout
    finally:
        host.run("systemctl stop gpubox-test-imds; rm -f /tmp/gpubox-budget-imds.py /tmp/gpubox-budget-check.json "
                 "/var/lib/gpubox/autostop/budget; systemctl start gpubox-autostop.timer")
