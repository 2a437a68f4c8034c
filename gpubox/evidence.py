"""`report`: evidence read from a running workstation over its SSH entry, read-only.

One SSH session runs a fixed shell script (sent on stdin) whose sections are parsed here. sudo
is used non-interactively (`sudo -n`) for what only root may read (sshd's effective settings, the
firewall); each user's authorized keys are fingerprinted as that user, so root never opens a
file in a home. Nothing secret is read: no token, no private key, only public-key fingerprints.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass

from gpubox import contract, ssh
from gpubox.document import Row, Section

MARK = "@@gpubox:"
# The periodic audit tools whose findings the hardening role sends to the journal (no mail transport).
AUDIT_UNITS = ("chkrootkit.service", "dailyaidecheck.service", "debsums.service")
AUDIT_LINES = 40
SSHD_KEYS = ("port", "permitrootlogin", "passwordauthentication", "kbdinteractiveauthentication", "authenticationmethods",
             "allowgroups", "allowtcpforwarding", "allowagentforwarding", "x11forwarding", "permittunnel",
             "kexalgorithms", "ciphers", "macs", "hostkeyalgorithms", "pubkeyacceptedalgorithms")


def script(group: str) -> str:
    """The remote shell script; `group` is the data scientists' group (ssh_access_group)."""
    keys = "|".join(SSHD_KEYS)
    return f"""export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
# Each mark on a line of its own, also after a file without a final newline (status.json).
mark() {{ printf '\\n%s\\n' "{MARK}$1@@"; }}
mark os; . /etc/os-release 2>/dev/null; echo "${{PRETTY_NAME:-unknown}} (kernel $(uname -r))"
mark sshd; sudo -n sshd -T 2>/dev/null | grep -E '^({keys}) '
mark listen; ss -ltnH 2>/dev/null
mark nft; sudo -n nft list ruleset 2>/dev/null | grep -E '^table|chain [a-z_]+ |policy|dport|ct state new'
mark users
for user in $(getent group sudo {shlex.quote(group)} | cut -d: -f4 | tr , ' ' | tr ' ' '\\n' | sort -u); do
  home=$(getent passwd "$user" | cut -d: -f6)
  echo "user $user $(id -nG "$user" | tr ' ' ,)"
  sudo -n -l -U "$user" 2>/dev/null | sed -n 's/^ *(/sudo (/p'
  # A data scientist's keys are IT's file in /etc; the admin's are in its home, read as that user.
  if [ -f "/etc/ssh/authorized_keys/$user" ]; then ssh-keygen -lf "/etc/ssh/authorized_keys/$user" 2>/dev/null | sed 's/^/key /'
  elif id -nG "$user" | tr ' ' '\n' | grep -qx {shlex.quote(group)}; then echo "key none (no IT key file: cannot log in)"
  else sudo -n -u "$user" ssh-keygen -lf "$home/.ssh/authorized_keys" 2>/dev/null | sed 's/^/key /'; fi
done
mark updates; apt-get -s -o Debug::NoLocking=1 dist-upgrade 2>/dev/null | grep '^Inst '
mark report; cat {contract.REPORT_PATH} 2>/dev/null
mark autostop; cat {contract.AUTOSTOP_STATUS_PATH} 2>/dev/null
mark audit
for unit in {" ".join(AUDIT_UNITS)}; do
  # The last run's own output (its invocation), where the role sends the tool's findings.
  # sudo: without D-Bus (a minimal image) only root reaches systemd.
  echo "run $unit $(sudo -n systemctl show -p LoadState -p ConditionResult -p Result -p ExecMainExitTimestamp "$unit" 2>/dev/null | tr '\\n' '|')"
  id=$(sudo -n systemctl show -p InvocationID --value "$unit" 2>/dev/null)
  [ -n "$id" ] && sudo -n journalctl "_SYSTEMD_INVOCATION_ID=$id" -o cat --no-pager 2>/dev/null | tail -n {AUDIT_LINES} | sed "s/^/line $unit /"
done
mark history; sudo -n journalctl -u gpubox-autostop --no-pager -o short-iso --since -30d 2>/dev/null | grep 'autostop: .*; stopping now$' | tail -n 20
mark end
"""


