"""The autostop checker's decisions, run on this machine with a clock it is handed: warning once,
acting exactly once per idle period, holds and their expiry, and a failing check counting as busy.
nvidia-smi parsing is checked against recorded outputs. Then the checker against its users (it
runs as root): holds that are FIFOs, symlinks or directories, holds attributed by owner, token
files linked to root-only files, broken tokens, each user's server asked only through their own
socket by a process of theirs (real servers of other uids on Unix sockets), bounded, and no
exception text in what it writes. (Real Jupyter
kernels, SSH sessions and CPU load are exercised on test hosts in molecule/jupyter/tests/test_autostop.py.)"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401  (loaded before a test server drops to nobody, who may not read the stdlib)
import importlib.util
import json
import os
import pwd
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from conftest import PROJECT

CHECKER = PROJECT / "roles" / "autostop" / "files" / "gpubox_autostop.py"
spec = importlib.util.spec_from_file_location("gpubox_autostop", CHECKER)
autostop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(autostop)

RECORDED = {
    "one T4, idle": ("0\n", [0.0]),
    "one A10G, training": ("97\n", [97.0]),
    "eight H100s, mixed": ("100\n98\n0\n0\n45\n0\n0\n3\n", [100.0, 98.0, 0.0, 0.0, 45.0, 0.0, 0.0, 3.0]),
    "with units": ("37 %\n", [37.0]),
}


@pytest.mark.parametrize("case", list(RECORDED))
def test_nvidia_smi_utilisation_parsed(case):
    output, expected = RECORDED[case]
    assert autostop.parse_nvidia_smi(output) == expected


@pytest.mark.parametrize("output", ["[N/A]\n", "[Not Supported]\n", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"])
def test_nvidia_smi_without_a_reading_is_an_error_not_zero(output):
    with pytest.raises(ValueError):
        autostop.parse_nvidia_smi(output)


@pytest.fixture
def config(tmp_path):
    return checker_config(tmp_path)


def checker_config(tmp_path: Path) -> dict:
    """A checker configuration whose every path is under tmp_path (also for test_jupyter_notices.py)."""
    (tmp_path / "jupyter").mkdir()
    (tmp_path / "holds").mkdir()
    (tmp_path / "proc").mkdir()
    return {
        "idle_minutes": 3, "max_hours": 0, "warn_minutes": 1, "gpu_threshold": 10, "gpu_window_minutes": 5,
        # This machine's own CPU use (the test suite) must not count here.
        "cpu_threshold": 1000, "watch_gpu": False, "nvidia_smi": ["nvidia-smi"],
        "action": ["/bin/sh", "-c", f"echo acted >> {tmp_path / 'actions'}"],
        "warn_command": ["/bin/sh", "-c", f"echo \"$0\" >> {tmp_path / 'warnings'}"],
        "jupyter_config_dir": str(tmp_path / "jupyter"), "jupyter_token_file": ".token",
        "holds_dir": str(tmp_path / "holds"), "state_file": str(tmp_path / "state" / "state.json"),
        "status_file": str(tmp_path / "status.json"),
        # A process table of the test's making: this machine's own (other work, Ansible runs) must not count.
        "proc_dir": str(tmp_path / "proc"), "it_accounts": [], "it_groups": [], "users_group": "",
    }


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_warns_once_then_acts_exactly_once(config, tmp_path):
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    first = autostop.check(config, start)
    assert first["busy"] is False and first["stops_in_minutes"] == 3
    for minute in (1, 1.5):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "warnings") == []
    for minute in (2.2, 2.6):
        autostop.check(config, start + timedelta(minutes=minute))
    warnings = lines(tmp_path / "warnings")
    assert len(warnings) == 1 and "idle 2 min and stops in 1 min" in warnings[0]
    assert lines(tmp_path / "actions") == []
    for minute in (3.1, 4, 10):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "actions") == ["acted"]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["busy"] is False and status["idle_minutes"] == 10


def test_a_host_is_not_idle_from_before_it_booted(config, tmp_path, monkeypatch):
    """The state a workstation wakes with, after a stop or from an image baked hours before: idle
    since long ago, already acted on. Its first checks count idleness from the boot, and it stops
    once, idle_minutes after the boot, not at its first check."""
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    state = Path(config["state_file"])
    state.parent.mkdir(parents=True)
    state.write_text(json.dumps({"last_busy": "2026-11-26T08:00:00+00:00", "acted_for": "2026-11-26T08:00:00+00:00",
                                 "boot_id": "the-builders-boot", "booted_at": "2026-11-26T07:00:00+00:00"}))
    monkeypatch.setattr(autostop, "this_boot", lambda: ("a-new-boot", 60.0), raising=False)  # up one minute at `start`
    first = autostop.check(config, start)
    assert first["busy"] is False and first["idle_minutes"] == 1 and first["stops_in_minutes"] == 2, first
    assert lines(tmp_path / "actions") == []
    for minute in (1, 1.6, 2.1, 3, 5):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "actions") == ["acted"]
    assert len(lines(tmp_path / "warnings")) == 2  # the one-minute warning, then the stop's notice
    # The same boot later on: its idle period is not moved again, and was acted on once.
    autostop.check(config, start + timedelta(hours=2))
    assert lines(tmp_path / "actions") == ["acted"]


def test_a_hold_keeps_it_busy_until_it_expires(config, tmp_path):
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    (tmp_path / "holds" / "alice").write_text((start + timedelta(minutes=30)).isoformat())
    me = pwd.getpwuid(os.getuid()).pw_name  # a hold is its file owner's
    for minute in range(0, 30):  # the timer runs every minute
        status = autostop.check(config, start + timedelta(minutes=minute))
        assert status["busy"] and status["reasons"] == [f"held by {me} until 10:30 UTC"]
    after = autostop.check(config, start + timedelta(minutes=31))
    # Last seen held at 10:29: idle since then.
    assert not after["busy"] and after["stops_in_minutes"] == pytest.approx(1, abs=0.1)
    autostop.check(config, start + timedelta(minutes=33))
    assert lines(tmp_path / "actions") == ["acted"]


def test_gpu_readings_above_the_threshold_keep_the_host_busy_for_the_window(config, tmp_path):
    reading = tmp_path / "reading"
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat {reading}\n")
    fake.chmod(0o755)
    config.update(watch_gpu=True, nvidia_smi=[str(fake)])
    start, state = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc), {}
    reading.write_text("3\n2\n")
    assert autostop.gpu_sample(config, state, start) == ("", "GPU 3%")
    reading.write_text("0\n55\n")  # one of two GPUs training
    reason, fact = autostop.gpu_sample(config, state, start + timedelta(minutes=1))
    assert reason == "GPU above 10% in the last 5 min" and fact == "GPU 55%"
    reading.write_text("0\n0\n")
    assert autostop.gpu_sample(config, state, start + timedelta(minutes=5))[0]  # 55% is still in the window
    assert autostop.gpu_sample(config, state, start + timedelta(minutes=6, seconds=1)) == ("", "GPU 0%")


def test_a_failing_check_counts_as_busy_and_never_acts(config, tmp_path):
    # The checker's own tool is missing on a host with a GPU: it cannot judge the host.
    config.update(watch_gpu=True, nvidia_smi=[str(tmp_path / "no-nvidia-smi")])
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    for minute in (0, 5, 60):
        status = autostop.check(config, start + timedelta(minutes=minute))
        assert status["busy"] and status["reasons"] == [
            "checker failed, counting as busy: nvidia-smi is not installed, but this host has a GPU to watch"]
    assert lines(tmp_path / "actions") == []


def test_one_users_broken_jupyter_is_no_activity_not_a_busy_host(config, tmp_path):
    # Settings for an account that does not exist (a user's state, not the checker's): no activity.
    (tmp_path / "jupyter" / "ghost-user.env").write_text("GPUBOX_JUPYTER_PORT=8899\n")
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    for minute in (0, 2, 4):
        status = autostop.check(config, start + timedelta(minutes=minute))
    assert not status["busy"] and status["ignored"] == ["jupyter of ghost-user: unknown-user"]
    assert lines(tmp_path / "actions") == ["acted"]


def test_an_unexpected_error_counts_as_busy_without_its_text(config, tmp_path, monkeypatch, capsys):
    def leaky():
        raise RuntimeError("root:$y$j9T$planted-secret:19000:0:99999:7:::")

    monkeypatch.setattr(autostop, "cpu_seconds", leaky)
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    assert status["reasons"] == ["checker failed, counting as busy: internal error (RuntimeError)"]
    written = (tmp_path / "status.json").read_text() + capsys.readouterr().out
    assert "planted-secret" not in written and "RuntimeError" in written


def test_zero_disables(config, tmp_path):
    config["idle_minutes"] = 0
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    for minute in (0, 100, 1000):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "actions") == []


# The checker against its users. Other uids need root (to own files and listeners as them).
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="plays other users: needs root")
NOBODY = pwd.getpwnam("nobody").pw_uid
SECRET = "0123456789abcdef" * 4  # a valid-looking token in a root-only file: must never be read
VALID = "fedcba9876543210" * 4


def run_checker(config: dict, tmp_path: Path, limit: float = 20) -> tuple[dict, str, float]:
    """The checker as the timer runs it, in its own process, so a hang fails the test instead of blocking it."""
    (tmp_path / "autostop.json").write_text(json.dumps(config))
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(CHECKER), str(tmp_path / "autostop.json")], capture_output=True, text=True,
                            timeout=limit, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(Path(config["status_file"]).read_text()), result.stdout + result.stderr, time.monotonic() - started


@needs_root
def test_holds_that_are_not_regular_files_are_ignored_and_never_block(config, tmp_path):
    holds = tmp_path / "holds"
    os.mkfifo(holds / "alice")  # opening it for reading would wait for a writer forever
    (tmp_path / "secret").write_text(SECRET)
    (tmp_path / "secret").chmod(0o600)
    (holds / "bob").symlink_to(tmp_path / "secret")
    (holds / "carol").mkdir()
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(holds / "dave"))
    os.lchown(holds / "bob", NOBODY, NOBODY)
    try:
        status, log, seconds = run_checker(config, tmp_path)
    finally:
        listening.close()
    assert seconds < 10
    assert not status["busy"], status
    assert sorted(status["ignored"]) == ["hold of nobody: not-regular"] + ["hold of root: not-regular"] * 3
    assert SECRET not in log and SECRET not in Path(config["status_file"]).read_text()


@needs_root
def test_a_hold_is_its_owners_whatever_its_name(config, tmp_path):
    hold = tmp_path / "holds" / "alice"  # named after someone else
    hold.write_text("")
    os.chown(hold, NOBODY, NOBODY)
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    assert status["reasons"] == ["held by nobody"]


def test_a_hard_linked_hold_is_ignored(config, tmp_path):
    """Where fs.protected_hardlinks is 0 anyone may link root's or another user's file into the
    holds directory: a file with a second name is nobody's hold."""
    me = pwd.getpwuid(os.getuid()).pw_name
    original = tmp_path / "elsewhere"
    original.write_text("")
    os.link(original, tmp_path / "holds" / "linked")
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    assert status["reasons"] == [] and status["ignored"] == [f"hold of {me}: hard-linked"]
    original.unlink()  # its only name now: a hold again
    assert autostop.check(config, datetime(2026, 11, 28, 10, 1, tzinfo=timezone.utc))["reasons"] == [f"held by {me}"]


