"""Drift the roles fixed on every run before the no-change skip is still fixed by the next run.

site.yml is also IT's compliance run: a hand change that a role's body would undo must make that
role run its body, or it survives every later run. One Debian 12 host is converged once; hand
changes that a record did not watch are made together, with nothing watched drifting beside them
(that would run the body anyway); one site.yml run must undo them all, and the run after it skips
again (the new watches are stable). tensorflow and jupyter are not involved.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import conftest
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import containers

pytestmark = pytest.mark.integration

RECAP = re.compile(r"^\S+\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
ALICE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRYuq6G2bYG9++XMLwXcv6MUYgvgDUnbnqUrTSYuK3E alice@laptop"
INPUTS = {"gpubox_users": [{"name": "alice", "ssh_keys": [ALICE]}], "base_ca_certificates_dir": "/usr/local/share/ca-certificates"}
SKIP = ["--skip-tags", "tensorflow,jupyter"]
LINGER = "/var/lib/systemd/linger/admin"


def site(host: conftest.TestHost, tmp_path: Path) -> tuple[int, str, tuple[int, ...]]:
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(host.inventory(tmp_path / "hosts.yml")), "site.yml",
         "-e", json.dumps(INPUTS), *SKIP],
        cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=1800, check=False,
    )
    found = RECAP.search(result.stdout)
    return result.returncode, result.stdout + result.stderr, tuple(int(value) for value in found.groups()) if found else ()


def bodies_run(output: str) -> set[str]:
    return set(re.findall(r"^TASK \[(\w+) : Record what the body left", output, re.M))


def mode(host: conftest.TestHost, path: str) -> str:
    result = host.exec("stat", "-c", "%a %U:%G", path)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def converged(tmp_path_factory: pytest.TempPathFactory):
    host = conftest._start_host(tmp_path_factory, "debian12")
    try:
        # The login account lingers before base's first run (an image that enables it): base
        # then writes no linger file, so its config_files ledger does not hold one.
        assert host.exec("sh", "-c", f"mkdir -p /var/lib/systemd/linger && touch {LINGER}").returncode == 0
        code, output, _ = site(host, tmp_path_factory.mktemp("first"))
        assert code == 0, output[-4000:]
        # Keep autostop from powering the idle test host off during the module.
        assert host.exec("touch", "/var/lib/gpubox/holds/root").returncode == 0
        yield host
    finally:
        containers.remove(host.name)


def test_hand_changes_the_roles_enforce_are_undone_by_one_run(converged, tmp_path):
    edits = (
        # A compiler installed by hand (make install): hardening restricts every listed compiler.
        "printf '#!/bin/sh\\n' > /usr/local/bin/tcc && chmod 0755 /usr/local/bin/tcc && "
        # base keeps the login account's user manager running (containers).
        f"rm {LINGER}"
    )
    edited = converged.exec("sh", "-c", edits)
    assert edited.returncode == 0, edited.stderr

    code, output, recap = site(converged, tmp_path)
    assert code == 0, output[-4000:]
    assert recap[1] > 0, output[-4000:]
    assert mode(converged, "/usr/local/bin/tcc") == "750 root:gpubox", output[-4000:]
    assert "/usr/local/bin/tcc" in converged.exec("dpkg-statoverride", "--list").stdout
    assert converged.exec("test", "-f", LINGER).returncode == 0, output[-4000:]
    # Only the roles that own a change ran (ssh_access looks at the linger directory after base).
    assert bodies_run(output) == {"hardening", "base"}, output[-4000:]

    # What the fix left is recorded: the next run skips every body again.
    code, output, recap = site(converged, tmp_path)
    assert code == 0 and recap[1] == 0, output[-4000:]
    assert "Record what the body left" not in output, output[-4000:]
