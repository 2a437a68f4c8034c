"""Runs the project's playbooks through ansible-runner: a private data dir per run under the
user's state dir, an inventory built from connections, live progress from runner events, and
one readable failure summary instead of a wall of JSON."""

from __future__ import annotations

import argparse
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
from gpubox.safe_write import atomic_write
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


# Each play a data scientist's command runs, in the words they read while it runs. Keyed by the
# play's name in playbooks/*.yml (tests/test_ansible_runner_wrapper.py fails when a play of
# site.yml, provision.yml, teardown.yml or bake.yml has none). A play missing here is shown by its
# own name.
STEPS: dict[str, str] = {
    "Check every role's inputs before anything changes": "Checking the settings",
    "Base system every workstation needs first": "Preparing the system (packages, time, certificates)",
    "Harden the host (sshd, firewall, fail2ban, updates, system)": "Hardening the system (SSH, firewall, updates)",
    "Data scientists' SSH access": "Setting up the accounts and SSH keys",
    "NVIDIA driver, where the hardware has a GPU": "Installing the NVIDIA driver where there is a GPU",
    "TensorFlow in a virtualenv, smoke-tested": "Installing TensorFlow and testing it",
    "PyTorch in a virtualenv, smoke-tested (where gpubox_frameworks names it)": "Installing PyTorch and testing it (if chosen)",
    "JupyterLab per data scientist, loopback only": "Setting up JupyterLab",
    "Idle autostop": "Setting up autostop",
    "Provision a gpubox workstation on EC2": "Launching the EC2 instance",
    "Tear down a gpubox workstation on EC2": "Deleting the workstation on EC2",
    "Clean a converged workstation for imaging": "Cleaning the workstation for its image",
}

# Estimates shorter than this are not shown.
SAY_FROM_SECONDS = 45
# Durations kept per step: the median of the last few runs is the estimate.
KEPT_DURATIONS = 5

# Set by `runner.py --verbose` (ShowTaskNames): every task's name on the screen as well as in the log.
VERBOSE = False


