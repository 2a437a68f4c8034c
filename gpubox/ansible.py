"""Runs the project's playbooks through ansible-runner: a private data dir per run under the
user's state dir, an inventory built from connections, live progress from runner events, and
one readable failure summary instead of a wall of JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

from gpubox.errors import GpuboxError
from gpubox.paths import PROJECT_DIR, state_dir
from gpubox.ssh import Connection

GROUP = "gpu_workstations"


@dataclass(frozen=True)
class Failure:
    host: str
    task: str
    message: str


@dataclass
class RunResult:
    ok: bool
    run_dir: Path
    log_path: Path
    changed: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0


def inventory(connections: list[Connection]) -> dict[str, Any]:
    """An inventory with every connection in the workstation group."""
    hosts = {}
    for conn in connections:
        hosts[conn.alias] = {
            "ansible_host": conn.address,
            "ansible_port": conn.port,
            "ansible_user": conn.user,
            "ansible_private_key_file": str(conn.key),
            "ansible_ssh_common_args": " ".join(conn.ssh_options()),
        }
    return {"all": {"children": {GROUP: {"hosts": hosts}}}}


def _bin(tool: str) -> str:
    # Use the tools of the Python running gpubox (its venv), even when the venv is not activated.
    candidate = Path(sys.executable).parent / tool
    return str(candidate) if candidate.exists() else tool


def _message(result: dict[str, Any]) -> str:
    message = str(result.get("msg") or "").strip()
    # A failed command says only "non-zero return code": its own last words say why.
    detail = str(result.get("stderr") or result.get("stdout") or "").strip()
    if detail and (not message or message == "non-zero return code"):
        tail = " | ".join(line.strip() for line in detail.splitlines()[-3:] if line.strip())
        message = f"{message}: {tail}" if message else tail
    if not message:
        message = str(result.get("reason") or "").strip() or json.dumps(result)[:500]
    return message if len(message) < 2000 else message[:2000] + " ..."


def elapsed(seconds: float) -> str:
    """m:ss (h:mm:ss from an hour on): how long the run has taken so far."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Turns runner events into one short line per task, and collects failures.

    Where the run stands is said by play, whose number is known before the run: tasks are not
    (a role included at run time, a loop, a handler add their own), so a task total would grow
    with the count. Each line carries the time since the run started."""

    def __init__(self, out: TextIO, total_plays: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.total_plays = total_plays
        self.clock = clock
        self.started = clock()
        self.play = 0
        self.step = 0
        self.failures: list[Failure] = []
        self.changed: dict[str, int] = {}
        self.log_lines: list[str] = []

    def _say(self, line: str) -> None:
        self.log_lines.append(line)
        print(line, file=self.out, flush=True)

    def _where(self) -> str:
        known = self.total_plays and self.play <= self.total_plays
        play = f"play {self.play}/{self.total_plays}" if known else f"play {self.play}"
        return f"{play}, task {self.step}, {elapsed(self.clock() - self.started)}"

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            self.play += 1
            self.step = 0
            self._say(f"== {data.get('play', '').strip()}")
        elif kind == "playbook_on_task_start" and not data.get("is_conditional"):
            self.step += 1
            self._say(f"  [{self._where()}] {data.get('task', '').strip()}")
        elif kind == "playbook_on_handler_task_start":
            self._say(f"  [handler, {elapsed(self.clock() - self.started)}] {data.get('task', '').strip()}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            failure = Failure(host=data.get("host", "?"), task=data.get("task", "?").strip(), message=_message(data.get("res", {})))
            self.failures.append(failure)
            self._say(f"    FAILED on {failure.host}")
        elif kind == "playbook_on_stats":
            self.changed = dict(data.get("changed", {}))
        return True


def count_plays(playbook: Path, _seen: frozenset[Path] = frozenset()) -> int | None:
    """How many plays the playbook runs (imported playbooks included), so progress can say how far
    along it is. Read from the YAML, not from `ansible-playbook --list-tasks`, which parses every
    role and costs seconds of CPU before each run. None when it cannot tell."""
    try:
        import yaml  # noqa: PLC0415  (Ansible's own dependency; `runner.py --help` must work without it)
    except ImportError:
        return None
    if playbook.resolve() in _seen:  # an import cycle: ansible-playbook would refuse it
        return None
    try:
        plays = yaml.safe_load(playbook.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return None
    if not isinstance(plays, list):
        return None
    count = 0
    for play in plays:
        imported = play.get("ansible.builtin.import_playbook", play.get("import_playbook")) if isinstance(play, dict) else None
        if imported is None:
            count += 1
            continue
        if "{{" in str(imported):
            return None
        found = count_plays(playbook.parent / str(imported), _seen | {playbook.resolve()})
        if found is None:
            return None
        count += found
    return count or None


def run_playbook(
    playbook: str,
    connections: list[Connection],
    *,
    extravars: dict[str, Any] | None = None,
    tags: str | None = None,
    check: bool = False,
    label: str = "run",
    out: TextIO = sys.stdout,
    runner: Callable[..., Any] | None = None,
) -> RunResult:
    """Run a playbook of this project against the connections and report progress on `out`."""
    try:
        import ansible_runner  # noqa: PLC0415  (imported late: `runner.py --help` must work without it)
    except ImportError as exc:
        raise GpuboxError(
            "ansible-runner is not installed in this Python.",
            "Run `make demo` once, or `pip install -r requirements.txt`, and use .venv/bin/python runner.py.",
        ) from exc

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = state_dir() / "runs" / f"{stamp}-{label}"
    (run_dir / "inventory").mkdir(parents=True, exist_ok=True)
    run_dir.parent.chmod(0o700)
    inventory_path = run_dir / "inventory" / "hosts.json"
    inventory_path.write_text(json.dumps(inventory(connections), indent=2))
    cmdline = (["--tags", tags] if tags else []) + (["--check", "--diff"] if check else [])

    progress = Progress(out, count_plays(PROJECT_DIR / playbook))
    started = time.monotonic()
    result = (runner or ansible_runner.run)(
        private_data_dir=str(run_dir),
        project_dir=str(PROJECT_DIR),
        playbook=playbook,
        inventory=str(inventory_path),
        extravars=extravars or {},
        cmdline=" ".join(cmdline) or None,
        envvars={
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "ANSIBLE_NOCOLOR": "1",
            # ansible-runner turns host key checking off; gpubox keeps it (accept-new, own known_hosts).
            "ANSIBLE_HOST_KEY_CHECKING": "True",
        },
        event_handler=progress,
        quiet=True,
        ident="ansible",
    )
    stdout_path = run_dir / "artifacts" / "ansible" / "stdout"
    log_path = run_dir / "progress.log"
    log_path.write_text("\n".join(progress.log_lines) + "\n")
    ok = getattr(result, "rc", 1) == 0 and not progress.failures
    if not ok and not progress.failures:
        progress.failures.append(Failure("?", "?", f"ansible-playbook exited with {getattr(result, 'rc', '?')}; see {stdout_path}"))
    return RunResult(
        ok=ok, run_dir=run_dir, log_path=stdout_path, changed=progress.changed,
        failures=progress.failures, seconds=time.monotonic() - started,
    )
