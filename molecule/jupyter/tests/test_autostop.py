"""Autostop on a real workstation: a kernel executing a long cell, an idle kernel, a CPU-bound
process, an SSH tunnel alone, an interactive SSH session, a hold with an expiry, a broken Jupyter
token, and the action running exactly once after the warning. The checker is the installed one,
run with a test configuration (idle limit 1 minute, a test action that records itself)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import websocket
from test_jupyter import ALICE_PORT, KEYS, TOKEN_FILE, alice_token, execute, http, instance, tunnel, wait_for_status
from testhosts import ssh, testinfra_hosts as _hosts

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


def check(host) -> dict:
    result = host.run(f"python3 {CHECKER} {TEST_CONFIG}")
    assert result.rc == 0, result.stderr
    status = json.loads(host.file("/root/autostop-status.json").content_string)
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
    configure(host)
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

        # A broken token: the check cannot be done, so the host counts as busy and says why.
        host.run(f"cp /home/alice/{TOKEN_FILE} /root/token.bak && echo wrong > /home/alice/{TOKEN_FILE}")
        try:
            status = check(host)
        finally:
            host.run(f"cp /root/token.bak /home/alice/{TOKEN_FILE}")
        assert status["busy"] and "is its token right?" in status["reasons"][0]

        # Once the idle kernel's last activity is older than the limit and the hold has expired: idle.
        time.sleep(max(0, 65 - (time.monotonic() - quiet_since)))
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
