#!/usr/bin/python3
"""gpubox autostop: powers a forgotten workstation off, and never a busy one.

Run every minute by gpubox-autostop.timer. The host is busy when any of these holds:
  - a Jupyter kernel is executing, or a kernel or terminal showed activity within the idle limit
    (each user's server API, with their token);
  - GPU utilisation (nvidia-smi) was above the threshold in the recent window;
  - CPU use since the last check (cgroup accounting: the host's own, also inside a container)
    is above the threshold, in cores (a `nohup python train.py` counts);
  - an interactive SSH session with a terminal was used within the idle limit (a bare
    `ssh -N` tunnel has no terminal and does not count);
  - a hold is in place (/var/lib/gpubox/holds/<name>: empty, or the UTC expiry as ISO 8601).
After `idle_minutes` without any of them, logged-in users are warned, then the action runs, once
per idle period. If the checker itself fails, the host counts as busy and the error is logged.
Every decision goes to the journal with its reasons. Times are UTC. Configuration: a JSON file
(/etc/gpubox/autostop.json); state in /var/lib/gpubox/autostop/state.json survives restarts.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

CONFIG = "/etc/gpubox/autostop.json"


def utcnow():
    return datetime.now(timezone.utc)


def parse_time(text):
    """ISO 8601 from Jupyter ('2026-11-28T10:02:00.123456Z') or a hold file, as aware UTC."""
    if not text:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def short(moment):
    return moment.astimezone(timezone.utc).strftime("%H:%M UTC") if moment else "never"


def parse_nvidia_smi(output):
    """GPU utilisation percentages from `nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits`."""
    values = []
    for line in output.splitlines():
        line = line.strip().rstrip("%").strip()
        if not line:
            continue
        if line.startswith("[") or not line.replace(".", "", 1).isdigit():
            # "[N/A]" or "[Not Supported]" (MIG, some vGPUs): no reading is not a reading of 0.
            raise ValueError(f"nvidia-smi gave no utilisation reading: {line!r}")
        values.append(float(line))
    return values


def gpu_utilisation(command):
    if not shutil.which(command[0]):
        raise RuntimeError(f"{command[0]} is not installed, but this host has a GPU to watch")
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"nvidia-smi failed (rc {result.returncode}): {(result.stderr or result.stdout).strip()[:200]}")
    return parse_nvidia_smi(result.stdout)


def jupyter_activity(config_dir, token_file, timeout=5):
    """(executing kernels, latest kernel/terminal activity) over every user's Jupyter server."""
    executing, latest = [], None
    for env_file in sorted(glob.glob(os.path.join(config_dir, "*.env"))):
        user = os.path.basename(env_file)[:-4]
        settings = dict(line.split("=", 1) for line in open(env_file, encoding="utf-8").read().splitlines()
                        if "=" in line and not line.startswith("#"))
        port = settings["GPUBOX_JUPYTER_PORT"]
        token = open(os.path.join(pwd.getpwnam(user).pw_dir, token_file), encoding="utf-8").read().strip()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for kind in ("kernels", "terminals"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/{kind}", headers={"Authorization": f"token {token}"})
            try:
                with opener.open(request, timeout=timeout) as response:
                    items = json.loads(response.read())
            except urllib.error.HTTPError as error:
                if kind == "terminals" and error.code == 404:
                    continue  # terminals disabled
                raise RuntimeError(f"Jupyter of {user} refused the check ({error.code} on /api/{kind}): is its token right?") from error
            except OSError as error:
                if kind == "kernels" and isinstance(getattr(error, "reason", error), ConnectionRefusedError):
                    break  # that server is not running: nothing of it to keep the host up
                raise RuntimeError(f"Jupyter of {user} did not answer on port {port}: {error}") from error
            for item in items:
                if item.get("execution_state") == "busy":
                    executing.append(f"{user}'s kernel {item.get('name', '?')}")
                moment = parse_time(item.get("last_activity"))
                if moment and (latest is None or moment > latest):
                    latest = moment
    return executing, latest


def terminal_sessions():
    """(user, tty, last input) of logged-in terminals; `ssh -N` has no terminal and is not here."""
    result = subprocess.run(["who"], capture_output=True, text=True, timeout=10)
    sessions = []
    for line in result.stdout.splitlines():
        parts = line.split()
        # "alice pts/0 ..." (Debian 12) or "alice sshd pts/0 ..." (Debian 13): find the terminal.
        tty = next((part for part in parts[1:] if part.startswith("pts/")), None)
        if tty:
            try:
                used = datetime.fromtimestamp(os.stat(f"/dev/{tty}").st_atime, timezone.utc)
            except OSError:
                continue
            sessions.append((parts[0], tty, used))
    return sessions


def cpu_seconds():
    """CPU time used by everything on this host (its root cgroup), in seconds."""
    try:
        for line in open("/sys/fs/cgroup/cpu.stat", encoding="ascii"):
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"):
        try:
            return int(open(path, encoding="ascii").read()) / 1e9
        except OSError:
            continue
    raise RuntimeError("no cgroup CPU accounting found (/sys/fs/cgroup/cpu.stat or cpuacct.usage)")


def holds(directory, now):
    active = []
    for path in sorted(glob.glob(os.path.join(directory, "*"))):
        text = open(path, encoding="utf-8").read().strip()
        until = parse_time(text) if text else None
        if until is None or until > now:
            active.append((os.path.basename(path), until))
    return active


def load_state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def save_state(path, state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=2)
    os.replace(temporary, path)


def observe(config, state, now):
    """Busy reasons (empty when idle) and the facts for the log line."""
    limit = timedelta(minutes=config["idle_minutes"])
    reasons, facts = [], []
    executing, latest = jupyter_activity(config["jupyter_config_dir"], config["jupyter_token_file"])
    if executing:
        reasons.append("kernel executing (" + ", ".join(executing) + ")")
    elif latest and now - latest < limit:
        reasons.append(f"kernel activity at {short(latest)}")
    facts.append(f"no kernel activity since {short(latest)}" if not executing else "kernel executing")
    samples = state.get("gpu_samples", [])
    if config["watch_gpu"]:
        utilisation = gpu_utilisation(config["nvidia_smi"])
        samples = [s for s in samples if now - parse_time(s[0]) < timedelta(minutes=config["gpu_window_minutes"])]
        samples.append([now.isoformat(), max(utilisation) if utilisation else 0.0])
        state["gpu_samples"] = samples
        if any(value > config["gpu_threshold"] for _, value in samples):
            reasons.append(f"GPU above {config['gpu_threshold']}% in the last {config['gpu_window_minutes']} min")
        facts.append(f"GPU {samples[-1][1]:.0f}%")
    used, previous = cpu_seconds(), state.get("cpu_sample")
    state["cpu_sample"] = [now.isoformat(), used]
    if previous:
        elapsed = (now - parse_time(previous[0])).total_seconds()
        cores = (used - previous[1]) / elapsed if elapsed > 0 else 0.0
        if cores > config["cpu_threshold"]:
            reasons.append(f"CPU {cores:.2f} cores busy, above {config['cpu_threshold']}")
        facts.append(f"CPU {cores:.2f} cores")
    for user, tty, used in terminal_sessions():
        if now - used < limit:
            reasons.append(f"{user} typing on {tty} (last {short(used)})")
    for name, until in holds(config["holds_dir"], now):
        reasons.append(f"held by {name}" + (f" until {short(until)}" if until else ""))
    return reasons, facts


def warn(command, message):
    print(f"autostop: warning logged-in users: {message}", flush=True)
    subprocess.run([*command, message], capture_output=True, timeout=10, check=False)


def act(command):
    print(f"autostop: running the action: {' '.join(command)}", flush=True)
    return subprocess.run(command, check=False).returncode


def check(config, now=None):
    now = now or utcnow()
    state = load_state(config["state_file"])
    state.setdefault("last_busy", now.isoformat())
    try:
        reasons, facts = observe(config, state, now)
    except Exception as error:  # noqa: BLE001  (never stop a host because the checker broke)
        reasons, facts = [f"checker failed, counting as busy: {error}"], []
    if config["idle_minutes"] <= 0:
        reasons = reasons or ["autostop disabled (idle_minutes 0)"]
    if reasons:
        state["last_busy"] = now.isoformat()
        state.pop("warned_for", None)
    last_busy = parse_time(state["last_busy"])
    idle = (now - last_busy).total_seconds() / 60
    boot = now - timedelta(seconds=float(open("/proc/uptime", encoding="ascii").read().split()[0]))
    capped = config["max_hours"] > 0 and (now - boot) >= timedelta(hours=config["max_hours"])
    remaining = config["idle_minutes"] - idle
    status = {"checked_at": now.isoformat(), "busy": bool(reasons), "reasons": reasons, "idle_minutes": round(idle, 1),
              "idle_limit": config["idle_minutes"], "stops_in_minutes": None if reasons else round(max(remaining, 0), 1)}
    if reasons and not capped:
        print(f"autostop: busy: {'; '.join(reasons)}", flush=True)
    else:
        why = f"running {config['max_hours']} h, the most allowed" if capped else f"idle {idle:.0f} min: {', '.join(facts)}"
        period = "cap-" + boot.isoformat() if capped else state["last_busy"]
        if state.get("acted_for") == period:
            print(f"autostop: {why}; the action already ran for this idle period", flush=True)
        elif capped or remaining <= 0:
            print(f"autostop: {why}; stopping now", flush=True)
            warn(config["warn_command"], "gpubox: this workstation is stopping now (" + why + "). Your disk and data stay.")
            state["acted_for"] = period
            save_state(config["state_file"], state)
            act(config["action"])
        elif remaining <= config["warn_minutes"]:
            print(f"autostop: {why}; stops in {remaining:.0f} min", flush=True)
            if state.get("warned_for") != period:
                warn(config["warn_command"], f"gpubox: this workstation has been idle {idle:.0f} min and stops in {remaining:.0f} min. "
                     "Run anything, or `runner.py hold`, to keep it up.")
                state["warned_for"] = period
        else:
            print(f"autostop: {why}; stops in {remaining:.0f} min", flush=True)
    save_state(config["state_file"], state)
    with open(config["status_file"] + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(status, handle)
    os.chmod(config["status_file"] + ".tmp", 0o644)
    os.replace(config["status_file"] + ".tmp", config["status_file"])
    return status


def main():
    with open(sys.argv[1] if len(sys.argv) > 1 else CONFIG, encoding="utf-8") as handle:
        config = json.load(handle)
    check(config)


if __name__ == "__main__":
    main()
