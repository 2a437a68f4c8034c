"""`plan`: the page is written with no AWS credentials and no network, references nothing outside
itself, and Chromium shows the figures of the bundled price table (checked against hand
calculations here) and controls that follow the settings an inventory changes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from browser import screenshot, shown_text
from conftest import PROJECT, run_env
from gpubox import evidence, settings

NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_CONFIG_FILE": "/nonexistent",
          "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
EXTERNAL = re.compile(r"""(?i)(\b(src|href|action|xlink:href)\s*=\s*["']?\s*(https?:)?//|url\(|@import|<link\b|<script\b|https?://)""")


def plan(home: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = run_env(home)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        env.pop(key, None)
    result = subprocess.run([sys.executable, str(PROJECT / "runner.py"), "plan", "--name", "alice", *options],
                            cwd=home, env={**env, **NO_AWS}, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def inventory_with(tmp_path: Path, settings_yaml: str) -> Path:
    """An IT inventory whose group_vars change some role defaults."""
    (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
    (tmp_path / "inventory" / "hosts.yml").write_text("gpu_workstations:\n  hosts: {}\n")
    (tmp_path / "inventory" / "group_vars" / "gpu_workstations.yml").write_text(settings_yaml)
    return tmp_path / "inventory" / "hosts.yml"


def test_plan_page_shows_prices_and_monthly_figures_without_aws(home, tmp_path):
    page = tmp_path / "plan.html"
    printed = plan(home, "--hours-per-day", "6", "--output", str(page)).stdout
    # By hand: g4dn.xlarge $0.526/h; 6 h of use + 60 idle minutes = 7 h/day; 7 x 30 x 0.526 = 110.46;
    # disk 100 GB x $0.08 = 8.00; expected 118.46. Worst (no uptime cap): 24 x 30 x 0.526 = 378.72 + 8 = 386.72.
    assert "about $118.46 a month at 6 h a day, at most $386.72" in printed
    shown = shown_text(page, tmp_path / "chromium")
    for text in ("gpubox-alice: g4dn.xlarge", "1 x NVIDIA T4 (16 GB)", "$0.526 per hour (on-demand, g4dn.xlarge)",
                 "$118.46: 7 h a day (6 h of use + 60 idle minutes before autostop) x 30 days + disk",
                 "$386.72: 24 h a day x 30 days + disk", "$8.00 (100 GB x $0.08 per GB-month",
                 "100 GB gp3, encrypted", "IMDSv2 only", "SSH (22/tcp) from this machine's public address /32",
                 "a 30-day month", "Expected / month $118.46", "Worst case / month $386.72",
                 "chacha20-poly1305@openssh.com, aes256-gcm@openssh.com", "AllowAgentForwarding no",
                 "powers off after 60 idle minutes", "on a Unix socket only its user can reach (no TCP port)"):
        assert text in shown, f"{text!r} not shown in: {shown}"
    png = screenshot(page, tmp_path / "chromium", tmp_path / "plan.png")
    assert png.stat().st_size > 20_000  # a blank page is a few kB


def test_spot_plan_uses_the_spot_price(home, tmp_path):
    page = tmp_path / "spot.html"
    plan(home, "--instance-type", "g5.xlarge", "--spot", "--hours-per-day", "4", "--idle-stop", "30", "--output", str(page))
    shown = shown_text(page, tmp_path / "chromium")
    # By hand: g5.xlarge spot $0.42/h; 4 h + 30 idle minutes = 4.5 h; 4.5 x 30 x 0.42 = 56.70 + 8.00 = 64.70.
    assert "$0.420 per hour (spot, indicative, g5.xlarge)" in shown
    assert "$64.70: 4.5 h a day" in shown and "1 x NVIDIA A10G (24 GB)" in shown
    assert "powers off after 30 idle minutes" in shown


def test_controls_follow_the_inventory(home, tmp_path):
    inventory = inventory_with(tmp_path, "hardening_ssh_ciphers: [aes256-gcm@openssh.com]\n"
                                         "autostop_idle_minutes: 30\nautostop_max_hours: 10\n"
                                         "hardening_firewall_allowed_tcp_ports: [9100]\n")
    page = tmp_path / "plan.html"
    plan(home, "--inventory", str(inventory), "--hours-per-day", "6", "--output", str(page))
    shown = shown_text(page, tmp_path / "chromium")
    assert re.search(r"SSH ciphers aes256-gcm@openssh\.com SSH MACs", shown), shown
    assert "powers off after 30 idle minutes (warning 5 min ahead), and after 10 h of uptime" in shown
    assert "SSH port 22 open, also TCP 9100" in shown
    # By hand: 6.5 h x 30 x 0.526 = 102.57 + 8 = 110.57; worst capped at 10 h: 10 x 30 x 0.526 = 157.80 + 8 = 165.80.
    assert "$110.57: 6.5 h a day" in shown and "$165.80: 10 h a day" in shown
    assert "autostop_max_hours caps each start at 10 h" in shown
    assert "group_vars/gpu_workstations" in shown


def test_plan_html_references_nothing_outside_itself(home, tmp_path):
    page = tmp_path / "plan.html"
    plan(home, "--output", str(page))
    text = page.read_text()
    assert "<svg" in text and "<style>" in text
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    # The check itself bites on what it must refuse.
    for bad in ('<img src="https://x.example/a.png">', "<style>body{background:url(a.png)}</style>", '<a href="//x.example">'):
        assert EXTERNAL.search(bad)


def test_plan_markdown(home, tmp_path):
    page = tmp_path / "plan.md"
    plan(home, "--format", "md", "--output", str(page))
    text = page.read_text()
    assert "| **Instance** | gpubox-alice: g4dn.xlarge |" in text
    assert "| **Hourly price** | $0.526 per hour (on-demand, g4dn.xlarge) |" in text
    assert "| **Data access** | none: no instance role, no AWS credentials on the workstation (no --data given) |" in text


def test_plan_lists_the_exact_data_access_statements(home, tmp_path):
    page = tmp_path / "plan.md"
    plan(home, "--format", "md", "--output", str(page), "--region", "eu-west-1",
         "--data", "s3://team-data/churn", "--data", "s3://team-scratch/alice:rw")
    rows = [line for line in page.read_text().splitlines() if line.startswith("| **Data access")]
    assert rows[0].startswith("| **Data access** | IAM role and instance profile /gpubox/gpubox-alice-eu-west-1, assumed by EC2 only")
    assert rows[1:] == [
        "| **Data access policy** | Allow s3:ListBucket on arn:aws:s3:::team-data where s3:prefix is churn or churn/* |",
        "| **Data access policy** | Allow s3:GetObject on arn:aws:s3:::team-data/churn/* |",
        "| **Data access policy** | Allow s3:ListBucket on arn:aws:s3:::team-scratch where s3:prefix is alice or alice/* |",
        "| **Data access policy** | Allow s3:GetObject on arn:aws:s3:::team-scratch/alice/* |",
        "| **Data access policy** | Allow s3:PutObject, s3:DeleteObject on arn:aws:s3:::team-scratch/alice/* |",
    ]


def test_plan_refuses_malformed_types_and_bad_hours(home):
    """A type gpubox has no price for is priced "unknown" (tests/test_plan_truth.py); one that is no
    EC2 type at all is refused, as provision refuses it."""
    env = {**run_env(home), **NO_AWS}
    for options, words in ((["--instance-type", "m5"], "--instance-type 'm5' is not an EC2 instance type"),
                           (["--hours-per-day", "25"], "--hours-per-day 25")):
        result = subprocess.run([sys.executable, str(PROJECT / "runner.py"), "plan", *options], cwd=home, env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2 and words in result.stderr, result.stderr


def test_settings_precedence(tmp_path):
    """Role defaults < inventory all < project all < inventory gpu_workstations < extra vars, as Ansible orders them."""
    inventory = tmp_path / "inv"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "a.yml").write_text("base_timezone: Europe/Paris\nautostop_warn_minutes: 9\n")
    (inventory / "group_vars" / "gpu_workstations.yml").write_text("autostop_idle_minutes: 45\nssh_access_group: ds\n")
    # A project whose group_vars/all sets the time zone (the real one repeats no role default).
    project = tmp_path / "project"
    (project / "group_vars" / "all").mkdir(parents=True)
    (project / "group_vars" / "all" / "main.yml").write_text("base_timezone: Etc/UTC\n")
    (project / "roles").symlink_to(settings.PROJECT / "roles")
    loaded = settings.load(inventory, {"autostop_idle_minutes": 15}, project=project)
    assert loaded.get("base_timezone") == "Etc/UTC"  # the project's group_vars/all wins over the inventory's all
    assert settings.load(inventory).get("base_timezone") == "Europe/Paris"  # and the inventory's all over a default
    assert loaded.get("autostop_warn_minutes") == 9
    assert loaded.get("autostop_idle_minutes") == 15
    assert loaded.get("hardening_ssh_allow_groups") == ["sudo", "ds"]  # templates resolved against the merge
    assert settings.load().get("hardening_ssh_allow_groups") == ["sudo", "gpubox"]


def test_evidence_flags_algorithms_outside_the_configured_list():
    found = evidence.parse("@@gpubox:sshd@@\nciphers aes128-cbc,aes256-gcm@openssh.com\nmacs hmac-sha2-256-etm@openssh.com\n"
                           "allowgroups sudo\nallowgroups gpubox\n@@gpubox:users@@\nuser alice alice,gpubox\n"
                           "sudo (ALL) NOPASSWD: ALL\nkey 256 SHA256:abc alice@laptop (ED25519)\n@@gpubox:end@@\n")
    sections = {section.title: section for section in evidence.sections(
        found, {"ciphers": ["aes256-gcm@openssh.com"], "macs": ["hmac-sha2-256-etm@openssh.com"]}, None)}
    rows = {row.label: row.value for row in sections["SSH server (sshd -T)"].rows}
    assert rows["ciphers"].endswith("(NOT configured: aes128-cbc)")
    assert rows["macs"].endswith("(all within the configured list)")
    assert rows["allowgroups"] == "sudo gpubox"
    users = sections["Users and SSH keys (sudo and data scientist groups)"].rows
    assert users[0].label == "alice" and users[0].value == "groups alice, gpubox; sudo (ALL) NOPASSWD: ALL; key SHA256:abc alice@laptop (ED25519)"


def test_evidence_lists_autostop_stops_with_their_reasons():
    found = evidence.parse(
        "@@gpubox:autostop@@\n@@gpubox:history@@\n"
        "2026-11-20T18:02:11+0000 gpubox-ws1 python3[912]: autostop: idle 61 min: no kernel activity since 17:01 UTC, "
        "GPU 0%, CPU 0.02 cores; stopping now\n"
        "2026-11-22T09:30:40+0000 gpubox-ws1 python3[415]: autostop: running 12 h, the most allowed; stopping now\n"
        "@@gpubox:end@@\n")
    section = next(item for item in evidence.sections(found, {}, "idle 3 min, stops in 57 min") if item.title == "Autostop")
    rows = {row.label: row.value for row in section.rows}
    assert rows["Status"] == "idle 3 min, stops in 57 min"
    assert rows["Stop at 2026-11-20T18:02:11+0000"] == "idle 61 min: no kernel activity since 17:01 UTC, GPU 0%, CPU 0.02 cores"
    assert rows["Stop at 2026-11-22T09:30:40+0000"] == "running 12 h, the most allowed"
    assert len(section.rows) == 3
    quiet = next(item for item in evidence.sections(evidence.parse("@@gpubox:history@@\n@@gpubox:end@@\n"), {}, None)
                 if item.title == "Autostop")
    assert [(row.label, row.value) for row in quiet.rows][1] == ("Stops, last 30 days", "none")
