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
  - a hold is in place (a regular file in /var/lib/gpubox/holds, its owner's: empty, or the UTC
    expiry as ISO 8601; an expired, that is revoked, account holds nothing).
On an EC2 spot instance, AWS's two-minute interruption notice (instance metadata, IMDSv2) is
announced to logged-in users and logged, and counts as the stop of this idle period: the checker
does not act on its own then, nor right after the instance is started again.
After `idle_minutes` without any of them, logged-in users are warned, then the action runs, once
per idle period. If the checker itself fails (nvidia-smi, CPU accounting), the host counts as busy.
What users control (their holds, token files, servers and ports) can only ever count for or not
for that user: anything unusable there is ignored with a reason code and the user's name, so one
user's broken state neither stops nor pins the host. Root follows no user's link, opens no
non-regular file of theirs, asks each user's Jupyter only through a process of that user's, on
their own socket, and waits a bounded time.
Every decision goes to the journal with its reasons. Times are UTC. Configuration: a JSON file
(/etc/gpubox/autostop.json); state in /var/lib/gpubox/autostop/state.json survives restarts.
"""
from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import pwd
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

CONFIG = "/etc/gpubox/autostop.json"
SHADOW = "/etc/shadow"


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


# The reading the GPU check takes (the configuration may name another binary, as the tests do).
NVIDIA_SMI = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]


def parse_nvidia_smi(output):
    """GPU utilisation percentages from `nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits`."""
    values = []
    for line in output.splitlines():
        line = line.strip().rstrip("%").strip()
        if not line:
            continue
        if line.startswith("[") or not line.replace(".", "", 1).isdigit():
            # "[N/A]" or "[Not Supported]" (MIG, some vGPUs): no reading is not a reading of 0.
            raise ValueError("nvidia-smi gave no utilisation reading")
        values.append(float(line))
    return values


def gpu_utilisation(command):
    """The host's own GPU reading: when it cannot be had, the checker cannot judge the host."""
    if not shutil.which(command[0]):
        raise CheckerFailure("nvidia-smi is not installed, but this host has a GPU to watch")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise CheckerFailure("nvidia-smi timed out") from None
    if result.returncode != 0:
        raise CheckerFailure(f"nvidia-smi failed (rc {result.returncode})")
    try:
        return parse_nvidia_smi(result.stdout)
    except ValueError:
        raise CheckerFailure("nvidia-smi gave no utilisation reading") from None


class Refused(Exception):
    """Something a user controls is not what it must be. Carries only a reason code, never what
    was found (that may be another file's content, planted to be echoed)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class CheckerFailure(Exception):
    """The checker itself cannot judge the host (its own tools are missing or failing): busy."""


# Open flags for anything a user controls: never follow a symlink, never wait on a FIFO or a device.
UNTRUSTED = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
DIRECTORY = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
# make_token.py writes secrets.token_hex(32) and a newline; nothing else is a token.
TOKEN_FORMAT = re.compile(r"[0-9a-f]{64}\n?")
# A kernel name is the user's text: it reaches the journal and the status file only in these characters.
NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_TOKEN_BYTES, MAX_HOLD_BYTES, MAX_REPLY_BYTES = 128, 128, 1 << 20
JUPYTER_SECONDS = 5  # per user: connect, request and reply together


def read_regular_at(directory: int, name: str, limit: int, owner: int | None = None) -> tuple[os.stat_result, bytes]:
    """(stat, bytes) of a regular file in an open directory: looked at without following it, never
    opened unless regular, and the opened file must be the one looked at."""
    try:
        seen = os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        raise Refused("missing") from None
    except OSError:
        raise Refused("unreadable") from None
    if not stat.S_ISREG(seen.st_mode):
        raise Refused("not-regular")
    if owner is not None and seen.st_uid != owner:
        raise Refused("wrong-owner")
    # A second name is someone's hard link: where the kernel allows links to files the linker does
    # not own (fs.protected_hardlinks=0), it would pass root's or another user's file off as theirs.
    if seen.st_nlink != 1:
        raise Refused("hard-linked")
    try:
        descriptor = os.open(name, UNTRUSTED, dir_fd=directory)
    except OSError:
        raise Refused("unreadable") from None
    try:
        opened = os.fstat(descriptor)
        if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino) or not stat.S_ISREG(opened.st_mode):
            raise Refused("changed")
        data = os.read(descriptor, limit + 1)
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise Refused("too-large")
    return opened, data


def read_user_file(home: str, relative: str, uid: int, limit: int) -> bytes:
    """A file under a user's home, walked one component at a time from the home's root-owned parent:
    every directory on the way and the file itself must be that user's, and no link is followed."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a plain relative path: {relative}")
    descriptor = os.open(os.path.dirname(os.path.normpath(home)) or "/", DIRECTORY)
    try:
        if os.fstat(descriptor).st_uid != 0:
            raise Refused("home-not-anchored")
        for part in [os.path.basename(os.path.normpath(home)), *parts[:-1]]:
            try:
                inner = os.open(part, DIRECTORY, dir_fd=descriptor)
            except OSError:
                raise Refused("unsafe-directory") from None
            os.close(descriptor)
            descriptor = inner
            if os.fstat(descriptor).st_uid != uid:
                raise Refused("unsafe-directory")
        return read_regular_at(descriptor, parts[-1], limit, owner=uid)[1]
    finally:
        os.close(descriptor)