@dataclass(frozen=True)
class Evidence:
    sections: dict[str, list[str]]

    def lines(self, name: str) -> list[str]:
        return self.sections.get(name, [])


def parse(output: str) -> Evidence:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in output.splitlines():
        match = re.fullmatch(rf"{re.escape(MARK)}([a-z]+)@@", line.strip())
        if match:
            current = match.group(1)
            sections[current] = []
        elif current and line.strip():
            sections[current].append(line.rstrip())
    return Evidence(sections)


def collect(alias: str, group: str, timeout: float = 120) -> Evidence | None:
    """Run the script through `ssh ALIAS`; None when the workstation cannot be reached."""
    try:
        result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                                 "-o", "LogLevel=ERROR", alias, "sh", "-s"],
                                input=script(group), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    found = parse(result.stdout)
    return found if "end" in found.sections else None


def _sshd(evidence: Evidence, configured: dict[str, list[str]]) -> Section:
    values: dict[str, str] = {}
    for line in evidence.lines("sshd"):
        key, _, value = line.partition(" ")
        # sshd -T prints some settings (allowgroups) once per value.
        values[key] = f"{values[key]} {value}" if key in values else value
    if not values:
        return Section("SSH server (sshd -T)", [Row("sshd -T", "not readable (no passwordless sudo for this login)")])
    rows = []
    for key in SSHD_KEYS:
        if key not in values:
            continue
        value = values[key].replace(",", ", ")
        wanted = configured.get(key)
        if wanted is not None:
            offered = values[key].split(",")
            verdict = "all within the configured list" if set(offered) <= set(wanted) else \
                "NOT configured: " + ", ".join(sorted(set(offered) - set(wanted)))
            value = f"{', '.join(offered)} ({verdict})"
        rows.append(Row(key, value))
    return Section("SSH server (sshd -T)", rows)


def _firewall(evidence: Evidence) -> Section:
    lines = evidence.lines("nft")
    if not lines:
        return Section("Firewall (nft list ruleset)", [Row("ruleset", "not readable, or empty")])
    rows, table = [], ""
    for line in lines:
        text = line.strip().rstrip("{").strip()
        if text.startswith("table"):
            table = text.removeprefix("table ")
        elif "policy" in text:
            rows.append(Row(f"{table} policy", text))
        elif "dport" in text:
            rows.append(Row(f"{table} accepts", text))
    return Section("Firewall (nft list ruleset)", rows)


def _users(evidence: Evidence) -> Section:
    rows: list[Row] = []
    for line in evidence.lines("users"):
        kind, _, rest = line.partition(" ")
        if kind == "user":
            name, _, groups = rest.partition(" ")
            rows.append(Row(name, f"groups {groups.replace(',', ', ')}"))
        elif kind == "sudo" and rows:
            rows[-1] = Row(rows[-1].label, f"{rows[-1].value}; sudo {rest}")
        elif kind == "key" and rows:
            fields = rest.split()  # bits, fingerprint, comment words, (type)
            shown = " ".join(fields[1:]) if len(fields) >= 3 else rest
            rows[-1] = Row(rows[-1].label, f"{rows[-1].value}; key {shown}")
    return Section("Users and SSH keys (sudo and data scientist groups)", rows or [Row("users", "none found")],
                   "sudo rules as `sudo -l -U USER` lists them; a user without a sudo entry has no sudo.")


def _updates(evidence: Evidence) -> Section:
    pending = evidence.lines("updates")
    security = [line.split()[1] for line in pending if "security" in line.lower()]
    rows = [Row("Pending security updates", f"{len(security)}" + (f": {', '.join(security[:15])}" if security else "")),
            Row("Pending updates, all", str(len(pending)))]
    return Section("Updates (apt, as of the last package list refresh)", rows)


