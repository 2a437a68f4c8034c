"""A no-change run of site.yml skips every role's body, and still finds and fixes what changed.

One Debian 12 host from the suite's baked image is converged once with the whole site. Then: a
second run skips every body (the host is as each role's last successful run left it, with the same
inputs); hand edits (the sshd configuration, a firewall rule, a data scientist's key, a removed
package) are reported by --check without being touched and fixed by the next run; a pending apply
marker left by a killed run forces its role's body and handler; bad input is refused before
anything changes although every role could otherwise skip; a tagged run does its topic although
nothing drifted.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import bake, containers

pytestmark = pytest.mark.integration

RECAP = re.compile(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRYuq6G2bYG9++XMLwXcv6MUYgvgDUnbnqUrTSYuK3E alice@laptop"
MALLORY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICaSrCWf2MZlrueNgEhCGMOf4wnAPI146Hhaqq5IwNHW mallory"
# The controller's CA store, as the other test runs pass it (pip reaches PyPI through a TLS-inspecting proxy here).
USERS = {"gpubox_users": [{"name": "alice", "ssh_keys": [ALICE]}], "base_ca_certificates_dir": "/usr/local/share/ca-certificates"}
# A body's tasks, shown (ok or changed) only when that body runs.
BODY_TASKS = {
    "base": "base : Write the apt proxy and pip settings",
    "hardening": "hardening : Write sshd_config",
    "ssh_access": "ssh_access : Grant sudo to users",
    "autostop": "autostop : Install the checker, its settings and its timer",
}


def site(host: conftest.TestHost, tmp_path: Path, *args: str, extra: dict | None = None) -> tuple[int, str, tuple[int, ...]]:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), "site.yml",
         "-e", json.dumps({**USERS, **(extra or {})}), *args],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=1800, check=False,
    )
    output = result.stdout + result.stderr
    found = RECAP.search(result.stdout)
    return result.returncode, output, tuple(int(value) for value in found.groups()) if found else ()


def bodies_run(output: str) -> set[str]:
    return {role for role, task in BODY_TASKS.items() if f"TASK [{task}" in output}


def read(host: conftest.TestHost, path: str) -> str:
    result = host.exec("cat", path)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def converged(baked_debian12: str, tmp_path_factory: pytest.TempPathFactory):
    # From the suite's baked image: this module is about runs on a converged host, not the first
    # one (molecule's default scenario converges fresh hosts and re-runs them with the skip). The
    # first run here is a workstation's first from a baked image: its per-instance work.
    host = conftest._start_host(tmp_path_factory, "debian12", image=bake.local_ref(baked_debian12))
    try:
        code, output, recap = site(host, tmp_path_factory.mktemp("first"))
        assert code == 0, output[-4000:]
        # Keep autostop from powering the idle test host off during the module.
        assert host.exec("touch", "/var/lib/gpubox/holds/root").returncode == 0
        yield host
    finally:
        containers.remove(host.name)


def test_no_change_run_skips_every_body(converged, tmp_path):
    code, output, recap = site(converged, tmp_path)
    assert code == 0, output[-4000:]
    assert recap[1] == 0 and recap[3] == 0, output[-4000:]
    assert bodies_run(output) == set(), output[-4000:]
    # The records are root's alone.
    listing = converged.exec("stat", "-c", "%U %a %n", "/var/lib/gpubox/converged/hardening.json")
    assert listing.stdout.split()[:2] == ["root", "600"], listing


def test_hand_edits_are_reported_in_check_mode_and_fixed(converged, tmp_path):
    sshd, nft, keys = "/etc/ssh/sshd_config", "/etc/nftables.conf", "/etc/ssh/authorized_keys/alice"
    before = {path: read(converged, path) for path in (sshd, nft, keys)}
    edits = (
        f"echo 'PermitEmptyPasswords yes' >> {sshd}; "
        f"sed -i 's/^\\(\\s*\\)tcp dport/\\1tcp dport 8443 accept\\n\\1tcp dport/' {nft}; "
        f"echo '{MALLORY}' > {keys}; "
        "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 remove -y -q rsync"
    )
    edited = converged.exec("sh", "-c", edits)
    assert edited.returncode == 0, edited.stderr
    assert read(converged, nft) != before[nft], "the firewall edit did not apply"

    code, output, recap = site(converged, tmp_path, "--check")
    assert code == 0, output[-4000:]
    assert recap[1] > 0, output[-4000:]
    assert {"hardening", "ssh_access"} <= bodies_run(output), output[-4000:]
    assert "PermitEmptyPasswords yes" in read(converged, sshd), "--check changed the host"

    code, output, recap = site(converged, tmp_path)
    assert code == 0, output[-4000:]
    assert recap[1] > 0, output[-4000:]
    assert {path: read(converged, path) for path in (sshd, nft, keys)} == before
    assert converged.exec("dpkg-query", "-W", "-f", "${db:Status-Status}", "rsync").stdout == "installed"
    # Only the roles whose part of the host changed ran their bodies.
    assert "autostop" not in bodies_run(output), output[-4000:]

    code, output, recap = site(converged, tmp_path)
    assert code == 0 and recap[1] == 0, output[-4000:]
    assert bodies_run(output) == set(), output[-4000:]


def test_pending_apply_forces_the_body_and_its_handler(converged, tmp_path):
    # What a run killed between writing sshd_config and reloading sshd leaves behind.
    assert converged.exec("sh", "-c", "echo /etc/ssh/sshd_config > /var/lib/gpubox/pending/hardening-sshd").returncode == 0
    code, output, recap = site(converged, tmp_path)
    assert code == 0, output[-4000:]
    assert "RUNNING HANDLER [hardening : Reload sshd]" in output, output[-4000:]
    assert converged.exec("test", "-e", "/var/lib/gpubox/pending/hardening-sshd").returncode != 0
    assert bodies_run(output) == {"hardening"}, output[-4000:]


def test_bad_input_is_refused_before_anything_changes(converged, tmp_path):
    before = converged.fingerprint()
    for bad, named in (({"hardening_ssh_port": 70000}, "hardening_ssh_port"), ({"autostop_idle_minutes": "soon"}, "autostop_idle_minutes")):
        code, output, recap = site(converged, tmp_path, extra=bad)
        assert code != 0, output[-4000:]
        assert named in output, output[-4000:]
        assert recap[1] == 0, output[-4000:]
    assert converged.fingerprint() == before


def test_tagged_run_does_its_topic(converged, tmp_path):
    code, output, recap = site(converged, tmp_path, "--tags", "hardening_ssh")
    assert code == 0 and recap[1] == 0, output[-4000:]
    assert "TASK [hardening : Write sshd_config" in output, output[-4000:]
