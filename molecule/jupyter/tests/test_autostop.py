"""Autostop on a real workstation: a kernel executing a long cell, an idle kernel, a CPU-bound
process, an SSH tunnel alone, an interactive SSH session, a hold with an expiry, a broken Jupyter
token, and the action running exactly once after the warning. The checker is the installed one,
run with a test configuration (idle limit 1 minute, a test action that records itself). Then a
data scientist attacks it from their own account: a FIFO hold, holds under others' names, token
files linked to /etc/shadow and other root-only files, broken tokens, and another uid trying to
stand in for their Jupyter while it is down; the checker must still decide in time, never count that as busy, and never
put a secret in its status file or the journal."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import uuid

import pytest

import websocket
from test_jupyter import ALICE_PORT, KEYS, TOKEN_FILE, alice_token, browser, execute, http, instance, tunnel, wait_for_status
from testhosts import ssh, testinfra_hosts as _hosts

from gpubox.commands import autostop_cli
from gpubox.commands.session import hold_command, release_command

testinfra_hosts = _hosts()
CHECKER = "/usr/local/lib/gpubox/gpubox_autostop.py"
TEST_CONFIG = "/root/autostop-test.json"


def configure(host, **overrides) -> None:
    settings = json.loads(host.file("/etc/gpubox/autostop.json").content_string)
    settings.update({
        "idle_minutes": 1, "warn_minutes": 0, "cpu_threshold": 0.8,
        "action": ["/bin/sh", "-c", "echo acted >> /root/autostop-actions"],
        "warn_command": ["/bin/sh", "-c", "echo \"$0\" >> /root/autostop-warnings"],
        "state_file": "/root/autostop-state.json", "status_file": "/root/autostop-status.json",
    }, **overrides)
    host.run(f"cat > {TEST_CONFIG} <<'EOF'\n{json.dumps(settings)}\nEOF")


def as_alice(name: str, command: str) -> str:
    result = ssh(name, command, user="alice", key=str(KEYS / "alice"))
    assert result.returncode == 0, result.stderr
    return result.stdout


def check(host, status_file: str = "/root/autostop-status.json") -> dict:
    """Run the installed checker with the test configuration; its verdict (configure's status_file)."""
    # As fast as the timer needs it, whatever users left for it (a FIFO blocks a plain open forever).
    result = host.run(f"timeout 60 python3 {CHECKER} {TEST_CONFIG}")
    assert result.rc == 0, result.stderr
    status = json.loads(host.file(status_file).content_string)
    status["log"] = result.stdout
    return status


def start_cell(local: int, token: str, kernel_id: str, code: str) -> websocket.WebSocket:
    connection = websocket.create_connection(f"ws://127.0.0.1:{local}/api/kernels/{kernel_id}/channels",
                                             header=[f"Authorization: token {token}"], timeout=60)
    connection.send(json.dumps({
        "header": {"msg_id": uuid.uuid4().hex, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                   "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
    }))
    return connection


def check_until(host, predicate, timeout: float = 30) -> dict:
    """Run the checker until its status satisfies predicate (Jupyter reports a kernel's state
    from its message stream, a moment after the fact)."""
    deadline = time.monotonic() + timeout
    while True:
        status = check(host)
        if predicate(status) or time.monotonic() > deadline:
            return status
        time.sleep(1)


def test_busy_and_idle_as_a_data_scientist_works(host):
    name = host.backend.name
    host.run("rm -f /root/autostop-state.json /root/autostop-actions /root/autostop-warnings /var/lib/gpubox/holds/*")
    # Busy loops get a fraction of a core each on a loaded 2-core CI machine; the workstation at
    # rest (Jupyter, sshd, this checker) over the minute of the idle check stays far below this.
    configure(host, cpu_threshold=0.15)
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        assert wait_for_status(local, token) == 200
        # An open `ssh -N` tunnel (this one) alone never counts.
        idle_kernel = http(local, "/api/kernels", token, method="POST", body={})[1]["id"]
        execute(local, token, idle_kernel, "x = 1")
        quiet_since = time.monotonic()
        busy_kernel = http(local, "/api/kernels", token, method="POST", body={})[1]["id"]
        execute(local, token, busy_kernel, "import time")
        cell = start_cell(local, token, busy_kernel, "time.sleep(300)")
        status = check_until(host, lambda status: any(reason.startswith("kernel executing") for reason in status["reasons"]))
        assert any(reason.startswith("kernel executing (alice's kernel gpubox-tensorflow)") for reason in status["reasons"]), status
        cell.close()
        http(local, f"/api/kernels/{busy_kernel}", token, method="DELETE")

        # A CPU-bound process of a user (nohup python train.py) keeps the host busy.
        for _ in range(2):
            host.run("su alice -s /bin/sh -c 'setsid nohup timeout 25 python3 -c \"while True: pass\" >/dev/null 2>&1 &'")
        check(host)
        time.sleep(8)
        status = check(host)
        assert any(reason.startswith("CPU ") for reason in status["reasons"]), status
        host.run("pkill -u alice -f 'while True' || true")

        # A hold with an expiry keeps it busy until then.
        until = host.check_output("date -u -d '+25 sec' +%Y-%m-%dT%H:%M:%SZ")
        assert ssh(name, f"echo {until} > /var/lib/gpubox/holds/alice", user="alice", key=str(KEYS / "alice")).returncode == 0
        status = check(host)
        assert any(reason.startswith("held by alice until") for reason in status["reasons"])

        # A broken token is alice's own state: no activity of hers (logged with its reason), not a busy host.
        host.run(f"cp /home/alice/{TOKEN_FILE} /root/token.bak")
        as_alice(name, f"echo wrong > {TOKEN_FILE}")
        try:
            status = check(host)
        finally:
            host.run(f"cp /root/token.bak /home/alice/{TOKEN_FILE}")
        assert status["ignored"] == ["jupyter of alice: token-malformed"], status
        assert not [reason for reason in status["reasons"] if not reason.startswith(("held by alice", "CPU "))], status

        # Once the idle kernel's last activity is older than the limit and the hold has expired: idle.
        check(host)  # the CPU sample the idle check measures from: at least ten quiet seconds
        time.sleep(max(10, 65 - (time.monotonic() - quiet_since)))
        status = check(host)
        assert not status["busy"], status
        assert "no kernel activity since" in status["log"] and "CPU " in status["log"]
        http(local, f"/api/kernels/{idle_kernel}", token, method="DELETE")

    # The action: after the warning, exactly once per idle period. The clock is the state file's:
    # the last busy moment is set back instead of waiting for minutes here.
    configure(host, idle_minutes=2, warn_minutes=1)
    for seconds_ago in (90, 150, None):  # warned; acts; a later check in the same idle period does nothing
        if seconds_ago is not None:
            state = json.loads(host.file("/root/autostop-state.json").content_string)
            state["last_busy"] = host.check_output(f"date -u -d '-{seconds_ago} sec' +%Y-%m-%dT%H:%M:%S+00:00")
            host.run(f"cat > /root/autostop-state.json <<'EOF'\n{json.dumps(state)}\nEOF")
        check(host)
    assert host.file("/root/autostop-warnings").content_string.count("stops in") == 1
    assert host.file("/root/autostop-actions").content_string.splitlines() == ["acted"]


def test_interactive_ssh_session_counts(host):
    name = host.backend.name
    configure(host)
    host.run("rm -f /root/autostop-state.json /var/lib/gpubox/holds/*")
    target = instance(name)
    session = subprocess.Popen(
        ["ssh", "-tt", "-p", str(target["port"]), "-i", str(KEYS / "alice"), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"alice@{target['address']}", "sleep 20"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "pts/" not in host.run("who").stdout:
            time.sleep(0.5)
        status = check(host)
        assert any(reason.startswith("alice typing on pts/") for reason in status["reasons"]), status
    finally:
        session.kill()


def test_installed_timer_runs_the_check(host):
    assert host.service("gpubox-autostop.timer").is_enabled
    assert host.service("gpubox-autostop.timer").is_running
    host.run("systemctl start gpubox-autostop.service")
    log = host.check_output("journalctl -u gpubox-autostop --no-pager -o cat")
    assert "autostop: " in log and ("stops in" in log or "busy:" in log)
    status = json.loads(host.file("/var/lib/gpubox/autostop/status.json").content_string)
    assert status["idle_limit"] == 60


SECRET = "0123456789abcdef" * 4  # token-shaped, in root-only files: must never be read or sent


def secrets_of(host) -> list[str]:
    shadow = [line for line in host.check_output("cat /etc/shadow").splitlines() if line.strip()]
    return [SECRET, *shadow]


def assert_no_secret(host, since: str) -> None:
    status_files = ("/root/autostop-status.json", "/var/lib/gpubox/autostop/status.json")
    written = "".join(host.file(path).content_string for path in status_files)
    journal = host.check_output(f"journalctl --no-pager -o cat --since '{since}'")
    for secret in secrets_of(host):
        assert secret not in written and secret not in journal
    assert "Traceback" not in written + journal and "Error" not in written


TOKEN_ATTACKS = {
    "symlink to /etc/shadow": (f"ln -sfn /etc/shadow {TOKEN_FILE}", "token-not-regular"),
    "symlink to a root-only token": (f"ln -sfn /root/secret-token {TOKEN_FILE}", "token-not-regular"),
    "dangling symlink": (f"ln -sfn /nonexistent/token {TOKEN_FILE}", "token-not-regular"),
    "symlinked directory": ("mv .local/share/gpubox .local/share/gpubox.mine && ln -s /root/secret-dir .local/share/gpubox",
                            "token-unsafe-directory"),
    "fifo": (f"rm {TOKEN_FILE} && mkfifo {TOKEN_FILE}", "token-not-regular"),
    "empty": (f": > {TOKEN_FILE}", "token-malformed"),
    "whitespace": (f"printf '   \\n' > {TOKEN_FILE}", "token-malformed"),
    "wrong": (f"echo wrong > {TOKEN_FILE}", "token-malformed"),
}


@pytest.mark.parametrize("attack", list(TOKEN_ATTACKS))
def test_attacks_on_the_checker_as_a_data_scientist(host, attack):
    name = host.backend.name
    plant, code = TOKEN_ATTACKS[attack]
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.run("rm -rf /root/autostop-state.json /var/lib/gpubox/holds/* /root/secret-dir /root/token.bak")
    host.run(f"install -m 0600 /dev/null /root/secret-token && echo {SECRET} > /root/secret-token "
             "&& mkdir -m 0700 /root/secret-dir && cp /root/secret-token /root/secret-dir/jupyter-token "
             f"&& cp -a /home/alice/{TOKEN_FILE} /root/token.bak")
    configure(host)
    as_alice(name, "mkfifo /var/lib/gpubox/holds/alice")  # blocks anyone who opens it for reading
    as_alice(name, plant)
    try:
        started = time.monotonic()
        status = check(host)
        assert time.monotonic() - started < 30
        assert sorted(status["ignored"]) == sorted([f"jupyter of alice: {code}", "hold of alice: not-regular"]), status
        assert not [reason for reason in status["reasons"] if not reason.startswith("CPU ")], status
        # The installed service, as the timer runs it: in time, and its journal says why, not what it read.
        started = time.monotonic()
        assert host.run("timeout 150 systemctl start gpubox-autostop.service").rc == 0
        assert time.monotonic() - started < 30
        log = host.check_output(f"journalctl -u gpubox-autostop --no-pager -o cat --since '{since}'")
        assert f"autostop: ignored jupyter of alice: {code}" in log and "autostop: ignored hold of alice: not-regular" in log
        assert_no_secret(host, since)
    finally:
        host.run("rm -f /var/lib/gpubox/holds/alice")
        host.run(f"if [ -L /home/alice/.local/share/gpubox ]; then rm /home/alice/.local/share/gpubox && "
                 f"mv /home/alice/.local/share/gpubox.mine /home/alice/.local/share/gpubox; fi; "
                 f"rm -f /home/alice/{TOKEN_FILE} && cp -a /root/token.bak /home/alice/{TOKEN_FILE}")
    assert as_alice(name, f"cat {TOKEN_FILE}").strip() != SECRET


def test_nobody_can_take_alices_place_while_her_server_is_down(host):
    name = host.backend.name
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.run("rm -f /root/autostop-state.json /var/lib/gpubox/holds/*")
    configure(host)
    token = alice_token(name)
    squat = f"/tmp/squat-{uuid.uuid4().hex}"
    # Another unprivileged account tries to stand in for alice's server while it is down (restart,
    # crash, boot): her socket directory, and her old TCP port, which nothing asks any more.
    listener = ("import os, socket\n"
                f"log = open('{squat}', 'ab', buffering=0)\n"
                "try: os.mkdir('/run/gpubox/jupyter/alice'); log.write(b'made the directory\\n')\n"
                "except OSError as error: log.write(repr(error).encode() + b'\\n')\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('127.0.0.1', {ALICE_PORT})); s.listen(); log.write(b'listening\\n')\n"
                "while True:\n    c, _ = s.accept(); c.settimeout(3)\n    log.write(b'connection\\n')\n"
                "    try: log.write(c.recv(65536))\n    except OSError: pass\n    c.close()\n")
    host.run("systemctl stop jupyter@alice")
    try:
        assert not host.file("/run/gpubox/jupyter/alice").exists  # systemd removed it with the service
        host.run(f"setsid nohup runuser -u nobody -- python3 -c {shlex.quote(listener)} >/dev/null 2>&1 &")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "listening" not in host.run(f"cat {squat}").stdout:
            time.sleep(0.3)
        assert "PermissionError" in host.file(squat).content_string  # the root-owned parent lets nobody in
        status = check(host)
        assert status["ignored"] == [], status  # not running: nothing of alice's to ask, nothing to complain about
        assert "connection" not in host.file(squat).content_string and token not in host.file(squat).content_string
        assert_no_secret(host, since)
    finally:
        host.run(f"pkill -u nobody -f 'squat-' ; rm -f {squat}")
        host.run("systemctl start jupyter@alice")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not host.socket("unix:///run/gpubox/jupyter/alice/jupyter.sock").is_listening:
        time.sleep(0.5)
    assert host.file("/run/gpubox/jupyter/alice").user == "alice" and host.file("/run/gpubox/jupyter/alice").mode & 0o077 == 0
    # Her own server, back on its socket, is asked again (and answers: no error code for alice).
    assert check(host)["ignored"] == []


def test_holds_are_their_owners_whatever_their_names(host):
    name = host.backend.name
    host.run("rm -f /root/autostop-state.json /var/lib/gpubox/holds/*")
    configure(host)
    assert host.file("/var/lib/gpubox/holds").mode == 0o1777 and host.file("/var/lib/gpubox/holds").user == "root"
    host.run("touch /var/lib/gpubox/holds/alice")  # someone else took alice's name first
    try:
        as_alice(name, "echo not-a-time > /var/lib/gpubox/holds/root")  # and alice takes root's: it is hers, and malformed
        status = check(host)
        assert sorted(status["reasons"]) == ["held by root"] and status["ignored"] == ["hold of alice: malformed"], status
        as_alice(name, hold_command(""))  # runner.py hold works around the squatted name
        status = check(host)
        assert sorted(reason for reason in status["reasons"] if reason.startswith("held")) == ["held by alice", "held by root"]
        as_alice(name, release_command())  # and release removes only her own
        assert host.run("ls /var/lib/gpubox/holds").stdout.split() == ["alice"]
        assert host.file("/var/lib/gpubox/holds/alice").user == "root"
    finally:
        host.run("rm -f /var/lib/gpubox/holds/*")


def test_a_browser_user_is_warned_before_the_stop_and_can_hold_it(host, tmp_path):
    """A data scientist who works only in JupyterLab (the `wall` warning reaches terminals only):
    the installed checker's verdict that the host stops soon appears as a notification in her
    browser, through a real tunnel; its button places her own hold, which the checker then counts,
    and the notice is gone."""
    name = host.backend.name
    real_status = "/var/lib/gpubox/autostop/status.json"
    # The installed timer would replace the test's verdict within a minute.
    host.run("systemctl stop gpubox-autostop.timer")
    host.run("rm -f /root/notice-state.json /var/lib/gpubox/holds/*")
    try:
        # Warned from the start: any idle moment is within the warning minutes.
        configure(host, idle_minutes=30, warn_minutes=30, state_file="/root/notice-state.json", status_file=real_status)
        verdict = check(host, real_status)
        assert verdict["stops_in_minutes"] is not None and verdict["warn_minutes"] == 30, verdict
        token = alice_token(name)
        with tunnel(name, "alice", ALICE_PORT) as (local, _):
            assert wait_for_status(local, token) == 200
            with browser.browser(tmp_path / "chromium") as page:
                page.call("Page.enable")
                page.navigate(f"http://127.0.0.1:{local}/lab?token={token}")
                page.wait_for("document.body && document.body.innerText.includes('this workstation stops in')", 120,
                              "gpubox's idle warning")
                time.sleep(1)  # the pop-up slides in: click where it comes to rest
                page.evaluate("Array.from(document.querySelectorAll('button'))"
                              ".find(b => b.innerText.includes('Keep it up 1 hour')).setAttribute('data-test', 'hold')")
                page.click("button[data-test=hold]")
                page.wait_for("document.body.innerText.includes('held until')", 30, "the hold's confirmation")
            held = host.run("find /var/lib/gpubox/holds -maxdepth 1 -type f -user alice").stdout.split()
            assert len(held) == 1, held
            verdict = check(host, real_status)
            assert verdict["busy"] and any(reason.startswith("held by alice until") for reason in verdict["reasons"]), verdict
            assert http(local, "/gpubox/notices", token) == (200, {"notices": []})
    finally:
        as_alice(name, release_command())
        host.run("rm -f /root/notice-state.json && systemctl start gpubox-autostop.timer gpubox-autostop.service")


def test_a_wish_beyond_its_cap_is_held_to_the_cap_and_the_log_says_so(host):
    """alice asks for 600 idle minutes with `runner.py autostop 600` (its remote command, over her
    own SSH login); IT's cap of 240 wins in the installed checker, which says so in its log and
    in status.json."""
    name = host.backend.name
    host.run("rm -f /root/autostop-state.json /var/lib/gpubox/holds/*")
    configure(host, idle_minutes=60, max_idle_minutes=240, allow_off=False)
    try:
        as_alice(name, autostop_cli.set_command(autostop_cli.wish("600")))
        status = check(host)
        assert status["idle_limit"] == 240 and status["idle_limit_by"] == "alice", status
        said = "idle limit of alice: 600 min asked, beyond IT's bounds (at most 240 min, never off): 240 min applies"
        assert said in status["notes"] and f"autostop: {said}" in status["log"], status
        as_alice(name, autostop_cli.set_command(autostop_cli.wish("off")))  # off is not hers to choose here
        status = check(host)
        assert status["idle_limit"] == 240 and status["stops_in_minutes"] is not None, status
        assert "idle limit of alice: off asked, beyond IT's bounds (at most 240 min, never off): 240 min applies" in status["notes"]
    finally:
        host.run("rm -f /var/lib/gpubox/idle-limits/*")