def test_a_revoked_accounts_hold_is_ignored(config, tmp_path):
    """ssh_access revokes by expiring the account (shadow's expiry day 0): a hold it left behind
    would keep the host up with nobody able to release it."""
    me = pwd.getpwuid(os.getuid()).pw_name
    (tmp_path / "holds" / "forever").write_text("")
    shadow = tmp_path / "shadow"
    config["shadow_file"] = str(shadow)
    now = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    today = (now - datetime(1970, 1, 1, tzinfo=timezone.utc)).days
    for expiry, held in (("", True), (str(today + 1), True), ("0", False), (str(today), False)):
        shadow.write_text(f"other:*:20000:0:99999:7:::\n{me}:$6$secret-hash:20000:0:99999:7::{expiry}:\n")
        status = autostop.check(config, now)
        assert status["reasons"] == ([f"held by {me}"] if held else []), expiry
        assert status["ignored"] == ([] if held else [f"hold of {me}: account-expired"]), expiry
        assert "secret-hash" not in (tmp_path / "status.json").read_text()


def test_a_malformed_hold_is_ignored_with_a_reason(config, tmp_path):
    (tmp_path / "holds" / "mine").write_text("until the cows come home")
    (tmp_path / "holds" / "big").write_text("x" * 4096)
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    me = pwd.getpwuid(os.getuid()).pw_name
    assert not status["busy"] and sorted(status["ignored"]) == [f"hold of {me}: malformed", f"hold of {me}: too-large"]
    assert "cows" not in (tmp_path / "status.json").read_text()


def home_of_nobody(tmp_path: Path, token: str | None = VALID) -> Path:
    """A home owned by nobody under a root-owned parent, with a token file of nobody's."""
    home = tmp_path / "home"
    (home / "tok").mkdir(parents=True)
    if token is not None:
        (home / "tok" / "en").write_text(token)
    for path in (home, home / "tok", *((home / "tok" / "en",) if token is not None else ())):
        os.chown(path, NOBODY, NOBODY)
    return home


