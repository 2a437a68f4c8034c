"""`runner.py status` for every workstation the user has: local containers and SSH hosts (from
their SSH entries) as well as EC2 instances (from AWS, through commands.lifecycle).

Each reachable workstation is asked, over its own SSH entry and read-only, for its report
(TensorFlow, GPUs), its autostop state and whether the user's JupyterLab answers. Text for
people, --json for scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from gpubox import contract, ssh, validate, workstation
from gpubox.cloud import aws, budget, cleanup, data_role, deadman, ec2, ownership, records, snapshots
from gpubox.commands import lifecycle
from gpubox.errors import GpuboxError

SEPARATOR = "--gpubox--"
# Read-only, as the data scientist: the report, the autostop status, and whether their JupyterLab
# service runs and answers HTTP on its Unix socket (GET /api needs no token).
PROBE = (
    f"cat {contract.REPORT_PATH} 2>/dev/null; echo; echo {SEPARATOR}; "
    f"cat {contract.AUTOSTOP_STATUS_PATH} 2>/dev/null; echo; echo {SEPARATOR}; "
    'me=$(id -un); systemctl is-active "jupyter@$me.service" 2>/dev/null; '
    'python3 -c "import http.client as h, socket as s, sys; c = h.HTTPConnection(\'localhost\', timeout=3); '
    "c.sock = s.socket(s.AF_UNIX); c.sock.settimeout(3); c.sock.connect(sys.argv[1]); c.request('GET', '/api'); "
    f'sys.exit(c.getresponse().status != 200)" "{contract.jupyter_socket("$me")}" 2>/dev/null && echo answers; '
    f"echo; echo {SEPARATOR}; {workstation.AUDIT_SUMMARIES}"
)


@dataclass
class Health:
    """What a workstation says about itself; all None/unknown when it could not be asked."""
    reachable: bool = False
    jupyter: str = "unknown"  # ready, starting, not running, unknown
    report: dict[str, Any] | None = None
    autostop: dict[str, Any] | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Row:
    name: str
    kind: str  # local, host, ec2
    state: str
    address: str
    health: Health = field(default_factory=Health)
    ec2: dict[str, Any] | None = None


def parse_probe(stdout: str) -> Health:
    parts = stdout.split(SEPARATOR)
    while len(parts) < 4:
        parts.append("")
    report, autostop = (_json_object(part) for part in parts[:2])
    jupyter_lines = parts[2].split()
    if "answers" in jupyter_lines:
        jupyter = "ready"
    elif jupyter_lines[:1] in (["active"], ["activating"]):
        jupyter = "starting"
    else:
        jupyter = "not running"
    return Health(reachable=True, jupyter=jupyter, report=report, autostop=autostop, audit=workstation.audit_summaries(parts[3]))


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def probe(alias: str) -> Health:
    """Ask the workstation over its SSH entry (a few seconds at most)."""
    try:
        result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                                 "-o", "LogLevel=ERROR", alias, PROBE],
                                capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Health()
    return parse_probe(result.stdout) if result.returncode == 0 else Health()


@dataclass(frozen=True)
class Entry:
    """A workstation's SSH entry, as gpubox wrote it."""
    name: str
    address: str
    port: int


def ssh_entries(name: str | None = None) -> list[Entry]:
    """Local containers and SSH hosts set up on this machine (EC2 ones have a record and are AWS's)."""
    found = []
    for path in sorted(ssh.entries_dir().glob(f"{contract.RESOURCE_PREFIX}*.conf")):
        entry_name = path.name.removesuffix(".conf").removeprefix(contract.RESOURCE_PREFIX)
        if (name and entry_name != name) or records.record_path(entry_name).exists():
            continue
        text = path.read_text()
        address = re.search(r"^\s*HostName\s+(\S+)", text, re.MULTILINE)
        port = re.search(r"^\s*Port\s+(\d+)", text, re.MULTILINE)
        found.append(Entry(entry_name, address.group(1) if address else "?", int(port.group(1)) if port else 22))
    return found


def container_state(alias: str) -> str | None:
    """The podman state of gpubox's local workstation container of that name; None when there is none."""
    if shutil.which("podman") is None:
        return None
    result = subprocess.run(["podman", "container", "inspect", "--format", '{{.State.Status}} {{index .Config.Labels "gpubox"}}',
                             alias], capture_output=True, text=True, check=False)
    state, _, label = result.stdout.strip().partition(" ")
    return state if result.returncode == 0 and label == "workstation" else None


