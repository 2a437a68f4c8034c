"""What the commands do, without printing: configure a workstation and hook it into SSH."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import re
import subprocess
from pathlib import Path
from typing import TextIO

from gpubox import ansible, contract, ssh
from gpubox.containers import wait_for_ssh
from gpubox.errors import GpuboxError

SITE = "site.yml"
CONTROLLER_CA_DIR = Path("/usr/local/share/ca-certificates")


# Accounts a workstation image or the system already has: never the data scientist's name.
RESERVED_NAMES = {"root", "admin", "ubuntu", "debian", "ec2-user", "daemon", "bin", "sys", "nobody", "sshd"}


def owner_name() -> str:
    """The data scientist's account on their workstation: their local login name when it makes
    a valid, unreserved Linux name, else 'scientist'."""
    name = re.sub(r"[^a-z0-9_-]", "", getpass.getuser().lower())[:32]
    return name if re.fullmatch(r"[a-z_][a-z0-9_-]*", name or "-") and name not in RESERVED_NAMES else "scientist"


def owner_extravars(connection: ssh.Connection) -> dict:
    """Make the person running runner.py the workstation's data scientist (their own key, sudo)."""
    return {contract.OWNER_VAR: {"name": owner_name(), "ssh_keys": [ssh.public_key(connection.key)], "sudo": True}}


def local_extravars() -> dict[str, str]:
    """A local container sits behind the same network as this machine: trust the same extra CAs."""
    if any(CONTROLLER_CA_DIR.glob("*.crt")):
        return {contract.CA_CERTIFICATES_DIR_VAR: str(CONTROLLER_CA_DIR)}
    return {}


def configure(
    connection: ssh.Connection,
    out: TextIO,
    *,
    extravars: dict[str, str] | None = None,
    tags: str | None = None,
    check: bool = False,
) -> ansible.RunResult:
    """Apply site.yml to the workstation; the SSH config entry is written once it is reachable."""
    wait_for_ssh(connection.address, connection.port, timeout=float(os.environ.get("GPUBOX_SSH_WAIT", "300")))
    ssh.write_config_entry(connection)
    result = ansible.run_playbook(
        SITE, [connection], extravars={**owner_extravars(connection), **(extravars or {})}, tags=tags, check=check,
        label=connection.alias, out=out,
    )
    if not result.ok:
        first = result.failures[0]
        raise GpuboxError(
            f"Configuring {connection.alias} failed on {first.host} at task '{first.task}':\n    {first.message}",
            f"Full log: {result.log_path}\n     Fix the cause above and run the same command again; "
            "it picks up where it stopped.",
        )
    if not check and tags is None:
        # From now on `ssh gpubox-NAME` (and VS Code, and the tunnel) is the data scientist; the
        # admin account stays for runner.py's own runs.
        ssh.write_config_entry(dataclasses.replace(connection, user=owner_name()))
    return result


def report_command() -> str:
    """The read-only remote command behind report(): the report, the autostop status, the audit figures."""
    return (f"cat {contract.REPORT_PATH} 2>/dev/null; echo; echo --gpubox--; cat {contract.AUTOSTOP_STATUS_PATH} 2>/dev/null; "
            f"echo; echo --gpubox--; {AUDIT_SUMMARIES}")


def report(alias: str) -> str | None:
    """One line from the workstation's report (contract.REPORT_PATH) over SSH, or None when unreachable."""
    try:
        result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                                 "-o", "LogLevel=ERROR", alias,
                                 report_command()],
                                capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        return None
    report_text, _, rest = result.stdout.partition("--gpubox--")
    autostop_text, _, audit_text = rest.partition("--gpubox--")
    try:
        data = json.loads(report_text)
    except ValueError:
        return None
    try:
        autostop = json.loads(autostop_text) if autostop_text.strip() else {}
    except ValueError:
        autostop = {}
    gpus = ", ".join(data.get("gpus", [])) or "no GPU seen"
    driver = data.get("inputs", {}).get("driver") or "no NVIDIA driver loaded"
    line = (f"TensorFlow {data.get('tensorflow', {}).get('version', '?')} ({'ok' if data.get('ok') else 'FAILED'}), {gpus}, "
            f"driver {driver}, {data.get('matmul', {}).get('gflops', '?')} GFLOP/s")
    audit = audit_line(audit_summaries(audit_text))
    return line + ("\n  " + autostop_line(autostop) if autostop else "") + ("\n  " + audit if audit else "")


# Each audit tool's summary file, one JSON object a line (see contract.AUDIT_SUMMARY_DIR). Last in
# the remote commands, and none may be there yet: the command still succeeds (ssh's own failure,
# 255, is what says the workstation could not be asked).
AUDIT_SUMMARIES = f"cat {contract.AUDIT_SUMMARY_DIR}/*.json 2>/dev/null || true"


def audit_summaries(text: str) -> list[dict]:
    """The summaries in what AUDIT_SUMMARIES printed; a line that is not one is left out."""
    found = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("tool"), str) and isinstance(item.get("finding_lines"), int):
            found.append(item)
    return sorted(found, key=lambda item: item["tool"])


def audit_line(summaries: list[dict]) -> str | None:
    """'audit: chkrootkit 1 line of findings (2026-12-07T03:12:00+00:00)' for IT (and the owner):
    the figures only; the findings are in each tool's journal (`runner.py report` shows them)."""
    if not summaries:
        return None
    parts = []
    for item in summaries:
        count = item["finding_lines"]
        verdict = f"{count} line{'s' if count != 1 else ''} of findings" if count else "no findings"
        failed = "" if item.get("result") == "success" else f", run {item.get('result', 'unknown')}"
        parts.append(f"{item['tool']} {verdict} ({item.get('finished', '?')}{failed})")
    flag = " -> `python runner.py report` shows them" if any(item["finding_lines"] for item in summaries) else ""
    return "audit: " + "; ".join(parts) + flag


def autostop_line(status: dict) -> str:
    """'busy (kernel executing ...)' or 'idle 23 min, stops in 37 min', from the checker's status file."""
    if status.get("idle_limit") == 0:
        return "autostop: off"
    if status.get("busy"):
        return f"autostop: busy ({'; '.join(status.get('reasons', []))})"
    return f"autostop: idle {status.get('idle_minutes', 0):.0f} min, stops in {status.get('stops_in_minutes', 0):.0f} min"