@needs_root
@pytest.mark.parametrize("plant", ["symlink", "symlinked directory", "hard link", "fifo"])
def test_a_token_file_planted_on_a_root_only_file_is_never_read(tmp_path, plant):
    (tmp_path / "secret").write_text(SECRET)
    (tmp_path / "secret").chmod(0o600)
    home = home_of_nobody(tmp_path, token=None)
    if plant == "symlink":
        (home / "tok" / "en").symlink_to(tmp_path / "secret")
    elif plant == "symlinked directory":
        (home / "tok").rmdir()
        (tmp_path / "rootdir").mkdir()
        (tmp_path / "rootdir" / "en").write_text(SECRET)
        (home / "tok").symlink_to(tmp_path / "rootdir")
    elif plant == "hard link":  # where the kernel allows it, the link is still root's file
        os.link(tmp_path / "secret", home / "tok" / "en")
    else:
        os.mkfifo(home / "tok" / "en")
    with pytest.raises(autostop.Refused) as refused:
        autostop.read_token(str(home), "tok/en", NOBODY)
    assert refused.value.code in {"not-regular", "wrong-owner", "unsafe-directory"}
    assert SECRET not in str(refused.value)


@needs_root
def test_a_valid_token_of_its_owner_is_read(tmp_path):
    assert autostop.read_token(str(home_of_nobody(tmp_path)), "tok/en", NOBODY) == VALID


@pytest.fixture
def runtime(tmp_path):
    """A root-owned runtime root (0755, where every account may look, as /run/gpubox/jupyter) with a
    private directory of nobody's (0700), as the jupyter@ unit makes them. Yields the root."""
    root = Path(tempfile.mkdtemp(prefix="gpubox-runtime-", dir="/tmp"))
    try:
        root.chmod(0o755)
        (root / "nobody").mkdir(mode=0o700)
        os.chown(root / "nobody", NOBODY, NOBODY)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def jupyter_as(uid: int, path: Path, kernels: list, status: int = 200, raw: bytes | None = None, stall: bool = False):
    """A minimal Jupyter API on the Unix socket path, served by a process running as uid (answering
    status, or raw bytes as the body, or stalling after the headers). Yields a function returning
    every Authorization header it received."""
    ready_read, ready_write = os.pipe()
    seen_read, seen_write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):  # noqa: N802  (http.server's name)
                    os.write(seen_write, (self.headers.get("Authorization", "") + "\n").encode())
                    body = raw if raw is not None else json.dumps(kernels if self.path == "/api/kernels" else []).encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if stall:
                        self.wfile.flush()
                        time.sleep(60)
                    self.wfile.write(body)

                def address_string(self):
                    return "unix"

                def log_message(self, *args):
                    pass

            server = socketserver.UnixStreamServer(str(path), Handler)
            os.write(ready_write, b"ready\n")
            server.serve_forever()
        except BaseException as error:  # noqa: BLE001  (the test fails on the missing signal; say why)
            os.write(2, f"test server as uid {uid} failed: {error!r}\n".encode())
        finally:
            os._exit(0)
    os.close(ready_write)
    os.close(seen_write)
    assert os.read(ready_read, 16) == b"ready\n"

    def seen() -> list[str]:
        os.set_blocking(seen_read, False)
        with contextlib.suppress(BlockingIOError):
            return os.read(seen_read, 65536).decode().splitlines()
        return []

    try:
        yield seen
    finally:
        os.kill(child, 9)
        os.waitpid(child, 0)
        os.close(ready_read)
        os.close(seen_read)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def accounts(home: Path):
    """pwd for the tests: nobody with the test home, root as it is."""
    def account(name: str):
        if name == "nobody":
            return pwd.struct_passwd(("nobody", "x", NOBODY, NOBODY, "", str(home), "/bin/sh"))
        if name == "root":
            return pwd.getpwnam("root")
        raise KeyError(name)
    return account


BUSY = [{"name": "python3", "execution_state": "busy", "last_activity": "2026-11-28T10:00:00Z"}]