def on_this_machine(name: str | None, *, ask: Callable[[str], Health] | None = None,
                    container: Callable[[str], str | None] | None = None) -> list[Row]:
    """Rows for the local containers and SSH hosts; each running one is asked how it is."""
    ask, container = ask or probe, container or container_state
    rows = []
    for entry in ssh_entries(name):
        alias = contract.alias(entry.name)
        state = container(alias)
        kind = "local" if state is not None else "host"
        health = ask(alias) if state in (None, "running") else Health()
        if kind == "host":
            state = "reachable" if health.reachable else "unreachable"
        rows.append(Row(entry.name, kind, state, f"{entry.address}:{entry.port}", health))
    return rows


def on_ec2(region: str | None, name: str | None, *, everyone: bool = False, now: datetime | None = None,
           ask: Callable[[str], Health] | None = None, where_to_look: list[str] | None = None) -> list[Row]:
    """Rows for the EC2 instances AWS lists (for --json), with their price and cost so far: the
    caller's in every region they provisioned in, or everyone's (IT)."""
    now, ask = now or datetime.now(timezone.utc), ask or probe
    where_to_look = where_to_look or lifecycle.status_regions(region, everyone=everyone)
    me = ownership.caller(where_to_look[0])
    rows = []
    for where in where_to_look:
        for item in aws.workstations(where, name):
            if not everyone and item.owner != me.owner:
                continue
            price = item.hourly_price()
            hours = item.hours_up(now)
            alias = contract.alias(item.name)
            # Asked only through the SSH entry provision wrote: never an address nothing of ours set up.
            asked = item.state == "running" and item.owner == me.owner and ssh.config_entry_path(alias).exists()
            rows.append(Row(item.name, "ec2", item.state, item.public_ip, ask(alias) if asked else Health(),
                            {"instance_id": item.instance_id, "instance_type": item.instance_type, "zone": item.zone,
                             "region": where, "owner": item.owner, "hours_up": round(hours, 2),
                             "hourly_price_usd": price, "cost_so_far_usd": round(price * hours, 2) if price is not None else None,
                             "deadman_deadline": _iso(deadman.deadline(item.tags, item.state, item.launched)),
                             "data_access": data_role.status_line(where, item.name, item.instance_id).removeprefix("data access: "),
                             "spot_interrupted": cleanup.interrupted(item),
                             "stopped_since": since.isoformat() if (since := cleanup.stopped_since(item)) else None}))
    return rows


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def autostop_fields(checked: dict[str, Any] | None) -> dict[str, Any] | None:
    """The checker's status file as fields (workstation.autostop_line is the same, in words)."""
    if checked is None:
        return None
    state = "off" if checked.get("idle_limit") == 0 else "busy" if checked.get("busy") else "idle"
    return {"state": state, "idle_minutes": checked.get("idle_minutes"), "stops_in_minutes": checked.get("stops_in_minutes"),
            "idle_limit_minutes": checked.get("idle_limit"), "reasons": list(checked.get("reasons", []))}


def snapshot_fields(region: str, snap: snapshots.Snapshot) -> dict[str, Any]:
    return {"snapshot_id": snap.snapshot_id, "name": snap.name, "region": region, "size_gb": snap.size_gb, "state": snap.state,
            "started": _iso(snap.started), "monthly_cost_usd": round(snapshots.monthly_cost(snap.size_gb, region), 2)}


def describe(row: Row) -> Iterator[str]:
    """A local or host workstation in the form `status` shows EC2 ones: a line, then the details."""
    what = "local container" if row.kind == "local" else "SSH host"
    jupyter = f", Jupyter {row.health.jupyter}" if row.health.reachable else ""
    yield f"{row.name}: {row.state}, {what} at {row.address}{jupyter}"
    if row.health.report:
        yield f"  {report_line(row.health.report)}"
    if row.health.autostop:
        yield f"  {workstation.autostop_line(row.health.autostop)}"
    if audit := workstation.audit_line(row.health.audit):
        yield f"  {audit}"


def report_line(report: dict[str, Any]) -> str:
    gpus = ", ".join(report.get("gpus", [])) or "no GPU seen"
    return (f"TensorFlow {report.get('tensorflow', {}).get('version', '?')} ({'ok' if report.get('ok') else 'FAILED'}), "
            f"{gpus}, {report.get('matmul', {}).get('gflops', '?')} GFLOP/s")


