"""The test hosts of the running molecule scenario, for testinfra test modules.

testinfra reaches them with its native podman backend (fast, no Ansible in the loop); tests
that must behave like a user reach them with real OpenSSH through the published port.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml


def instances() -> list[dict]:
    path = os.environ.get("MOLECULE_INSTANCE_CONFIG", "")
    if not path or not Path(path).exists():
        return []
    return yaml.safe_load(Path(path).read_text()) or []


def testinfra_hosts() -> list[str]:
    return [f"podman://{instance['instance']}" for instance in instances()]


def instance(name: str) -> dict:
    return next(item for item in instances() if item["instance"] == name)


def ssh(name: str, *command: str, user: str | None = None, key: str | None = None,
        extra: tuple[str, ...] = (), stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command on a test host with the real OpenSSH client, as a user would (stdin_text: what
    the command reads, as runner.py sends its remote scripts)."""
    host = instance(name)
    return subprocess.run(
        [
            "ssh", "-p", str(host["port"]), "-i", key or host["identity_file"],
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
            *extra, f"{user or host['user']}@{host['address']}", *command,
        ],
        capture_output=True, text=True, timeout=60, check=False,
        # Never share our stdin with ssh: it switches its descriptors to non-blocking mode, and
        # Ansible run later by molecule refuses non-blocking IO.
        **({"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}),
    )


def run_playbook(name: str, playbook: str | Path, *args: str) -> tuple[str, int]:
    """Run a playbook against one host of the scenario; return its output and its changed count.

    A relative playbook path is taken from the scenario's directory."""
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    path = Path(env["MOLECULE_SCENARIO_DIRECTORY"]) / playbook
    result = subprocess.run(
        ["ansible-playbook", "-i", env["MOLECULE_INVENTORY_FILE"], "--limit", name, *args, str(path)],
        capture_output=True, text=True, timeout=600, check=False, env=env, stdin=subprocess.DEVNULL,
    )
    match = re.search(rf"^{re.escape(name)}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", result.stdout, re.M)
    assert match, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout, int(match.group(1))


def check_mode_changes(name: str) -> int:
    """Run the scenario's converge playbook in --check mode against one host; return its changed count."""
    return run_playbook(name, "converge.yml", "--check")[1]