def _gpu(evidence: Evidence) -> Section:
    text = "\n".join(evidence.lines("report"))
    try:
        report = json.loads(text) if text else None
    except ValueError:
        report = None
    if not isinstance(report, dict):
        return Section("Driver and TensorFlow", [Row(contract.REPORT_PATH, "no report: the GPU roles have not run here")])
    rows = [
        Row("TensorFlow", f"{report.get('tensorflow', {}).get('version', '?')} ({'ok' if report.get('ok') else 'FAILED'})"),
        Row("GPUs seen", ", ".join(report.get("gpus", [])) or "none"),
        Row("NVIDIA driver", report.get("inputs", {}).get("driver") or "none loaded"),
        Row("Matrix multiply", f"{report.get('matmul', {}).get('gflops', '?')} GFLOP/s"),
    ]
    return Section("Driver and TensorFlow", rows)


def _audit(evidence: Evidence) -> Section:
    """Each audit tool's last run (since boot) and what it printed: its findings, as the hardening
    role configures it (chkrootkit -q prints only findings; AIDE reports only differences)."""
    rows: list[Row] = []
    findings: dict[str, list[str]] = {}
    for line in evidence.lines("audit"):
        kind, _, rest = line.partition(" ")
        unit, _, text = rest.partition(" ")
        if kind == "line":
            findings.setdefault(unit, []).append(text.strip())
    for line in evidence.lines("audit"):
        kind, _, rest = line.partition(" ")
        if kind != "run":
            continue
        unit, _, state = rest.partition(" ")
        # KEY=VALUE pairs: systemctl prints properties in its own order, not the order asked.
        values = dict(item.partition("=")[::2] for item in state.split("|") if "=" in item)
        load, condition, result, finished = (values.get(key, "") for key in
                                             ("LoadState", "ConditionResult", "Result", "ExecMainExitTimestamp"))
        tool = unit.removesuffix(".service")
        if load != "loaded":
            rows.append(Row(tool, "not installed"))
        elif not finished:
            rows.append(Row(tool, "not run since boot" if condition != "no" else
                            "skipped at its last start: its condition is not met (AIDE: no database, as in a container)"))
        else:
            lines = findings.get(unit, [])
            verdict = f"{len(lines)} line(s) of findings" if lines else "no findings"
            rows.append(Row(tool, f"last run {finished}: {'ok' if result == 'success' else result}, {verdict}"))
            rows.extend(Row(f"{tool} finding", text) for text in lines)
    return Section("Audit tools (last run)", rows or [Row("audit tools", "not readable (no passwordless sudo for this login)")],
                   "Findings are in the journal of each tool's service; docs/audit.md says how to forward them.")


def _autostop(evidence: Evidence, line: str | None) -> Section:
    """Its state now and the stops of the last 30 days with their reasons (the checker's journal
    lines carry reason codes and names only)."""
    rows = [Row("Status", line or f"no status yet ({contract.AUTOSTOP_STATUS_PATH} missing)")]
    stops = [entry for entry in evidence.lines("history") if "autostop: " in entry]
    for entry in stops:
        moment, _, message = entry.partition(" ")
        rows.append(Row(f"Stop at {moment}", message.split("autostop: ", 1)[1].removesuffix("; stopping now")))
    if not stops:
        rows.append(Row("Stops, last 30 days", "none"))
    return Section("Autostop", rows)


def autostop_status(evidence: Evidence) -> dict:
    text = "\n".join(evidence.lines("autostop"))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def sections(evidence: Evidence, configured: dict[str, list[str]], autostop_line: str | None) -> list[Section]:
    listening = evidence.lines("listen")
    sockets = [Row(fields[3], "listening (TCP)") for fields in (line.split() for line in listening) if len(fields) >= 4]
    return [
        Section("System", [Row("Operating system", " ".join(evidence.lines("os")) or "unknown")]),
        _sshd(evidence, configured),
        Section("Listening TCP sockets (ss -ltn)", sockets or [Row("sockets", "none")],
                "Addresses on 127.0.0.1 / [::1] are reachable only from the workstation itself."),
        _firewall(evidence),
        _users(evidence),
        _updates(evidence),
        _gpu(evidence),
        _audit(evidence),
        _autostop(evidence, autostop_line),
    ]
