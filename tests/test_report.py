"""`report` against a converged test host: a fresh container given only the playbooks base,
hardening and ssh_access (the GPU, Jupyter and autostop roles are left out to stay fast; the page
then says there is no TensorFlow report and no autostop status). Chromium shows what sshd offers,
the listening sockets, the firewall policy and the owner's key fingerprint; nothing secret."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from browser import screenshot, shown_text
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import contract, ssh

pytestmark = pytest.mark.integration

PLAYBOOKS = ["playbooks/base.yml", "playbooks/hardening.yml", "playbooks/ssh_access.yml"]


def test_report_shows_evidence_from_a_converged_host(fresh_debian12_host, home, tmp_path):
    host = fresh_debian12_host
    owner_key = tmp_path / "owner"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "owner@laptop", "-f", str(owner_key)], check=True)
    owner = {"name": "scientist", "ssh_keys": [owner_key.with_suffix(".pub").read_text().strip()], "sudo": True}
    converged = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), *PLAYBOOKS,
         "-e", json.dumps({contract.OWNER_VAR: owner})],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=900, check=False)
    assert converged.returncode == 0, converged.stdout[-4000:] + converged.stderr[-2000:]
    # The entry `provision` leaves behind: the data scientist, logging in with their own key.
    ssh.write_config_entry(ssh.Connection(alias=contract.alias("rep"), address="127.0.0.1", port=host.port,
                                          user="scientist", key=owner_key))
    page = tmp_path / "report.html"
    result = subprocess.run([sys.executable, str(PROJECT / "runner.py"), "report", "--name", "rep", "--output", str(page)],
                            cwd=home, env=run_env(home), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = shown_text(page, tmp_path / "chromium")
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(owner_key.with_suffix(".pub"))], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    for text in ("gpubox report: workstation rep", "Debian GNU/Linux 12",
                 "passwordauthentication no", "allowgroups sudo gpubox", "allowagentforwarding no", "permitrootlogin no",
                 "ciphers chacha20-poly1305@openssh.com, aes256-gcm@openssh.com", "(all within the configured list)",
                 "hostkeyalgorithms ssh-ed25519, ssh-ed25519-cert-v01@openssh.com",
                 "0.0.0.0:22 listening (TCP)", "inet gpubox policy type filter hook input priority filter; policy drop;",
                 "inet gpubox accepts tcp dport 22 ct state new accept",
                 f"scientist groups scientist, gpubox; sudo (ALL) NOPASSWD: ALL; key {fingerprint} owner@laptop (ED25519)",
                 "admin groups admin, sudo; sudo (ALL : ALL) ALL",
                 "Pending security updates", "no report: the GPU roles have not run here",
                 f"no status yet ({contract.AUTOSTOP_STATUS_PATH} missing)",
                 "not an EC2 workstation provisioned from this machine", "powers off after 60 idle minutes"):
        assert text in shown, f"{text!r} not shown in: {shown}"
    assert "NOT configured" not in shown
    screenshot(page, tmp_path / "chromium", tmp_path / "report.png")  # kept in pytest's tmp dir, to look at
    secrets = ("PRIVATE KEY", owner_key.read_text().splitlines()[1], "token=")
    assert not any(secret in page.read_text() for secret in secrets)