def read_token(home: str, relative: str, uid: int) -> str:
    data = read_user_file(home, relative, uid, MAX_TOKEN_BYTES)
    text = data.decode("ascii", "replace")
    if not TOKEN_FORMAT.fullmatch(text):
        raise Refused("malformed")
    return text.strip()


# Each user's JupyterLab listens on <root>/<user>/<socket> (roles/jupyter: a directory systemd makes
# for that user, 0700, under root-owned parents); no TCP port is involved.
JUPYTER_RUNTIME_ROOT, JUPYTER_SOCKET_NAME = "/run/gpubox/jupyter", "jupyter.sock"
# The probe runs as the user (so it reaches only what the user can reach) in a fresh interpreter
# that imports nothing of the user's (-I: no environment, no user site, no working directory).
PROBE_PYTHON = "/usr/bin/python3"
PROBE = r"""
import http.client, json, socket, sys
path, token = sys.argv[1], sys.stdin.readline().strip()
class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(path)
answers = {}
for kind in ("kernels", "terminals"):
    try:
        connection = UnixConnection("localhost", timeout=float(sys.argv[2]))
        connection.request("GET", "/api/" + kind, headers={"Authorization": "token " + token})
        response = connection.getresponse()
        answers[kind] = [response.status, response.read(int(sys.argv[3]) + 1).decode("utf-8", "replace")]
        connection.close()
    except PermissionError:
        answers = {"error": "permission-denied"}
        break
    except (FileNotFoundError, ConnectionRefusedError):
        answers = {"error": "not-running"}
        break
    except (OSError, http.client.HTTPException):
        answers = {"error": "connection-error"}
        break
sys.stdout.write(json.dumps(answers))
"""