def as_json(row: Row) -> dict[str, Any]:
    """A row for scripts: the report's summary, never its whole content."""
    report = row.health.report
    data: dict[str, Any] = {
        "name": row.name, "kind": row.kind, "state": row.state, "address": row.address, "ssh": contract.alias(row.name),
        "reachable": row.health.reachable, "jupyter": row.health.jupyter,
        "autostop": autostop_fields(row.health.autostop),
        "audit": [{key: item.get(key) for key in ("tool", "finished", "result", "finding_lines")} for item in row.health.audit],
        "tensorflow": None if report is None else {
            "ok": bool(report.get("ok")), "version": report.get("tensorflow", {}).get("version"),
            "gpus": report.get("gpus", []), "gflops": report.get("matmul", {}).get("gflops")},
    }
    if row.ec2 is not None:
        data.update(row.ec2)
    return data


def text(region: str | None, name: str | None, *, local_only: bool = False, everyone: bool = False,
         ec2_lines: Callable[[str | None, str | None], Iterator[str]] | None = None) -> Iterator[str]:
    """`status` as text: local containers and SSH hosts, then EC2 as commands.lifecycle shows it.
    Without any local or host workstation an AWS failure is the error it always was. A broken
    local record is one line with its fix, and the rest is listed all the same."""
    name = validate.optional_name(name)
    rows = on_this_machine(name)
    if name and not rows and not local_only:
        must_exist(region, name)
    for row in rows:
        yield from describe(row)
    for broken in records.read_records()[1]:
        if not name or broken.name == name:
            yield broken.line()
    if local_only:
        if not rows and name:
            raise missing(name)
        if not rows:
            yield "No local or SSH-host workstations set up on this machine."
        return
    try:
        if ec2_lines:
            yield from ec2_lines(region, name)
        else:
            yield from lifecycle.status(region, name, everyone=everyone)
    except GpuboxError as error:
        if not rows:
            raise
        yield f"EC2: not listed: {error.message} -> {error.fix}"
    yield from ([] if everyone else budget.status_lines(region))  # the team policy's budget (gpubox/cloud/budget.py)


def as_document(region: str | None, name: str | None, *, local_only: bool = False, everyone: bool = False) -> dict[str, Any]:
    """`status --json`: every workstation, why EC2 could not be listed, if it could not, and the
    local records that are broken or stale (one line each)."""
    name = validate.optional_name(name)
    rows = on_this_machine(name)
    error = None
    problems = [broken.line() for broken in records.read_records()[1] if not name or broken.name == name]
    searched: list[str] = []
    kept: list[dict[str, Any]] = []
    if not local_only:
        try:
            searched = lifecycle.status_regions(region, everyone=everyone)
            found = on_ec2(region, name, everyone=everyone, where_to_look=searched)
            rows += found
            problems += ec2.stale_lines([aws_row(row) for row in found], searched, name)
            owner = None if everyone else ownership.caller(searched[0]).owner
            kept = [snapshot_fields(where, snap) for where in searched for snap in snapshots.listed(where, owner, name)]
        except GpuboxError as failure:
            error = {"message": failure.message, "fix": failure.fix}
    return {"workstations": [as_json(row) for row in rows], "snapshots": kept, "ec2_error": error, "record_problems": problems,
            "regions": searched, "region": None if local_only else aws.region_name(region)}


def missing(name: str) -> GpuboxError:
    return GpuboxError(f"No workstation named '{name}': none on this machine, none of yours on EC2, and no snapshot of it.",
                       "`python runner.py status` lists what you have.")


def must_exist(region: str | None, name: str) -> None:
    """`status --name NAME` of nothing exits 1 (text and --json alike): no instance and no snapshot by that name."""
    searched = lifecycle.status_regions(region)
    owner = ownership.caller(searched[0]).owner
    if not any(item.owner == owner for where in searched for item in aws.workstations(where, name)) and not any(
            snapshots.listed(where, owner, name) for where in searched):
        raise missing(name)


def exit_code(document: dict[str, Any], name: str | None) -> GpuboxError | None:
    """Why `status --json` exits 1, as text `status` would: AWS could not be asked and nothing else
    is listed, or --name named nothing."""
    if document["ec2_error"] and not document["workstations"]:
        return GpuboxError(document["ec2_error"]["message"], document["ec2_error"]["fix"])
    if name and not document["workstations"] and not document["snapshots"]:
        return missing(name)
    return None


def aws_row(row: Row) -> aws.Workstation:
    """Enough of an EC2 row for the stale-record check (its instance ID)."""
    return aws.Workstation(name=row.name, instance_id=(row.ec2 or {}).get("instance_id", ""), state=row.state, instance_type="",
                           public_ip="", launched=None, owner="", zone="")

