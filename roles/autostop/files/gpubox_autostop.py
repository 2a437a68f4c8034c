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
    expiry as ISO 8601, at most hold_max_hours from when it was placed; an expired, that is
    revoked, account holds nothing);
  - IT is at work: an Ansible run in progress on the host, or an SSH session of an IT account (the
    login account IT's runs use, members of the admin groups who are not data scientists), seen in
    /proc in processes of root or of IT only, so a converge is never interrupted.
On an EC2 spot instance, AWS's two-minute interruption notice (instance metadata, IMDSv2) is
announced to logged-in users and logged, and counts as the stop of this idle period: the checker
does not act on its own then, nor right after the instance is started again.
After `idle_minutes` without any of them, logged-in users are warned, then the action runs, once
per idle period. The idle limit is IT's, or a user's own (a file in idle_limits_dir), held to IT's
cap (max_idle_minutes) and to whether IT allows off; the log says when the checker held one. If
the checker itself fails (nvidia-smi, CPU accounting), the host counts as busy.
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
import grp
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
    """ISO 8601 from Jupyter ('2026-11-28T10:02:00.123456Z') or a hold file, as aware UTC; ValueError
    when it is none. Converted to UTC here, so that no later comparison can overflow: a time at the
    edge of the calendar with an offset ('9999-12-31T23:59:59-23:59' is in the year 10000 in UTC)
    is refused as a value, not met as an OverflowError halfway through a check."""
    if not text:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    try:
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    except OverflowError:
        raise ValueError("a time outside the calendar in UTC") from None


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


@contextlib.contextmanager
def user_boundary(subject: str, ignored: list[str]):
    """Everything derived from one user's input is judged inside one of these: whatever goes wrong
    there (a Refused reason, or an error nobody foresaw: a value that overflows, a reply nested too
    deep) ends that user's part with a reason code and their name in ignored, and every other user's
    part, and the verdict, go on. Only the checker's own failure (CheckerFailure) passes through.
    The error's text may quote what the user planted: only its type is kept."""
    try:
        yield
    except Refused as refused:
        ignored.append(f"{subject}: {refused.code}")
    except CheckerFailure:
        raise
    except Exception as error:  # noqa: BLE001  (the boundary's purpose: one user's anything is theirs alone)
        ignored.append(f"{subject}: internal-error ({type(error).__name__})")


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
        # Their server's reply is theirs: anything in it (nested too deep, a time that overflows)
        # ends only their part.
        with user_boundary(f"jupyter of {user}", ignored):
            found, moment = user_activity(user, entry.pw_uid, entry.pw_gid, entry.pw_dir, token_file, runtime_root)
            executing += found
            if moment and (latest is None or moment > latest):
                latest = moment
    return executing, latest


def tty_used(tty: str) -> datetime:
    """Last input on a terminal: its device's access time (its user may set it, even to nonsense)."""
    return datetime.fromtimestamp(os.stat(f"/dev/{tty}").st_atime, timezone.utc)


def terminal_sessions(ignored: list[str] | None = None) -> list[tuple[str, str, datetime]]:
    """(user, tty, last input) of logged-in terminals; `ssh -N` has no terminal and is not here.
    Each terminal is judged in its user's boundary (an access time set beyond the calendar is theirs)."""
    ignored = [] if ignored is None else ignored
    result = subprocess.run(["who"], capture_output=True, text=True, timeout=10)
    sessions = []
    for line in result.stdout.splitlines():
        parts = line.split()
        # "alice pts/0 ..." (Debian 12) or "alice sshd pts/0 ..." (Debian 13): find the terminal.
        tty = next((part for part in parts[1:] if part.startswith("pts/")), None)
        if not tty or NAME_UNSAFE.search(tty.replace("/", "")):
            continue
        user = NAME_UNSAFE.sub("?", parts[0])
        with user_boundary(f"terminal {tty} of {user}", ignored):
            try:
                used = tty_used(tty)
            except OSError:
                continue  # logged out meanwhile
            sessions.append((user, tty, used))
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


# IT's work on the host. An Ansible run over SSH leaves, for as long as a task runs, processes whose
# command line carries one of Ansible's own markers: the become wrapper's "BECOME-SUCCESS-<id>"
# (pipelining), the module file "AnsiballZ_<module>.py" and its "ansible-tmp-<time>-<pid>-<n>"
# directory (without pipelining), the shell it starts every command with ("/bin/sh -c '... && sleep 0'"),
# or ansible-playbook itself where IT runs it on the host. Between tasks its SSH connection
# (ControlPersist) stays open: an SSH session of IT's account.
ANSIBLE_MARKERS = ("BECOME-SUCCESS-", "AnsiballZ_", "ansible-tmp-")
ANSIBLE_PROGRAMS = {"ansible-playbook", "ansible-pull", "ansible"}
SHELLS = {"sh", "bash", "dash"}
# sshd names an authenticated session's process "sshd: USER@notty" or "sshd: USER@pts/N" (Debian 12),
# "sshd-session: ..." (OpenSSH 9.8 and later, Debian 13), and runs it as USER.
SSH_SESSION_TITLES = ("sshd: ", "sshd-session: ")
MAX_STATUS_BYTES, MAX_CMDLINE_BYTES = 16 << 10, 64 << 10
PID_NAME = re.compile(r"[0-9]+")


def read_proc_file(directory: int, name: str, limit: int) -> bytes:
    """Up to limit bytes of one file of a /proc/PID directory (procfs hands it out in pieces)."""
    descriptor = os.open(name, UNTRUSTED, dir_fd=directory)
    try:
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(descriptor, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def processes(proc_dir: str = "/proc") -> list[tuple[int, tuple[int, ...], list[str]]]:
    """(pid, (real, effective, saved, filesystem uid), argv) of every process with a command line
    (kernel threads have none). Read from the kernel's own files in /proc, opened without following
    a link; a process that ends while being read is left out. No /proc at all: the checker cannot judge."""
    try:
        root = os.open(proc_dir, DIRECTORY)
    except OSError:
        raise CheckerFailure(f"cannot read the process table ({proc_dir})") from None
    found = []
    try:
        for name in os.listdir(root):
            if not PID_NAME.fullmatch(name):
                continue
            try:
                directory = os.open(name, DIRECTORY, dir_fd=root)
            except OSError:
                continue
            try:
                status = read_proc_file(directory, "status", MAX_STATUS_BYTES).decode("utf-8", "replace")
                cmdline = read_proc_file(directory, "cmdline", MAX_CMDLINE_BYTES)
            except OSError:
                continue  # ended meanwhile
            finally:
                os.close(directory)
            uid_line = next((line for line in status.splitlines() if line.startswith("Uid:")), "")
            uids = uid_line.split()[1:]
            words = cmdline.rstrip(b"\0").split(b"\0") if cmdline.strip(b"\0") else []
            argv = [word.decode("utf-8", "replace") for word in words]
            if len(uids) != 4 or not all(PID_NAME.fullmatch(uid) for uid in uids) or not argv:
                continue
            found.append((int(name), tuple(int(uid) for uid in uids), argv))
    finally:
        os.close(root)
    return sorted(found)


def group_members(group: str, accounts: list, groups: list) -> set[str]:
    """Names of the accounts in a group: listed in it, or with it as their primary group."""
    entry = next((item for item in groups if item.gr_name == group), None)
    if entry is None:
        return set()
    return set(entry.gr_mem) | {account.pw_name for account in accounts if account.pw_gid == entry.gr_gid}


def it_accounts(named: list[str], admin_groups: list[str], users_group: str,
                accounts=pwd.getpwall, groups=grp.getgrall) -> dict[int, str]:
    """uid -> name of IT's accounts: the ones the role names (the account IT's runs log in with),
    and the members of the admin groups that are not data scientists (a data scientist given sudo
    is still one: their forgotten tunnel must not keep the host up). Root is not among them: its
    processes count only as an Ansible run, never as a session."""
    everyone, every_group = accounts(), groups()
    scientists = group_members(users_group, everyone, every_group) if users_group else set()
    names = set(named)
    for group in admin_groups:
        names |= group_members(group, everyone, every_group) - scientists
    return {account.pw_uid: account.pw_name for account in everyone if account.pw_name in names and account.pw_uid != 0}


def ansible_process(argv: list[str]) -> bool:
    """Whether a command line is one an Ansible run starts on its target (see ANSIBLE_MARKERS)."""
    if any(marker in part for part in argv for marker in ANSIBLE_MARKERS):
        return True
    if len(argv) >= 3 and os.path.basename(argv[0]) in SHELLS and argv[1] == "-c" and argv[2].rstrip().endswith("&& sleep 0"):
        return True
    return any(os.path.basename(part) in ANSIBLE_PROGRAMS for part in argv[:2])


def parent_pids(proc_dir: str = "/proc") -> set[int]:
    """The pids that have a child process (each process's PPid, from /proc/PID/status)."""
    parents = set()
    try:
        root = os.open(proc_dir, DIRECTORY)
    except OSError:
        return parents
    try:
        for name in os.listdir(root):
            if not PID_NAME.fullmatch(name):
                continue
            try:
                directory = os.open(name, DIRECTORY, dir_fd=root)
            except OSError:
                continue
            try:
                status = read_proc_file(directory, "status", MAX_STATUS_BYTES).decode("utf-8", "replace")
            except OSError:
                continue
            finally:
                os.close(directory)
            ppid = next((line.split()[1:2] for line in status.splitlines() if line.startswith("PPid:")), [])
            if ppid and PID_NAME.fullmatch(ppid[0]):
                parents.add(int(ppid[0]))
    finally:
        os.close(root)
    return parents


def it_activity(proc_dir: str, it: dict[int, str], table=processes, parents=parent_pids) -> list[str]:
    """Busy reasons from IT's work: an Ansible run in progress, and every SSH session of an IT
    account while it runs something (a shell or a command: the session's process has a child).
    A session that runs nothing, such as Ansible's kept-open connection between runs or an
    `ssh -N` tunnel of the login account (which a workstation's owner uses too), does not keep the
    host up. Only processes that root or an IT account started count, all four of their uids: a
    data scientist can name a process anything (AnsiballZ_x.py, "sshd: admin@notty"), and a setuid
    program keeps its caller's real uid, but nobody but root and IT can make a process of root's or IT's."""
    trusted = {0, *it}
    run, sessions = None, {}
    working = parents(proc_dir)
    for pid, uids, argv in table(proc_dir):
        if not set(uids) <= trusted:
            continue
        owner = uids[0]
        if ansible_process(argv):
            run = run or (pid, owner)
        elif owner != 0 and set(uids) == {owner} and argv[0].startswith(SSH_SESSION_TITLES) and pid in working:
            sessions.setdefault(owner, pid)
    reasons = []
    if run:
        reasons.append(f"ansible run in progress (pid {run[0]}, user {'root' if run[1] == 0 else it[run[1]]})")
    reasons += [f"ssh session of IT's {it[uid]} (pid {pid})" for uid, pid in sorted(sessions.items(), key=lambda item: item[1])]
    return reasons


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


DEFAULT_HOLD_MAX_HOURS = 72


def moment(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def holds(directory: str, now: datetime, ignored: list[str], shadow: str = SHADOW,
          max_hours: float = DEFAULT_HOLD_MAX_HOURS, notes: list[str] | None = None) -> list[tuple[str, datetime | None]]:
    """(owner, end or None: until released) of each active hold. A hold is whose file it is (its
    owner's uid), whatever its name: in a sticky world-writable directory the name is anyone's to
    choose. A revoked (expired) account's hold is ignored: it would keep the host up with nobody to
    end it. No hold lasts longer than max_hours from when it was placed (the file's inode change
    time, which its owner cannot set back; placing it again renews it): an expiry beyond that counts
    until then (said in notes, with the owner's name), and a hold until released ends then. Each
    file is judged inside its owner's boundary: one malformed hold leaves everyone else's intact."""
    notes = [] if notes is None else notes
    longest = timedelta(hours=max_hours)
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
            with user_boundary(f"hold of {owner}", ignored):
                found = one_hold(descriptor, name, seen.st_uid, now, longest)
                if found is None:
                    continue
                until, asked_beyond = found
                if asked_beyond:
                    notes.append(f"hold of {owner} asks beyond the {max_hours:g} h a hold may last: "
                                 f"counted until {moment(until)}")
                if owner not in active or active[owner] is not None and (until is None or until > active[owner]):
                    active[owner] = until
    finally:
        os.close(descriptor)
    return sorted(active.items())


def one_hold(directory: int, name: str, uid: int, now: datetime, longest: timedelta) -> tuple[datetime | None, bool] | None:
    """(end or None, whether its own expiry was beyond the longest hold) of one active hold file; None
    when it is gone or over; Refused with a reason code when it is not a hold."""
    try:
        opened, data = read_regular_at(directory, name, MAX_HOLD_BYTES, owner=uid)
    except Refused as refused:
        if refused.code == "missing":
            return None  # released while we looked
        raise
    try:
        text = data.decode("utf-8").strip()
        asked = parse_time(text) if text else None
    except ValueError:  # not UTF-8, or not a time
        raise Refused("malformed") from None
    placed = min(datetime.fromtimestamp(opened.st_ctime, timezone.utc), now)  # a clock set back gains nothing
    bound = placed + longest
    if bound <= now and (asked is None or asked > now):
        raise Refused("past-longest-hold")  # it would have held on: say why it does not
    if asked is not None and asked <= now:
        return None  # expired as asked
    if asked is None:
        return None, False
    return min(asked, bound), asked > bound


# A user's own idle limit (`runner.py autostop MINUTES|off`): a regular file of theirs in a sticky
# directory, "MINUTES" or "off". IT's cap and whether off is allowed bound it, whatever it says.
IDLE_WISH = re.compile(r"[0-9]{1,6}|off")
MAX_WISH_BYTES = 32
# `runner.py autostop` leaves one file per user; more than this many of one owner's are not read.
MAX_WISH_FILES = 8


def idle_wishes(directory: str, now: datetime, ignored: list[str], shadow: str = SHADOW) -> dict[str, int]:
    """owner -> the idle minutes they asked for (0: off), their latest file's; what a file is named is
    anyone's choice, whose it is is its owner's. A revoked account asks nothing. Each file in its
    owner's boundary. No directory (a host converged before there was one): nobody asked."""
    try:
        descriptor = os.open(directory, DIRECTORY)
    except FileNotFoundError:
        return {}
    wishes: dict[str, tuple[float, int]] = {}
    expired = expired_accounts(now, shadow)
    # Each owner's files are read up to a bound, and what is ignored is said once per owner and
    # reason: planting thousands of files costs the checker no time and floods no log.
    files_of: dict[str, int] = {}
    said: list[str] = []
    try:
        for name in sorted(os.listdir(descriptor)):
            try:
                seen = os.stat(name, dir_fd=descriptor, follow_symlinks=False)
            except OSError:
                continue
            owner = owner_name(seen.st_uid)
            if owner in expired:
                said.append(f"idle limit of {owner}: account-expired")
                continue
            files_of[owner] = files_of.get(owner, 0) + 1
            if files_of[owner] > MAX_WISH_FILES:
                said.append(f"idle limit of {owner}: too-many-files")
                continue
            with user_boundary(f"idle limit of {owner}", said):
                try:
                    opened, data = read_regular_at(descriptor, name, MAX_WISH_BYTES, owner=seen.st_uid)
                except Refused as refused:
                    if refused.code == "missing":
                        continue
                    raise
                text = data.decode("ascii", "replace").strip().lower()
                if not IDLE_WISH.fullmatch(text) or text != "off" and int(text) < 1:
                    raise Refused("malformed")
                if owner not in wishes or opened.st_ctime >= wishes[owner][0]:
                    wishes[owner] = (opened.st_ctime, 0 if text == "off" else int(text))
    finally:
        os.close(descriptor)
        ignored.extend(dict.fromkeys(said))
    return {owner: minutes for owner, (_, minutes) in wishes.items()}


def idle_limit(config: dict, now: datetime, ignored: list[str], notes: list[str],
               accounts=pwd.getpwall, groups=grp.getgrall) -> tuple[int, str]:
    """(idle minutes in force, 0: off; whose they are: "IT" or a user's name). Each wish is held to
    IT's bounds (max_idle_minutes, 0: none; allow_off), and notes say when it was, with the name.
    On a shared host the longest wish wins, IT's idle_minutes standing for every data scientist
    (users_group) who asked nothing: nobody shortens the wait of someone who did not ask."""
    # Anything but a true boolean (a string the role should never write) is IT's stricter choice.
    cap, allow_off = int(config.get("max_idle_minutes", 0)), config.get("allow_off", True) is True
    limits = ", ".join([*([f"at most {cap} min"] if cap else []), *([] if allow_off else ["never off"])])

    def bounded(who: str, minutes: int) -> int:
        asked = "off" if minutes == 0 else f"{minutes} min"
        if minutes == 0 and not allow_off:
            held = cap or int(config["idle_minutes"])  # the longest IT allows, or IT's own limit
        elif cap and minutes > cap:
            held = cap
        else:
            return minutes
        if held <= 0:
            return minutes  # IT's own settings leave nothing to hold it to (the role refuses them)
        notes.append(f"idle limit of {who}: {asked} asked, beyond IT's bounds ({limits}): {held} min applies")
        return held

    it_default = bounded("IT", int(config["idle_minutes"]))
    directory = config.get("idle_limits_dir", "")
    asked = idle_wishes(directory, now, ignored, config.get("shadow_file", SHADOW)) if directory else {}
    wishes = {owner: bounded(owner, minutes) for owner, minutes in asked.items()}
    if not wishes:
        return it_default, "IT"
    users_group = config.get("users_group", "")
    expired = expired_accounts(now, config.get("shadow_file", SHADOW))
    scientists = group_members(users_group, accounts(), groups()) - expired if users_group else set()
    candidates = sorted(wishes.items(), key=lambda item: item[0])
    if scientists - set(wishes):
        candidates.insert(0, ("IT", it_default))  # IT's first: on a tie, the default is named
    off = next((who for who, minutes in candidates if minutes == 0), None)
    if off:
        return 0, off
    who, minutes = max(candidates, key=lambda item: item[1])
    return minutes, who


def _metadata(connection: http.client.HTTPConnection, method: str, path: str, headers: dict) -> tuple[int, bytes]:
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    return response.status, response.read(4096)


def _imds_get(base_url: str, path: str, timeout: float) -> bytes | None:
    """One document from the metadata service (IMDSv2, never through a proxy); None when there is
    none (404), no metadata service, or no answer."""
    if not base_url:
        return None
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port or 80, timeout=timeout)
    try:
        status, token = _metadata(connection, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        if status != 200:
            return None
        status, body = _metadata(connection, "GET", path, {"X-aws-ec2-metadata-token": token.decode("ascii", "replace")})
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return body if status == 200 else None


def spot_notice(base_url: str, timeout: float = 2.0) -> tuple[str, datetime] | None:
    """AWS's spot interruption notice, (action, when); None when there is none, or an answer that is
    not one (the service is EC2's, not a user's, but a bad answer must not stop the checker)."""
    body = _imds_get(base_url, "/latest/meta-data/spot/instance-action", timeout)
    if body is None:
        return None
    try:
        notice = json.loads(body)
        action, when = str(notice["action"]), parse_time(str(notice["time"]))
    except (ValueError, KeyError, TypeError):
        return None
    if action not in ("stop", "terminate", "hibernate") or when is None:
        return None
    return action, when


# The budget job's warning, an instance tag (gpubox:budget), readable in the metadata when gpubox
# launched the instance with its tags there. Only IT's job may write it (IAM); it is still shown
# as plain printable text of bounded length, since it reaches every logged-in user's terminal.
BUDGET_TAG_PATH = "/latest/meta-data/tags/instance/gpubox:budget"
BUDGET_TEXT_MAX = 160


def budget_notice(base_url: str, timeout: float = 2.0) -> str:
    """The budget warning on this instance, as one line of printable ASCII; "" when there is none."""
    body = _imds_get(base_url, BUDGET_TAG_PATH, timeout)
    if not body:
        return ""
    text = "".join(character if " " <= character <= "~" else " " for character in body.decode("utf-8", "replace"))
    return " ".join(text.split())[:BUDGET_TEXT_MAX]


def publish_budget(config: dict, state: dict, text: str) -> None:
    """The warning for logins (a root-owned 0644 file the login script prints) and, once per new
    text, for the people logged in now; no warning: no file."""
    path = config.get("budget_file", "")
    if path:
        if text:
            write_readable(path, text + "\n")
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    if text and state.get("budget_warned") != text:
        warn(config["warn_command"], f"gpubox: the team's budget for this workstation's owner: {text}. "
             "`runner.py cost` shows the spend; the owner's manager or IT can raise it.")
    if text:
        state["budget_warned"] = text
    else:
        state.pop("budget_warned", None)


def load_state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def write_readable(path, text):
    """Replace a root-owned file every account may read (0644), whole or not at all."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path + ".tmp", 0o644)
    os.replace(path + ".tmp", path)


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


def observe(config: dict, state: dict, now: datetime, ignored: list[str],
            notes: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Busy reasons (empty when idle) and the facts for the log line; what users control and was
    not usable goes to ignored as a reason code, and counts as nothing; where the checker held a
    user's input to IT's bounds, notes say so."""
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
    for user, tty, used in terminal_sessions(ignored):
        if now - used < limit:
            reasons.append(f"{user} typing on {tty} (last {short(used)})")
    for name, until in holds(config["holds_dir"], now, ignored, config.get("shadow_file", SHADOW),
                             config.get("hold_max_hours", DEFAULT_HOLD_MAX_HOURS), notes):
        reasons.append(f"held by {name}" + (f" until {short(until)}" if until else ""))
    it = it_accounts(config.get("it_accounts", []), config.get("it_groups", ["sudo", "admin"]),
                     config.get("users_group", "gpubox"))
    reasons += it_activity(config.get("proc_dir", "/proc"), it)
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
    ignored, notes = [], []
    limit_by = "IT"
    try:
        limit, limit_by = idle_limit(config, now, ignored, notes)
        config = {**config, "idle_minutes": limit}
        reasons, facts = observe(config, state, now, ignored, notes)
    except CheckerFailure as failure:  # never stop a host because the checker broke
        reasons, facts = [f"checker failed, counting as busy: {failure}"], []
    except Exception as error:  # noqa: BLE001  (its text may quote what a user planted: the type only)
        reasons, facts = [f"checker failed, counting as busy: internal error ({type(error).__name__})"], []
    for note in ignored:
        print(f"autostop: ignored {note}", flush=True)
    for note in notes:
        print(f"autostop: {note}", flush=True)
    if config["idle_minutes"] <= 0:
        reasons = reasons or ["autostop disabled (idle_minutes 0)" if limit_by == "IT" else f"autostop off, as {limit_by} asked"]
    notice = spot_notice(config.get("imds_url", ""))
    budget = budget_notice(config.get("imds_url", ""))
    publish_budget(config, state, budget)
    if notice:
        reasons = [f"spot interruption: AWS will {notice[0]} this instance at {short(notice[1])}", *reasons]
    if reasons:
        state["last_busy"] = now.isoformat()
        state.pop("warned_for", None)
    if notice:
        announce_interruption(config, state, *notice)
    last_busy = parse_time(state["last_busy"])
    idle = (now - last_busy).total_seconds() / 60
    # How often the checker runs in practice (autostop_interval, and any delay): readers of the
    # status file judge its age by it.
    previous_check = state.get("last_check")
    state["last_check"] = now.isoformat()
    try:
        check_interval = round((now - parse_time(previous_check)).total_seconds()) if previous_check else None
    except (AttributeError, TypeError, ValueError):  # a state file from before, or damaged
        check_interval = None
    capped = config["max_hours"] > 0 and (now - boot) >= timedelta(hours=config["max_hours"])
    remaining = config["idle_minutes"] - idle
    status = {"checked_at": now.isoformat(), "busy": bool(reasons), "reasons": reasons, "idle_minutes": round(idle, 1),
              "idle_limit": config["idle_minutes"], "idle_limit_by": limit_by,
              "stops_in_minutes": None if reasons else round(max(remaining, 0), 1),
              # For JupyterLab's notice (roles/jupyter, gpubox_notices.py): when to warn, and which
              # idle period a warning is about (one notice per period).
              "warn_minutes": config["warn_minutes"], "idle_since": state["last_busy"],
              "check_interval_seconds": check_interval,
              "ignored": ignored, "notes": notes, "budget": budget}
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
    write_readable(config["status_file"], json.dumps(status))
    return status


def main():
    with open(sys.argv[1] if len(sys.argv) > 1 else CONFIG, encoding="utf-8") as handle:
        config = json.load(handle)
    check(config)


if __name__ == "__main__":
    main()