def socket_of(root: str, user: str, uid: int) -> str | None:
    """The path of the user's Jupyter socket, or None when their server is not running. Looked at
    from the root-owned anchor without following links: the directory must be the user's alone."""
    try:
        anchor = os.open(root, DIRECTORY)
    except FileNotFoundError:
        return None  # no JupyterLab has started since boot
    except OSError:
        raise Refused("socket-dir-unsafe") from None
    try:
        if os.fstat(anchor).st_uid != 0:
            raise Refused("socket-dir-unsafe")
        try:
            directory = os.stat(user, dir_fd=anchor, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(directory.st_mode) or directory.st_uid != uid or directory.st_mode & 0o077:
            raise Refused("socket-dir-unsafe")
        try:
            found = os.stat(os.path.join(user, JUPYTER_SOCKET_NAME), dir_fd=anchor, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISSOCK(found.st_mode) or found.st_uid != uid:
            raise Refused("not-a-socket")
        return os.path.join(root, user, JUPYTER_SOCKET_NAME)
    finally:
        os.close(anchor)


def read_bounded(process: subprocess.Popen, limit: int, deadline: float) -> bytes:
    """What the process writes to its stdout until it closes it, at most limit bytes and until the
    deadline (monotonic clock); TimeoutError past the deadline, Refused past the limit."""
    data = bytearray()
    descriptor = process.stdout.fileno()
    os.set_blocking(descriptor, False)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(descriptor, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            raise Refused("reply-too-large")


def ask_as_user(uid: int, gid: int, path: str, token: str, seconds: float | None = None) -> dict:
    """The probe's answers from the user's server, asked by a process running as the user (no other
    groups) and killed, with anything it started, after seconds (JUPYTER_SECONDS): a user who stops
    or slows it only loses their own activity."""
    seconds = JUPYTER_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    process = subprocess.Popen(
        [PROBE_PYTHON, "-I", "-S", "-c", PROBE, path, str(seconds), str(MAX_REPLY_BYTES)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/", env={"LC_ALL": "C.UTF-8"},
        user=uid, group=gid, extra_groups=[], start_new_session=True, close_fds=True)
    try:
        try:
            process.stdin.write(f"{token}\n".encode("ascii"))
            process.stdin.close()
        except OSError:
            pass  # the probe is gone already: what it wrote (nothing) says so below
        output = read_bounded(process, 2 * MAX_REPLY_BYTES + 1024, deadline)
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise TimeoutError from None
    finally:
        # The whole session: a probe a user made fork (ptrace) must not outlive it either.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)
        process.stdout.close()
    try:
        answers = json.loads(output)
    except ValueError:
        raise Refused("bad-json") from None
    if not isinstance(answers, dict):
        raise Refused("bad-json")
    return answers


def user_activity(user: str, uid: int, gid: int, home: str, token_file: str,
                  runtime_root: str = JUPYTER_RUNTIME_ROOT) -> tuple[list[str], datetime | None]:
    """(executing kernels, latest activity) of one user's server; Refused with a reason code when
    that server cannot be asked or answers nonsense: then nothing of it counts."""
    path = socket_of(runtime_root, user, uid)
    if path is None:
        return [], None  # not running: nothing of it to keep the host up
    try:
        token = read_token(home, token_file, uid)
    except Refused as refused:
        raise Refused(f"token-{refused.code}") from None
    try:
        answers = ask_as_user(uid, gid, path, token)
    except TimeoutError:
        raise Refused("timeout") from None
    except OSError:
        raise Refused("probe-failed") from None
    if "error" in answers:
        if answers["error"] == "not-running":
            return [], None
        raise Refused(answers["error"] if answers["error"] in ("permission-denied", "connection-error") else "bad-json")
    executing, latest = [], None
    for kind in ("kernels", "terminals"):
        answer = answers.get(kind)
        if not (isinstance(answer, list) and len(answer) == 2 and isinstance(answer[0], int) and isinstance(answer[1], str)):
            raise Refused("bad-json")
        status, body = answer
        if status == 404 and kind == "terminals":
            continue  # terminals disabled
        if status != 200:
            raise Refused(f"http-{status}")
        if len(body) > MAX_REPLY_BYTES:
            raise Refused("reply-too-large")
        try:
            items = json.loads(body)
        except ValueError:
            raise Refused("bad-json") from None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise Refused("bad-json")
        for item in items:
            if item.get("execution_state") == "busy":
                executing.append(f"{user}'s kernel {NAME_UNSAFE.sub('?', str(item.get('name', '?')))[:40]}")
            try:
                moment = parse_time(item.get("last_activity"))
            except (TypeError, ValueError, AttributeError):
                raise Refused("bad-json") from None
            if moment and (latest is None or moment > latest):
                latest = moment
    return executing, latest


def jupyter_activity(config_dir: str, token_file: str, ignored: list[str], account=pwd.getpwnam,
                     runtime_root: str = JUPYTER_RUNTIME_ROOT) -> tuple[list[str], datetime | None]:
    """(executing kernels, latest kernel/terminal activity) over every user's Jupyter server. A
    user whose server cannot be asked counts as no activity; the reason code goes to ignored.
    Each user is asked through their own socket, by a process of theirs: nothing another account
    does reaches that channel."""
    executing, latest = [], None
    for env_file in sorted(glob.glob(os.path.join(config_dir, "*.env"))):
        user = os.path.basename(env_file)[:-4]  # IT's file names (root-owned /etc/gpubox): the roster
        try:
            entry = account(user)
        except KeyError:
            ignored.append(f"jupyter of {user}: unknown-user")
            continue
        try:
            found, moment = user_activity(user, entry.pw_uid, entry.pw_gid, entry.pw_dir, token_file, runtime_root)
        except Refused as refused:
            ignored.append(f"jupyter of {user}: {refused.code}")
            continue
        executing += found
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
    raise CheckerFailure("no cgroup CPU accounting found (/sys/fs/cgroup/cpu.stat or cpuacct.usage)")


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def expired_accounts(now: datetime, path: str = SHADOW) -> set[str]:
    """Names of accounts whose expiry day (shadow's eighth field, days since 1970) has come, as
    PAM judges it: a revoked data scientist (ssh_access expires the account) cannot log in to
    release a hold, so it holds nothing. Only names leave this function, never a line."""
    today = (now - datetime(1970, 1, 1, tzinfo=timezone.utc)).days
    expired = set()
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 8 and fields[7].isdigit() and int(fields[7]) <= today:
                    expired.add(fields[0])
    except OSError:
        pass  # no shadow file: nobody counts as expired
    return expired


def holds(directory: str, now: datetime, ignored: list[str], shadow: str = SHADOW) -> list[tuple[str, datetime | None]]:
    """(owner, expiry or None) of each active hold. A hold is whose file it is (its owner's uid),
    whatever its name: in a sticky world-writable directory the name is anyone's to choose. A
    revoked (expired) account's hold is ignored: it would keep the host up with nobody to end it."""
    active = {}
    expired = expired_accounts(now, shadow)
    descriptor = os.open(directory, DIRECTORY)
    try:
        for name in sorted(os.listdir(descriptor)):
            try:
                seen = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except OSError:
                continue  # released while we looked
            owner = owner_name(seen.st_uid)
            if owner in expired:
                ignored.append(f"hold of {owner}: account-expired")
                continue
            try:
                text = read_regular_at(descriptor, name, MAX_HOLD_BYTES, owner=seen.st_uid)[1].decode("utf-8").strip()
                until = parse_time(text) if text else None
            except Refused as refused:
                if refused.code != "missing":
                    ignored.append(f"hold of {owner}: {refused.code}")
                continue
            except ValueError:  # not UTF-8, or not a time
                ignored.append(f"hold of {owner}: malformed")
                continue
            if (until is None or until > now) and (owner not in active or active[owner] is not None
                                                    and (until is None or until > active[owner])):
                active[owner] = until
    finally:
        os.close(descriptor)
    return sorted(active.items())


def _metadata(connection: http.client.HTTPConnection, method: str, path: str, headers: dict) -> tuple[int, bytes]:
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    return response.status, response.read(4096)


def spot_notice(base_url: str, timeout: float = 2.0) -> tuple[str, datetime] | None:
    """AWS's spot interruption notice, (action, when), from the metadata service (IMDSv2, never
    through a proxy); None when there is none (404), no metadata service, or an answer that is
    not one (the service is EC2's, not a user's, but a bad answer must not stop the checker)."""
    if not base_url:
        return None
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port or 80, timeout=timeout)
    try:
        status, token = _metadata(connection, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        if status != 200:
            return None
        status, body = _metadata(connection, "GET", "/latest/meta-data/spot/instance-action",
                                 {"X-aws-ec2-metadata-token": token.decode("ascii", "replace")})
        if status != 200:
            return None
        notice = json.loads(body)
        action, when = str(notice["action"]), parse_time(str(notice["time"]))
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    if action not in ("stop", "terminate", "hibernate") or when is None:
        return None
    return action, when


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


def gpu_sample(config: dict, state: dict, now: datetime) -> tuple[str, str]:
    """Take a GPU reading into the state's window: the busy reason ("" when none) and the fact for
    the log line. scripts/gpu-check runs this same decision on real GPUs."""
    utilisation = gpu_utilisation(config.get("nvidia_smi", NVIDIA_SMI))
    window = timedelta(minutes=config["gpu_window_minutes"])
    samples = [s for s in state.get("gpu_samples", []) if now - parse_time(s[0]) < window]
    samples.append([now.isoformat(), max(utilisation) if utilisation else 0.0])
    state["gpu_samples"] = samples
    busy = any(value > config["gpu_threshold"] for _, value in samples)
    reason = f"GPU above {config['gpu_threshold']}% in the last {config['gpu_window_minutes']} min" if busy else ""
    return reason, f"GPU {samples[-1][1]:.0f}%"


def observe(config: dict, state: dict, now: datetime, ignored: list[str]) -> tuple[list[str], list[str]]:
    """Busy reasons (empty when idle) and the facts for the log line; what users control and was
    not usable goes to ignored as a reason code, and counts as nothing."""
    limit = timedelta(minutes=config["idle_minutes"])
    reasons, facts = [], []
    executing, latest = jupyter_activity(config["jupyter_config_dir"], config["jupyter_token_file"], ignored)
    if executing:
        reasons.append("kernel executing (" + ", ".join(executing) + ")")
    elif latest and now - latest < limit:
        reasons.append(f"kernel activity at {short(latest)}")
    facts.append(f"no kernel activity since {short(latest)}" if not executing else "kernel executing")
    if config["watch_gpu"]:
        reason, fact = gpu_sample(config, state, now)
        reasons.extend([reason] if reason else [])
        facts.append(fact)
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
    for name, until in holds(config["holds_dir"], now, ignored, config.get("shadow_file", SHADOW)):
        reasons.append(f"held by {name}" + (f" until {short(until)}" if until else ""))
    return reasons, facts


def warn(command, message):
    print(f"autostop: warning logged-in users: {message}", flush=True)
    subprocess.run([*command, message], capture_output=True, timeout=10, check=False)


def act(command):
    print(f"autostop: running the action: {' '.join(command)}", flush=True)
    return subprocess.run(command, check=False).returncode


def announce_interruption(config: dict, state: dict, action: str, when: datetime) -> None:
    """Tell logged-in users once per notice, log it, and count it as this idle period's stop, so the
    first check after the instance is started again does not find it idle since before the stop."""
    print(f"autostop: spot interruption notice: AWS will {action} this instance at {when.isoformat()}", flush=True)
    if state.get("spot_notice") != when.isoformat():
        warn(config["warn_command"], f"gpubox: AWS is reclaiming this spot workstation: it will {action} at {short(when)} "
             "(about two minutes' notice). Save your work now. The disk and your data stay; `runner.py start` brings it back.")
        state["spot_notice"] = when.isoformat()
    state["acted_for"] = state["last_busy"]


def this_boot():
    """(boot ID, seconds since boot) of the running kernel."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
        boot_id = handle.read().strip()
    with open("/proc/uptime", encoding="ascii") as handle:
        return boot_id, float(handle.read().split()[0])


def start_of_boot(state, now):
    """When this boot began, fixed at its first check (a stable name for its idle period). A host is
    not idle from before it booted: the first check of a boot moves an older last_busy up to the
    boot, or a workstation started again after a stop, or booted from an image baked hours ago,
    would be found idle since then and stopped by its first check."""
    boot_id, uptime = this_boot()
    if state.get("boot_id") != boot_id or "booted_at" not in state:
        state["boot_id"] = boot_id
        state["booted_at"] = (now - timedelta(seconds=uptime)).isoformat()
        if parse_time(state["last_busy"]) < parse_time(state["booted_at"]):
            state["last_busy"] = state["booted_at"]
            state.pop("warned_for", None)
    return parse_time(state["booted_at"])


def check(config, now=None):
    now = now or utcnow()
    state = load_state(config["state_file"])
    state.setdefault("last_busy", now.isoformat())
    boot = start_of_boot(state, now)
    ignored = []
    try:
        reasons, facts = observe(config, state, now, ignored)
    except CheckerFailure as failure:  # never stop a host because the checker broke
        reasons, facts = [f"checker failed, counting as busy: {failure}"], []
    except Exception as error:  # noqa: BLE001  (its text may quote what a user planted: the type only)
        reasons, facts = [f"checker failed, counting as busy: internal error ({type(error).__name__})"], []
    for note in ignored:
        print(f"autostop: ignored {note}", flush=True)
    if config["idle_minutes"] <= 0:
        reasons = reasons or ["autostop disabled (idle_minutes 0)"]
    notice = spot_notice(config.get("imds_url", ""))
    if notice:
        reasons = [f"spot interruption: AWS will {notice[0]} this instance at {short(notice[1])}", *reasons]
    if reasons:
        state["last_busy"] = now.isoformat()
        state.pop("warned_for", None)
    if notice:
        announce_interruption(config, state, *notice)
    last_busy = parse_time(state["last_busy"])
    idle = (now - last_busy).total_seconds() / 60
    capped = config["max_hours"] > 0 and (now - boot) >= timedelta(hours=config["max_hours"])
    remaining = config["idle_minutes"] - idle
    status = {"checked_at": now.isoformat(), "busy": bool(reasons), "reasons": reasons, "idle_minutes": round(idle, 1),
              "idle_limit": config["idle_minutes"], "stops_in_minutes": None if reasons else round(max(remaining, 0), 1),
              "ignored": ignored}
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
