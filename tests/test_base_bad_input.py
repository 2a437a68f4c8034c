"""Bad input to the base role (and a few of the hardening role's) stops the run at the start, names
the variable, and leaves the host exactly as it was."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import PROJECT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

BAD_INPUTS = [
    # (extra vars, what the message must name)
    ({"base_wait_timeout": "soon"}, "base_wait_timeout"),
    ({"base_time_sync": "maybe"}, "base_time_sync"),
    ({"base_packages": {"curl": True}}, "base_packages"),
    ({"base_timezone": "Mars/Olympus_Mons"}, "base_timezone 'Mars/Olympus_Mons'"),
    ({"base_https_proxy": "proxy.corp:3128"}, "base_https_proxy"),
    ({"base_hostname": "gpu_alice"}, "base_hostname must be a host name"),
    ({"base_hostname": "gpu-alice..corp"}, "got 'gpu-alice..corp'"),
    ({"base_hostname": "gpu-" + "a" * 61}, "at most 64"),
    ({"base_ca_certificates": [{"name": "corp root"}]}, "base_ca_certificates"),
    ({"base_ca_certificates": [{"name": "corp", "content": "not a certificate"}]}, "['corp']"),
    ({"base_ca_certificates": [{"name": "corp", "src": "/nonexistent/corp.crt"}]}, "/nonexistent/corp.crt"),
    # The hardening role's log forwarding, checked by the same preflight before any role changes anything.
    ({"hardening_log_forward_host": "logs.corp:514"}, "got 'logs.corp:514'; the port is hardening_log_forward_port"),
    ({"hardening_log_forward_host": "tcp://logs.corp"}, "got 'tcp://logs.corp'"),
    ({"hardening_log_forward_host": "logs.corp", "hardening_log_forward_protocol": "relp"}, "hardening_log_forward_protocol"),
]


@pytest.mark.parametrize(("extra_vars", "named"), BAD_INPUTS, ids=[str(bad[0]) for bad in BAD_INPUTS])
def test_bad_input_fails_early_and_changes_nothing(extra_vars, named, untouched_debian13_host, tmp_path):
    # None of these may change the host, so one untouched host serves them all.
    host = untouched_debian13_host
    before = host.fingerprint()
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), "site.yml",
         "-e", json.dumps(extra_vars)],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert named in output, output[-3000:]
    assert "changed=0" in output, output[-3000:]
    assert host.fingerprint() == before