@needs_root
def test_the_owners_server_gets_its_owners_token_through_its_socket(tmp_path, runtime):
    home = home_of_nobody(tmp_path)
    with jupyter_as(NOBODY, runtime / "nobody" / "jupyter.sock", BUSY) as seen:
        (tmp_path / "nobody.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
        ignored = []
        executing, latest = autostop.jupyter_activity(str(tmp_path), "tok/en", ignored, account=accounts(home),
                                                      runtime_root=str(runtime))
        assert seen() == [f"token {VALID}"] * 2
    assert ignored == [] and executing == ["nobody's kernel python3"] and latest.hour == 10


@needs_root
def test_a_server_that_is_not_running_is_no_activity_and_no_complaint(tmp_path, runtime):
    home = home_of_nobody(tmp_path)
    (tmp_path / "nobody.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
    ignored = []
    assert autostop.jupyter_activity(str(tmp_path), "tok/en", ignored, account=accounts(home),
                                     runtime_root=str(runtime)) == ([], None)
    (runtime / "nobody").rmdir()  # systemd removed the directory with the stopped service
    assert autostop.jupyter_activity(str(tmp_path), "tok/en", ignored, account=accounts(home),
                                     runtime_root=str(runtime)) == ([], None)
    assert ignored == []


@needs_root
@pytest.mark.parametrize(("token", "code"), [("", "malformed"), ("   \n", "malformed"), ("wrong\n", "malformed"),
                                             (VALID.upper(), "malformed"), (VALID + "0", "malformed"),
                                             (f"{VALID}\n{VALID}\n", "too-large")])
def test_a_malformed_token_is_no_activity_and_never_sent(tmp_path, runtime, token, code):
    home = home_of_nobody(tmp_path, token=token)
    with jupyter_as(NOBODY, runtime / "nobody" / "jupyter.sock", BUSY) as seen:
        (tmp_path / "nobody.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
        ignored = []
        executing, latest = autostop.jupyter_activity(str(tmp_path), "tok/en", ignored, account=accounts(home),
                                                      runtime_root=str(runtime))
        assert seen() == []
    assert (executing, latest, ignored) == ([], None, [f"jupyter of nobody: token-{code}"])


@needs_root
@pytest.mark.parametrize(("reply", "code"), [({"status": 403}, "http-403"), ({"status": 500}, "http-500"),
                                             ({"raw": b"<html>not json"}, "bad-json"), ({"raw": b'{"a": 1}'}, "bad-json"),
                                             ({"raw": b'[{"last_activity": "yesterday"}]'}, "bad-json"),
                                             ({"stall": True}, "timeout")])
def test_a_users_failing_server_is_no_activity_with_a_reason(tmp_path, runtime, reply, code):
    home = home_of_nobody(tmp_path)
    with jupyter_as(NOBODY, runtime / "nobody" / "jupyter.sock", [], **reply):
        (tmp_path / "nobody.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
        ignored = []
        started = time.monotonic()
        found = autostop.jupyter_activity(str(tmp_path), "tok/en", ignored, account=accounts(home),
                                          runtime_root=str(runtime))
    assert found == ([], None) and ignored == [f"jupyter of nobody: {code}"]
    assert time.monotonic() - started < autostop.JUPYTER_SECONDS + 2


@needs_root
def test_one_users_stalled_server_does_not_hide_anothers_busy_kernel(tmp_path, runtime):
    """nobody's server stalls (as a user can make their own probe hang); root's busy kernel, asked
    next through root's own socket, still counts, and the whole check stays bounded."""
    home = home_of_nobody(tmp_path)
    (runtime / "root").mkdir(mode=0o700)
    (tmp_path / "root-home" / "tok").mkdir(parents=True, mode=0o700)
    (tmp_path / "root-home" / "tok" / "en").write_text(VALID)
    (tmp_path / "root-home" / "tok" / "en").chmod(0o600)
    with jupyter_as(NOBODY, runtime / "nobody" / "jupyter.sock", [], stall=True), \
            jupyter_as(0, runtime / "root" / "jupyter.sock", [{**BUSY[0], "name": "roots"}]) as seen_by_root:
        for user in ("nobody", "root"):
            (tmp_path / f"{user}.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
        account = accounts(home)
        ignored = []
        started = time.monotonic()
        found = autostop.jupyter_activity(
            str(tmp_path), "tok/en", ignored, runtime_root=str(runtime),
            account=lambda name: pwd.struct_passwd(("root", "x", 0, 0, "", str(tmp_path / "root-home"), "/bin/sh"))
            if name == "root" else account(name))
        assert seen_by_root() == [f"token {VALID}"] * 2
    assert found[0] == ["root's kernel roots"] and ignored == ["jupyter of nobody: timeout"]
    assert time.monotonic() - started < autostop.JUPYTER_SECONDS + 3


@needs_root
def test_the_probe_reaches_only_what_the_user_can_reach(tmp_path):
    """The probe runs as the user: root's socket in a root-only directory is out of its reach (the
    kernel says no), so root never connects on a user's behalf wherever a path leads."""
    private = Path(tempfile.mkdtemp(prefix="gpubox-root-only-", dir="/tmp"))
    try:
        private.chmod(0o700)
        with jupyter_as(0, private / "jupyter.sock", BUSY) as seen:
            answers = autostop.ask_as_user(NOBODY, NOBODY, str(private / "jupyter.sock"), VALID)
            assert seen() == []
        assert answers == {"error": "permission-denied"}
    finally:
        shutil.rmtree(private, ignore_errors=True)


@needs_root
@pytest.mark.parametrize("plant", ["other owner", "open to others", "symlinked directory", "symlinked socket", "regular file"])
def test_a_socket_or_directory_that_is_not_the_users_alone_is_refused(tmp_path, runtime, plant):
    directory = runtime / "nobody"
    if plant == "other owner":
        os.chown(directory, 0, 0)
    elif plant == "open to others":
        directory.chmod(0o755)
    elif plant == "symlinked directory":
        directory.rmdir()
        (runtime / "elsewhere").mkdir(mode=0o700)
        os.chown(runtime / "elsewhere", NOBODY, NOBODY)
        directory.symlink_to(runtime / "elsewhere")
    elif plant == "symlinked socket":
        (directory / "jupyter.sock").symlink_to("/run/systemd/private")
    else:
        (directory / "jupyter.sock").write_text("")
        os.chown(directory / "jupyter.sock", NOBODY, NOBODY)
    with pytest.raises(autostop.Refused) as refused:
        autostop.socket_of(str(runtime), "nobody", NOBODY)
    expected = "not-a-socket" if plant in ("symlinked socket", "regular file") else "socket-dir-unsafe"
    assert refused.value.code == expected


@needs_root
def test_a_probe_that_floods_its_output_is_cut_off(monkeypatch):
    monkeypatch.setattr(autostop, "PROBE", "import sys\nwhile True: sys.stdout.write('x' * 65536)")
    started = time.monotonic()
    with pytest.raises(autostop.Refused, match="reply-too-large"):
        autostop.ask_as_user(NOBODY, NOBODY, "/nonexistent", VALID)
    assert time.monotonic() - started < autostop.JUPYTER_SECONDS


@needs_root
def test_a_probe_the_user_stops_costs_the_bound_and_is_killed(monkeypatch):
    monkeypatch.setattr(autostop, "PROBE", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)")
    monkeypatch.setattr(autostop, "JUPYTER_SECONDS", 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        autostop.ask_as_user(NOBODY, NOBODY, "/nonexistent", VALID)
    assert time.monotonic() - started < 4
    assert subprocess.run(["pgrep", "-u", str(NOBODY), "-f", "SIGSTOP"], capture_output=True, check=False).returncode == 1


def test_the_token_format_is_the_one_make_token_writes():
    spec = importlib.util.spec_from_file_location("make_token", PROJECT / "roles" / "jupyter" / "files" / "make_token.py")
    make_token = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_token)
    template = (PROJECT / "roles" / "jupyter" / "templates" / "etc" / "gpubox" / "jupyter"
                / "jupyter_server_config.py.j2").read_text()
    server_format = re.compile(re.search(r're\.fullmatch\(r"([^"]+)"', template).group(1))
    for _ in range(20):
        token = make_token.new_token()
        assert autostop.TOKEN_FORMAT.fullmatch(token) and server_format.fullmatch(token)
    assert make_token.TOKEN_FORMAT.pattern == autostop.TOKEN_FORMAT.pattern == server_format.pattern


# Spot interruptions: EC2's two-minute notice, served by a local metadata service (tests/imds.py).

NOTICE_PATH = "/latest/meta-data/spot/instance-action"


def test_a_spot_interruption_notice_is_announced_once_logged_and_is_a_stop_not_idleness(config, tmp_path, capsys):
    from imds import serve_documents  # noqa: PLC0415  (tests/ is on the path only while tests run)

    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    documents: dict[str, str] = {}
    with serve_documents("127.0.0.1", documents) as (url, log):
        config["imds_url"] = url
        assert autostop.check(config, start)["busy"] is False  # no notice: 404, idle as before
        assert f"GET {NOTICE_PATH} 404" in log
        documents[NOTICE_PATH] = json.dumps({"action": "stop", "time": "2026-11-28T10:04:00Z"})
        for minute in (2.5, 3.5):  # past the idle limit (3 min): the notice, not idleness, decides
            status = autostop.check(config, start + timedelta(minutes=minute))
            assert status["busy"] and status["reasons"][0] == "spot interruption: AWS will stop this instance at 10:04 UTC"
        warnings = lines(tmp_path / "warnings")
        assert len(warnings) == 1 and "AWS is reclaiming this spot workstation: it will stop at 10:04 UTC" in warnings[0]
        assert "runner.py start" in warnings[0] and lines(tmp_path / "actions") == []
        assert "autostop: spot interruption notice: AWS will stop this instance at 2026-11-28T10:04:00+00:00" in capsys.readouterr().out

        # Started again hours later (the notice is gone): idle since before the stop, yet that stop
        # was this period's, so nothing acts until the host has been busy and idle again.
        del documents[NOTICE_PATH]
        later = autostop.check(config, start + timedelta(hours=5))
        assert not later["busy"] and lines(tmp_path / "actions") == []
        assert "the action already ran for this idle period" in capsys.readouterr().out


# The budget job's warning: an instance tag the checker reads from the metadata (launch.py puts the
# tags there), for the login message and, once per new text, for the people logged in.

def login_message(tmp_path, *, interactive: bool) -> str:
    """/etc/profile.d/gpubox-budget.sh, rendered for this test's state directory, sourced by sh."""
    import jinja2  # noqa: PLC0415  (Ansible's own template engine)

    template = (PROJECT / "roles" / "autostop" / "templates" / "etc" / "profile.d" / "gpubox-budget.sh.j2").read_text()
    script = tmp_path / "gpubox-budget.sh"
    script.write_text(jinja2.Template(template).render(autostop_state_dir=str(tmp_path), autostop_managed_header="test"))
    return subprocess.run(["sh", *(["-i"] if interactive else []), "-c", f". {script}"], capture_output=True, text=True,
                          timeout=10, check=True, stdin=subprocess.DEVNULL).stdout


def test_the_budget_warning_reaches_logins_and_the_people_logged_in_once_per_change(config, tmp_path):
    from imds import serve_documents  # noqa: PLC0415

    config["budget_file"] = str(tmp_path / "budget")
    start = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
    documents: dict[str, str] = {}
    with serve_documents("127.0.0.1", documents) as (url, log):
        config["imds_url"] = url
        assert autostop.check(config, start)["budget"] == ""  # no warning: no file, no line at login
        assert f"GET {autostop.BUDGET_TAG_PATH} 404" in log
        assert not (tmp_path / "budget").exists() and login_message(tmp_path, interactive=True) == ""
        # What the budget job tags at 80 % (gpubox/cloud/budget.py), as the metadata serves it.
        documents[autostop.BUDGET_TAG_PATH] = "86% of $50.00 in 2026-12"
        for minute in (1, 2):
            assert autostop.check(config, start + timedelta(minutes=minute))["budget"] == "86% of $50.00 in 2026-12"
        assert (tmp_path / "budget").stat().st_mode & 0o777 == 0o644
        assert login_message(tmp_path, interactive=True) == "gpubox budget: 86% of $50.00 in 2026-12\n"
        assert login_message(tmp_path, interactive=False) == ""  # scp, rsync, ssh host CMD: nothing added
        warned = [line for line in lines(tmp_path / "warnings") if "budget" in line]
        assert len(warned) == 1 and "86% of $50.00 in 2026-12" in warned[0] and "runner.py cost" in warned[0]
        # Whatever the tag holds reaches terminals as one line of printable text, bounded.
        documents[autostop.BUDGET_TAG_PATH] = "stopped\x1b]0;owned\x07 next\nline " + "x" * 500
        text = autostop.check(config, start + timedelta(minutes=3))["budget"]
        assert text.startswith("stopped ]0;owned next line x") and len(text) == autostop.BUDGET_TEXT_MAX
        assert "\x1b" not in (tmp_path / "budget").read_text()
        assert len([line for line in lines(tmp_path / "warnings") if "budget" in line]) == 2
        # The raise (or a new month) removes the tag: the warning goes.
        del documents[autostop.BUDGET_TAG_PATH]
        assert autostop.check(config, start + timedelta(minutes=4))["budget"] == ""
        assert not (tmp_path / "budget").exists() and login_message(tmp_path, interactive=True) == ""


@pytest.mark.parametrize("body", ["not json", json.dumps({"action": "stop"}), json.dumps({"action": "reboot", "time": "2026-11-28T10:04:00Z"}),
                                  json.dumps(["stop"])])
def test_a_notice_that_is_not_one_is_ignored(body):
    from imds import serve_documents  # noqa: PLC0415

    with serve_documents("127.0.0.1", {NOTICE_PATH: body}) as (url, _):
        assert autostop.spot_notice(url) is None
    with serve_documents("127.0.0.1", {NOTICE_PATH: json.dumps({"action": "stop", "time": "2026-11-28T10:04:00Z"})}) as (url, _):
        assert autostop.spot_notice(url) == ("stop", datetime(2026, 11, 28, 10, 4, tzinfo=timezone.utc))


def test_no_metadata_service_is_no_notice_and_quick():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    began = time.monotonic()
    assert autostop.spot_notice(f"http://127.0.0.1:{closed}") is None and autostop.spot_notice("") is None
    assert time.monotonic() - began < 3


# IT's work: an Ansible run and IT's SSH sessions, read from a /proc tree of the test's making.

def fake_process(proc: Path, pid: int, uids: tuple[int, int, int, int], *argv: str, name: str = "python3", ppid: int = 1) -> None:
    """/proc/PID as the kernel shows it: status with its PPid and Uid lines (real, effective, saved, fs), cmdline NUL-separated."""
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "status").write_text(f"Name:\t{name}\nState:\tS (sleeping)\nPid:\t{pid}\nPPid:\t{ppid}\n"
                                            f"Uid:\t{uids[0]}\t{uids[1]}\t{uids[2]}\t{uids[3]}\nGid:\t0\t0\t0\t0\n")
    (proc / str(pid) / "cmdline").write_bytes(b"\0".join(part.encode() for part in argv) + (b"\0" if argv else b""))


ADMIN, ALICE = 1000, 1001
ROOT4, ADMIN4, ALICE4 = (0, 0, 0, 0), (ADMIN,) * 4, (ALICE,) * 4
BECOME = "echo BECOME-SUCCESS-qwertyuiopasdfgh ; /usr/bin/python3"
ANSIBLE_RUNS = {
    # What /proc shows on a target during a task (recorded on the Debian 12 and 13 test hosts, ansible-core 2.19).
    "pipelined, become": [(ADMIN4, ("/bin/sh", "-c", f"sudo -H -S -n  -u root /bin/sh -c '{BECOME}' && sleep 0")),
                          ((ADMIN, 0, 0, 0), ("sudo", "-H", "-S", "-n")),
                          (ROOT4, ("/bin/sh", "-c", BECOME)), (ROOT4, ("/usr/bin/python3",))],
    "pipelined, no become": [(ADMIN4, ("/bin/sh", "-c", "/usr/bin/python3 && sleep 0"))],
    "module file": [(ROOT4, ("/usr/bin/python3", "/root/.ansible/tmp/ansible-tmp-1765070000.12-4242-1234/AnsiballZ_apt.py"))],
    "ansible-playbook on the host": [(ROOT4, ("/usr/bin/python3", "/usr/bin/ansible-playbook", "site.yml"))],
}


@pytest.mark.parametrize("run", list(ANSIBLE_RUNS))
def test_an_ansible_run_in_progress_is_busy_with_its_pid_and_user(tmp_path, run):
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_process(proc, 1, ROOT4, "/sbin/init")
    for offset, (uids, argv) in enumerate(ANSIBLE_RUNS[run]):
        fake_process(proc, 4000 + offset, uids, *argv)
    user = "admin" if ANSIBLE_RUNS[run][0][0] == ADMIN4 else "root"
    assert autostop.it_activity(str(proc), {ADMIN: "admin"}) == [f"ansible run in progress (pid 4000, user {user})"]


def test_ssh_sessions_of_it_count_while_they_run_something(tmp_path):
    # Titles as recorded on the Debian 12 and 13 test hosts (OpenSSH 9.2 and 10.0).
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_process(proc, 700, ROOT4, "sshd: admin [priv]")  # the privileged monitor: root's, and named before login
    fake_process(proc, 702, ADMIN4, "sshd: admin@notty", ppid=700)  # a command over SSH: its child below
    fake_process(proc, 705, ADMIN4, "/bin/sh", "-c", "tar czf /tmp/backup.tgz /etc", ppid=702)
    fake_process(proc, 703, ALICE4, "sshd: alice@pts/0", ppid=700)  # a data scientist's session: the terminal rule judges it
    fake_process(proc, 704, ALICE4, "-bash", ppid=703)
    fake_process(proc, 800, (2000,) * 4, "sshd-session: ops@pts/1")  # Debian 13's name, another IT account, in a shell
    fake_process(proc, 801, (2000,) * 4, "-bash", ppid=800)
    fake_process(proc, 900, (2001,) * 4, "sshd-session: corp")  # `ssh -N`: no session channel, runs nothing
    fake_process(proc, 950, ADMIN4, "sshd: admin@notty")  # Ansible's kept-open connection between runs: runs nothing
    assert autostop.it_activity(str(proc), {ADMIN: "admin", 2000: "ops", 2001: "corp"}) == [
        "ssh session of IT's admin (pid 702)", "ssh session of IT's ops (pid 800)"]
    assert autostop.it_activity(str(proc), {}) == []


@pytest.mark.parametrize("forged", [
    (ALICE4, ("python3", "/home/alice/AnsiballZ_forever.py")),
    (ALICE4, ("/bin/sh", "-c", "while :; do sleep 60; done && sleep 0")),
    (ALICE4, ("sshd: admin@notty",)),
    (ALICE4, ("/usr/bin/ansible-playbook", "x.yml")),
    # A setuid-root program keeps its caller's real uid: alice running sudo is not root.
    ((ALICE, 0, 0, 0), ("sudo", "/bin/sh", "-c", "echo BECOME-SUCCESS-x ; python3")),
    # root's privileged monitor carries the name a client offered, authenticated or not.
    (ROOT4, ("sshd: admin [priv]",)),
])
def test_a_data_scientist_cannot_pass_a_process_off_as_its(tmp_path, forged):
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_process(proc, 5000, forged[0], *forged[1])
    assert autostop.it_activity(str(proc), {ADMIN: "admin"}) == []


def test_kernel_threads_odd_entries_and_processes_that_end_are_skipped(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_process(proc, 2, ROOT4, name="kthreadd")  # no command line
    (proc / "self").symlink_to(proc / "2")
    (proc / "sys").mkdir()
    (proc / "77").mkdir()  # ended between the listing and the read: no status
    fake_process(proc, 78, ROOT4, "/usr/bin/python3", "/tmp/ansible-tmp-1-2-3/AnsiballZ_command.py")
    (proc / "78" / "status").write_text("Name:\tpython3\n")  # no Uid line: not judged
    fake_process(proc, 90, ROOT4, "/usr/bin/python3", "/tmp/ansible-tmp-1-2-3/AnsiballZ_command.py")
    (proc / "91").symlink_to(proc / "90")  # a link is never followed
    fake_process(proc, 92, ADMIN4, "/bin/bash")
    assert autostop.processes(str(proc)) == [(90, ROOT4, ["/usr/bin/python3", "/tmp/ansible-tmp-1-2-3/AnsiballZ_command.py"]),
                                             (92, ADMIN4, ["/bin/bash"])]
    shutil.rmtree(proc / "90")
    assert autostop.it_activity(str(proc), {}) == []
    with pytest.raises(autostop.CheckerFailure):
        autostop.processes(str(tmp_path / "no-proc"))


def test_the_real_process_table_is_read():
    mine = [entry for entry in autostop.processes() if entry[0] == os.getpid()]
    assert len(mine) == 1 and mine[0][1] == (os.getuid(), os.geteuid(), os.getuid(), os.geteuid())
    assert "pytest" in " ".join(mine[0][2]) or "python" in mine[0][2][0]


def account(name: str, uid: int, gid: int) -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, gid, "", f"/home/{name}", "/bin/bash"))


def test_it_accounts_are_the_named_ones_and_admins_who_are_not_data_scientists():
    import grp  # noqa: PLC0415

    accounts = [account("root", 0, 0), account("admin", 1000, 1000), account("alice", 1001, 1001), account("bob", 1002, 1002),
                account("ops", 1003, 27), account("corp", 1004, 1004)]
    groups = [grp.struct_group(("sudo", "x", 27, ["admin", "bob", "root"])),
              grp.struct_group(("gpubox", "x", 900, ["alice", "bob"])), grp.struct_group(("admin", "x", 28, []))]
    found = autostop.it_accounts(["corp"], ["sudo", "admin", "wheel"], "gpubox", accounts=lambda: accounts, groups=lambda: groups)
    # admin (listed in sudo), ops (sudo as primary group), corp (named: sudo through a sudoers file);
    # bob has sudo but is a data scientist; root is never a session.
    assert found == {1000: "admin", 1003: "ops", 1004: "corp"}


def test_an_ansible_run_keeps_the_host_busy_through_check(config, tmp_path):
    """The checker as the timer runs it: idle past its limit, then IT's converge starts; the
    reason names the run, nothing acts while it lasts, and idleness counts again after it."""
    proc = tmp_path / "proc"
    config["it_accounts"] = ["nobody"]
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    autostop.check(config, start)
    fake_process(proc, 4100, (NOBODY,) * 4, "sshd: nobody@notty")
    # The task's shell runs under that session (sudo's child, as on the test hosts).
    fake_process(proc, 4107, ROOT4, "/bin/sh", "-c", "echo BECOME-SUCCESS-abc ; /usr/bin/python3", ppid=4100)
    for minute in (2, 5, 30):
        status = autostop.check(config, start + timedelta(minutes=minute))
        assert status["busy"] and status["reasons"] == ["ansible run in progress (pid 4107, user root)",
                                                        "ssh session of IT's nobody (pid 4100)"], status
    shutil.rmtree(proc / "4107")
    shutil.rmtree(proc / "4100")
    assert not autostop.check(config, start + timedelta(minutes=31))["busy"]
    assert lines(tmp_path / "actions") == []
    autostop.check(config, start + timedelta(minutes=34))
    assert lines(tmp_path / "actions") == ["acted"]


# One user's input is judged apart from everyone else's (issue 30): a hold that overflows, an error
# nobody foresaw, a terminal with a time beyond the calendar.

OVERFLOWING = "9999-12-31T23:59:59-23:59"  # the year 10000 in UTC


def test_a_time_that_overflows_in_utc_is_a_value_error():
    with pytest.raises(ValueError):
        autostop.parse_time(OVERFLOWING)
    assert autostop.parse_time("2026-11-28T12:00:00+02:00") == datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    assert autostop.parse_time("2026-11-28T12:00:00+02:00").utcoffset() == timedelta(0)


def test_an_overflowing_hold_is_malformed_and_other_holds_still_count(config, tmp_path, capsys):
    me = pwd.getpwuid(os.getuid()).pw_name
    now = datetime.now(timezone.utc)
    (tmp_path / "holds" / "broken").write_text(OVERFLOWING)
    (tmp_path / "holds" / "good").write_text((now + timedelta(hours=1)).isoformat())
    status = autostop.check(config, now)
    assert status["reasons"] == [f"held by {me} until {autostop.short(now + timedelta(hours=1))}"], status
    assert status["ignored"] == [f"hold of {me}: malformed"]
    assert "internal error" not in capsys.readouterr().out


@needs_root
def test_one_users_overflowing_hold_leaves_the_others_verdict_intact(config, tmp_path):
    (tmp_path / "holds" / "nobodys").write_text(OVERFLOWING)
    os.chown(tmp_path / "holds" / "nobodys", NOBODY, NOBODY)
    (tmp_path / "holds" / "roots").write_text("")
    status, log, _ = run_checker(config, tmp_path)
    assert status["reasons"] == ["held by root"] and status["ignored"] == ["hold of nobody: malformed"], status
    assert "autostop: ignored hold of nobody: malformed" in log and "internal error" not in log
    os.unlink(tmp_path / "holds" / "roots")
    status, _, _ = run_checker(config, tmp_path)
    assert not status["busy"] and status["ignored"] == ["hold of nobody: malformed"], status


def test_an_error_nobody_foresaw_in_one_hold_ends_only_that_hold(config, tmp_path, monkeypatch, capsys):
    me = pwd.getpwuid(os.getuid()).pw_name
    (tmp_path / "holds" / "a-planted").write_text("")
    (tmp_path / "holds" / "b-fine").write_text("")
    judged = autostop.one_hold

    def fragile(directory, name, *args):
        if name == "a-planted":
            raise RecursionError("planted-text-that-must-not-be-echoed")
        return judged(directory, name, *args)

    monkeypatch.setattr(autostop, "one_hold", fragile)
    status = autostop.check(config, datetime.now(timezone.utc))
    assert status["reasons"] == [f"held by {me}"] and status["ignored"] == [f"hold of {me}: internal-error (RecursionError)"]
    assert "planted-text" not in (tmp_path / "status.json").read_text() + capsys.readouterr().out


def test_no_hold_lasts_longer_than_the_most_it_may(config, tmp_path, capsys):
    """Placed now (the file's change time, which its owner cannot set back): an expiry years ahead
    counts for hold_max_hours, said in the log with the owner's name; a hold until released ends then too."""
    me = pwd.getpwuid(os.getuid()).pw_name
    config["hold_max_hours"] = 72
    placed = datetime.now(timezone.utc)
    (tmp_path / "holds" / "forever").write_text("9999-12-31T23:59:59+00:00")
    bound = datetime.fromtimestamp((tmp_path / "holds" / "forever").stat().st_ctime, timezone.utc) + timedelta(hours=72)
    status = autostop.check(config, placed + timedelta(hours=71))
    assert status["reasons"] == [f"held by {me} until {autostop.short(bound)}"], status
    note = f"hold of {me} asks beyond the 72 h a hold may last: counted until {autostop.moment(bound)}"
    assert status["notes"] == [note] and f"autostop: {note}" in capsys.readouterr().out
    status = autostop.check(config, placed + timedelta(hours=73))
    assert not status["busy"] and status["ignored"] == [f"hold of {me}: past-longest-hold"], status

    (tmp_path / "holds" / "forever").write_text("")  # until released: the same bound
    assert autostop.check(config, placed + timedelta(hours=1))["reasons"] == [f"held by {me}"]
    assert autostop.check(config, placed + timedelta(hours=73))["ignored"] == [f"hold of {me}: past-longest-hold"]
    (tmp_path / "holds" / "forever").write_text((placed + timedelta(hours=2)).isoformat())  # within it: as asked
    status = autostop.check(config, placed + timedelta(hours=1))
    assert status["reasons"] == [f"held by {me} until {autostop.short(placed + timedelta(hours=2))}"] and status["notes"] == []


def test_a_terminal_with_a_time_beyond_the_calendar_is_its_users_alone(monkeypatch):
    who = "alice    pts/0        2026-11-28 10:00 (10.0.0.1)\nbob      sshd pts/1   2026-11-28 10:01 (10.0.0.2)\n"
    monkeypatch.setattr(autostop.subprocess, "run", lambda *args, **kwargs: subprocess.CompletedProcess(args, 0, who, ""))
    typed = datetime(2026, 11, 28, 10, 5, tzinfo=timezone.utc)

    def used(tty):
        if tty == "pts/0":
            return datetime.fromtimestamp(1e20, timezone.utc)  # alice touched her terminal's device
        return typed

    monkeypatch.setattr(autostop, "tty_used", used)
    ignored = []
    assert autostop.terminal_sessions(ignored) == [("bob", "pts/1", typed)]
    assert len(ignored) == 1 and ignored[0].startswith("terminal pts/0 of alice: internal-error (")


# A user's own idle limit, held to IT's cap and to whether IT allows off (issue 32: the checker's side).

def wish(config: dict, tmp_path: Path, text: str, name: str = "mine") -> Path:
    directory = tmp_path / "idle-limits"
    directory.mkdir(exist_ok=True)
    config["idle_limits_dir"] = str(directory)
    (directory / name).write_text(text)
    return directory / name


def test_a_users_own_idle_limit_applies(config, tmp_path):
    me = pwd.getpwuid(os.getuid()).pw_name
    wish(config, tmp_path, "10\n")
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    status = autostop.check(config, start)
    assert (status["idle_limit"], status["idle_limit_by"], status["stops_in_minutes"]) == (10, me, 10)
    autostop.check(config, start + timedelta(minutes=5))  # past IT's 3 minutes
    assert lines(tmp_path / "actions") == []
    autostop.check(config, start + timedelta(minutes=10, seconds=5))
    assert lines(tmp_path / "actions") == ["acted"]


def test_a_wish_beyond_its_cap_is_held_to_it_and_the_log_says_so(config, tmp_path, capsys):
    me = pwd.getpwuid(os.getuid()).pw_name
    config.update(max_idle_minutes=30)
    wish(config, tmp_path, "600")
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    note = f"idle limit of {me}: 600 min asked, beyond IT's bounds (at most 30 min): 30 min applies"
    assert (status["idle_limit"], status["notes"]) == (30, [note]) and f"autostop: {note}" in capsys.readouterr().out
    wish(config, tmp_path, "20")  # within it: as asked, no note
    status = autostop.check(config, datetime(2026, 11, 28, 10, 1, tzinfo=timezone.utc))
    assert (status["idle_limit"], status["notes"]) == (20, [])


@pytest.mark.parametrize(("cap", "allowed", "limit", "note"), [
    (0, True, 0, None), (30, True, 0, None),
    (30, False, 30, "off asked, beyond IT's bounds (at most 30 min, never off): 30 min applies"),
    (0, False, 3, "off asked, beyond IT's bounds (never off): 3 min applies"),
    (0, "false", 3, "off asked, beyond IT's bounds (never off): 3 min applies"),  # not a true boolean: IT's stricter choice
])
def test_off_only_where_it_allows_it(config, tmp_path, cap, allowed, limit, note):
    me = pwd.getpwuid(os.getuid()).pw_name
    config.update(max_idle_minutes=cap, allow_off=allowed)
    wish(config, tmp_path, "off")
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    status = autostop.check(config, start)
    assert status["idle_limit"] == limit and status["notes"] == ([f"idle limit of {me}: {note}"] if note else [])
    if limit == 0:
        assert status["busy"] and status["reasons"] == [f"autostop off, as {me} asked"]
        autostop.check(config, start + timedelta(hours=5))
        assert lines(tmp_path / "actions") == []


@pytest.mark.parametrize("text", ["0", "-5", "soon", "1.5", "9999999", "x" * 64])
def test_a_malformed_wish_is_ignored_and_its_limit_stands(config, tmp_path, text):
    me = pwd.getpwuid(os.getuid()).pw_name
    wish(config, tmp_path, text)
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    assert (status["idle_limit"], status["idle_limit_by"]) == (3, "IT")
    assert status["ignored"] == [f"idle limit of {me}: {'too-large' if len(text) > 32 else 'malformed'}"]


def test_on_a_shared_host_nobody_shortens_the_wait_of_someone_who_did_not_ask(config, tmp_path):
    import grp  # noqa: PLC0415

    me = pwd.getpwuid(os.getuid()).pw_name
    config.update(users_group="gpubox", idle_minutes=60, idle_limits_dir=str(tmp_path / "idle-limits"),
                  shadow_file=str(tmp_path / "no-shadow"))  # nobody revoked
    (tmp_path / "idle-limits").mkdir()
    (tmp_path / "idle-limits" / "mine").write_text("5")
    now = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)

    def limit(members):
        group = [grp.struct_group(("gpubox", "x", 900, members))]
        return autostop.idle_limit(config, now, [], [], accounts=pwd.getpwall, groups=lambda: group)

    assert limit([me]) == (5, me)  # the only data scientist: their wish
    assert limit([me, "nobody"]) == (60, "IT")  # nobody asked nothing: IT's limit stands for them
    (tmp_path / "idle-limits" / "mine").write_text("90")
    assert limit([me, "nobody"]) == (90, me)  # a longer wait shortens nobody's


@needs_root
def test_a_wish_is_its_owners_and_a_revoked_account_asks_nothing(config, tmp_path):
    path = wish(config, tmp_path, "45", name="root-named")
    os.chown(path, NOBODY, NOBODY)
    status, log, _ = run_checker(config, tmp_path)
    assert (status["idle_limit"], status["idle_limit_by"]) == (45, "nobody"), status
    shadow = tmp_path / "shadow"
    shadow.write_text("nobody:*:20000:0:99999:7::0:\n")
    config["shadow_file"] = str(shadow)
    status, log, _ = run_checker(config, tmp_path)
    assert (status["idle_limit"], status["ignored"]) == (3, ["idle limit of nobody: account-expired"]), status


def ancestors(pid: int, stop: int) -> list[int]:
    """pid and its parents up to (not including) stop, from /proc/PID/stat."""
    chain = []
    while pid not in (0, 1, stop):
        chain.append(pid)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
    return chain


ANSIBLE = Path(sys.executable).parent / "ansible"


@pytest.mark.skipif(not ANSIBLE.exists(), reason="needs this virtualenv's ansible")
@pytest.mark.parametrize("pipelining", ["False", "True"])
def test_a_real_ansible_task_is_seen_in_the_real_process_table(tmp_path, pipelining):
    """What this Ansible version really starts on its target (here the local connection: the same
    shell wrappers as over SSH) carries the markers the checker looks for, at every moment of a task."""
    marker = f"{31 + len(pipelining)}.{os.getpid()}"
    env = dict(os.environ, ANSIBLE_PIPELINING=pipelining, ANSIBLE_LOCAL_TEMP=str(tmp_path / "local"),
               ANSIBLE_REMOTE_TEMP=str(tmp_path / "remote"), ANSIBLE_CONFIG=str(tmp_path / "none.cfg"))
    run = subprocess.Popen([str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local",
                            "-e", f"ansible_python_interpreter={sys.executable}",
                            "-m", "ansible.builtin.command", "-a", f"sleep {marker}"], env=env, cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, task = time.monotonic() + 60, None
        while task is None and time.monotonic() < deadline and run.poll() is None:
            task = next((pid for pid, _, argv in autostop.processes() if argv == ["sleep", marker]), None)
            time.sleep(0.2)
        assert task, "the task never started"
        table = {pid: (uids, argv) for pid, uids, argv in autostop.processes()}
        # The target's side only (over SSH, the controller is elsewhere): what the module and its shells are.
        chain = [pid for pid in ancestors(task, run.pid) if pid in table and str(ANSIBLE) not in table[pid][1]]
        recognised = [pid for pid in chain if autostop.ansible_process(table[pid][1])]
        assert recognised, [table[pid][1] for pid in chain]
        me = {os.getuid(): pwd.getpwuid(os.getuid()).pw_name} if os.getuid() else {}
        assert any(reason.startswith("ansible run in progress") for reason in autostop.it_activity("/proc", me))
    finally:
        run.kill()
        run.wait()


def test_one_users_unforeseen_jupyter_failure_leaves_the_others_activity(tmp_path, monkeypatch):
    """A reply nested too deep (RecursionError) from one user's server ends only that user's part."""
    for user in ("alice", "bob"):
        (tmp_path / f"{user}.env").write_text("GPUBOX_JUPYTER_PORT=8801\n")
    busy_at = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)

    def activity(user, *args):
        if user == "alice":
            raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")
        return ["bob's kernel python3"], busy_at

    monkeypatch.setattr(autostop, "user_activity", activity)
    ignored: list[str] = []
    executing, latest = autostop.jupyter_activity(str(tmp_path), "tok/en", ignored,
                                                  account=lambda name: pwd.struct_passwd((name, "x", 5000, 5000, "", "/", "/bin/sh")))
    assert executing == ["bob's kernel python3"] and latest == busy_at
    assert ignored == ["jupyter of alice: internal-error (RecursionError)"]


def test_thousands_of_planted_wishes_are_read_up_to_a_bound_and_said_once(config, tmp_path):
    """One user's 2,000 malformed files: their owner's limit is IT's, each reason is said once (no
    flood of the journal and status.json), and the checker reads no more than its bound of them."""
    me = pwd.getpwuid(os.getuid()).pw_name
    for number in range(2000):
        wish(config, tmp_path, "soon", name=f"w{number:04d}")
    status = autostop.check(config, datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc))
    assert (status["idle_limit"], status["idle_limit_by"]) == (3, "IT")
    assert status["ignored"] == [f"idle limit of {me}: malformed", f"idle limit of {me}: too-many-files"]