class ShowTaskNames(argparse.Action):
    """`--verbose`: show Ansible's task names as they run, besides the plain-words steps."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        # default=argparse.SUPPRESS lets a verb's parser take the option too without resetting it.
        super().__init__(option_strings, dest, nargs=0, default=kwargs.get("default", False),
                         help=kwargs.get("help") or "show each Ansible task as it runs (always in the run's log)")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        global VERBOSE  # noqa: PLW0603  (one switch for the whole process, set while parsing)
        VERBOSE = True
        setattr(namespace, self.dest, True)


def step_of(play: str) -> str:
    return STEPS.get(play.strip(), play.strip())


def in_words(seconds: float) -> str:
    """A duration as a person says it: 'under a minute', 'about a minute', 'about 4 minutes'."""
    if seconds < 45:
        return "under a minute"
    if seconds < 90:
        return "about a minute"
    if seconds < 3600:
        return f"about {round(seconds / 60)} minutes"
    hours = seconds / 3600
    return f"about {hours:.1f} hours".replace(".0 hours", " hours").replace("about 1 hours", "about an hour")


class Durations:
    """Per-step durations this machine recorded, per playbook and per kind of run: the first run on
    a workstation does the installs, a later run mostly checks (seconds per step), so one would
    mislead the other. Kept in the user's state directory (durations.json), written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self.data: dict[str, Any] = loaded if isinstance(loaded, dict) else {}

    def _steps(self, playbook: str, kind: str) -> dict[str, list[float]]:
        steps = self.data.get("playbooks", {}).get(playbook, {}).get(kind, {})
        return steps if isinstance(steps, dict) else {}

    def kind(self, playbook: str, workstation: str) -> str:
        done = self.data.get("playbooks", {}).get(playbook, {}).get("converged", [])
        return "again" if workstation in done else "first"

    def estimate(self, playbook: str, kind: str, step: str) -> float | None:
        recorded = [value for value in self._steps(playbook, kind).get(step, []) if isinstance(value, (int, float))]
        if not recorded:
            return None  # never made up: a step this machine has not timed yet gets no estimate
        ordered = sorted(recorded)
        return float(ordered[len(ordered) // 2])

    def record(self, playbook: str, kind: str, workstation: str, steps: list[tuple[str, float]], converged: bool) -> None:
        book = self.data.setdefault("playbooks", {}).setdefault(playbook, {})
        kept = book.setdefault(kind, {})
        for step, seconds in steps:
            kept[step] = (list(kept.get(step, [])) + [round(seconds, 1)])[-KEPT_DURATIONS:]
        if converged and workstation and workstation not in book.setdefault("converged", []):
            book["converged"].append(workstation)
        atomic_write(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")


class Progress:
    """Turns runner events into one line per step in plain words, and collects failures.

    A step is a play (base system, TensorFlow, JupyterLab, ...): its line says what is happening,
    how long it usually takes, the time since the run started and an estimate of the time left,
    from the durations this machine recorded (Durations). Ansible's task names go to the run's log,
    and to the screen only with --verbose."""

    def __init__(
        self,
        out: TextIO,
        total_plays: int | None,
        clock: Callable[[], float] = time.monotonic,
        *,
        plays: list[str] | None = None,
        estimate: Callable[[str], float | None] = lambda step: None,
        verbose: bool | None = None,
    ) -> None:
        self.out = out
        self.total_plays = total_plays
        self.clock = clock
        self.started = clock()
        self.plays = plays or []
        self.estimate = estimate
        self.verbose = VERBOSE if verbose is None else verbose
        self.play = 0
        self.step = 0
        self.failures: list[Failure] = []
        self.changed: dict[str, int] = {}
        self.log_lines: list[str] = []
        # (step, seconds) of every step that ended; the one running now starts at current_started.
        self.finished_steps: list[tuple[str, float]] = []
        self.current: str | None = None
        self.current_started = self.started

    def _say(self, line: str) -> None:
        self.log_lines.append(line)
        print(line, file=self.out, flush=True)

    def _log(self, line: str) -> None:
        """Into the run's log; onto the screen too with --verbose."""
        if self.verbose:
            self._say(line)
        else:
            self.log_lines.append(line)

    def _where(self) -> str:
        known = self.total_plays and self.play <= self.total_plays
        play = f"play {self.play}/{self.total_plays}" if known else f"play {self.play}"
        return f"{play}, task {self.step}, {elapsed(self.clock() - self.started)}"

    def _time_left(self) -> float | None:
        """The estimates of this step and every step after it, or None when one is unknown."""
        remaining = [step_of(play) for play in self.plays[self.play - 1:]] if self.plays else []
        if not remaining:
            return None
        estimates = [self.estimate(step) for step in remaining]
        if any(value is None for value in estimates):
            return None
        return sum(value for value in estimates if value is not None)

    def _end_step(self) -> None:
        if self.current is not None:
            now = self.clock()
            self.finished_steps.append((self.current, now - self.current_started))
            self.current = None

    def _start_step(self, play: str) -> None:
        self._end_step()
        step = step_of(play)
        self.current, self.current_started = step, self.clock()
        usual = self.estimate(step)
        left = self._time_left()
        notes = []
        # Seconds-long steps (every step of a re-run) say nothing: "usually under a minute" on
        # each of eight lines is noise, not news.
        if usual is not None and usual >= SAY_FROM_SECONDS:
            notes.append(f"usually {in_words(usual)}")
        if left is not None and left >= SAY_FROM_SECONDS and self.play < len(self.plays):
            notes.append(f"{in_words(left)} left")
        detail = f" ({'; '.join(notes)})" if notes else ""
        self._say(f"[{elapsed(self.clock() - self.started)}] {step}{detail}")

    def finish(self) -> list[tuple[str, float]]:
        """The durations of the steps run, the last one ended now."""
        self._end_step()
        return self.finished_steps

    def __call__(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            self.play += 1
            self.step = 0
            self.log_lines.append(f"== {data.get('play', '').strip()}")
            self._start_step(data.get("play", ""))
        elif kind == "playbook_on_task_start" and not data.get("is_conditional"):
            self.step += 1
            self._log(f"  [{self._where()}] {data.get('task', '').strip()}")
        elif kind == "playbook_on_handler_task_start":
            self._log(f"  [handler, {elapsed(self.clock() - self.started)}] {data.get('task', '').strip()}")
        elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            failure = Failure(host=data.get("host", "?"), task=data.get("task", "?").strip(), message=_message(data.get("res", {})))
            self.failures.append(failure)
            self._say(f"  FAILED on {failure.host}: {failure.task}")
        elif kind == "playbook_on_stats":
            self.changed = dict(data.get("changed", {}))
        return True


def list_plays(playbook: Path, _seen: frozenset[Path] = frozenset()) -> list[str] | None:
    """The names of the plays the playbook runs, in order (imported playbooks included), so
    progress can say how far along it is and what is left. Read from the YAML, not from
    `ansible-playbook --list-tasks`, which parses every role and costs seconds of CPU before each
    run. None when it cannot tell."""
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
    names: list[str] = []
    for play in plays:
        imported = play.get("ansible.builtin.import_playbook", play.get("import_playbook")) if isinstance(play, dict) else None
        if imported is None:
            names.append(str(play.get("name", "")) if isinstance(play, dict) else "")
            continue
        if "{{" in str(imported):
            return None
        found = list_plays(playbook.parent / str(imported), _seen | {playbook.resolve()})
        if found is None:
            return None
        names += found
    return names or None


def count_plays(playbook: Path) -> int | None:
    """How many plays the playbook runs (imported playbooks included); None when it cannot tell."""
    plays = list_plays(playbook)
    return len(plays) if plays else None


def _record_durations(durations: Durations, playbook: str, kind: str, workstation: str, steps: list[tuple[str, float]],
                      converged: bool) -> None:
    try:
        durations.record(playbook, kind, workstation, steps, converged)
    except OSError:
        pass  # the estimates are a convenience: a full disk must not fail a run that worked


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

    plays = list_plays(PROJECT_DIR / playbook)
    durations = Durations(state_dir() / "durations.json")
    # Which workstation this is, for telling its first run (installs) from a re-run (checks).
    workstation = ",".join(conn.alias for conn in connections) or label
    # A --tags run (a baked image's per-instance run) does a part of each step: its own record.
    # A --check run changes nothing and is neither estimated nor recorded.
    run_kind = "check" if check else f"tags {tags}" if tags else durations.kind(playbook, workstation)
    progress = Progress(out, len(plays) if plays else None, plays=plays,
                        estimate=lambda step: durations.estimate(playbook, run_kind, step))
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
    steps = progress.finish()
    if not check:
        # A failed run's last step ended early: its time would mislead the next estimate.
        _record_durations(durations, playbook, run_kind, workstation, steps if ok else steps[:-1], converged=ok)
    if not ok and not progress.failures:
        progress.failures.append(Failure("?", "?", f"ansible-playbook exited with {getattr(result, 'rc', '?')}; see {stdout_path}"))
    return RunResult(
        ok=ok, run_dir=run_dir, log_path=stdout_path, changed=progress.changed,
        failures=progress.failures, seconds=time.monotonic() - started,
    )
