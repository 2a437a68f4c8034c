"""JupyterLab as a data scientist meets it: through a real OpenSSH tunnel with their own key to
their own Unix socket, token required, the TensorFlow kernel running code over the websocket API,
no TCP listener of it or its kernels,
restarted by systemd, gone for a revoked user, and the token never in Ansible's output. A user
who breaks their token or plants links where it lives gets it replaced as themselves, root never
writes through their link, and a server without a valid token does not start."""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket
import yaml
from testhosts import check_mode_changes, instance, run_playbook, ssh, testinfra_hosts as _hosts

# The browser helpers a data scientist's tests use (tests/browser.py, tests/lab.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
import browser  # noqa: E402
import lab  # noqa: E402

testinfra_hosts = _hosts()
KEYS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "keys"
ALICE_PORT = 8080  # alice's jupyter_port: the local port runner.py tunnel prefers for her
TOKEN_FILE = ".local/share/gpubox/jupyter-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def socket_of(user: str) -> str:
    return f"/run/gpubox/jupyter/{user}/jupyter.sock"


@contextlib.contextmanager
def tunnel(name: str, user: str, _preferred_port: int | None = None, target: str | None = None):
    """`ssh -N -L` as the data scientist to a Unix socket on the host (default: their own Jupyter's);
    yields the local port once it accepts connections."""
    host = instance(name)
    local = free_port()
    process = subprocess.Popen(
        ["ssh", "-N", "-L", f"127.0.0.1:{local}:{target or socket_of(user)}", "-p", str(host["port"]), "-i", str(KEYS / user),
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", f"{user}@{host['address']}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            time.sleep(0.2)
        yield local, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def alice_token(name: str) -> str:
    # Fetched the way runner.py does: by its owner, over SSH.
    result = ssh(name, "cat", TOKEN_FILE, user="alice", key=str(KEYS / "alice"))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def http(port: int, path: str, token: str | None = None, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def wait_for_status(port: int, token: str, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, _ = http(port, "/api/status", token)
            if status == 200:
                return status
        time.sleep(0.5)
    return status


def test_status_through_the_tunnel_needs_the_token(host):
    name = host.backend.name
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        assert wait_for_status(local, token) == 200
        assert http(local, "/api/status")[0] == 403
        assert http(local, "/api/status", token="not-the-token")[0] == 403


def execute(local: int, token: str, kernel_id: str, code: str) -> str:
    connection = websocket.create_connection(f"ws://127.0.0.1:{local}/api/kernels/{kernel_id}/channels",
                                             header=[f"Authorization: token {token}"], timeout=120)
    try:
        msg_id = uuid.uuid4().hex
        connection.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex, "msg_type": "execute_request",
                       "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False},
        }))
        output, status = [], None
        while status is None:
            message = json.loads(connection.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["msg_type"] == "stream":
                output.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                output.append("ERROR " + message["content"]["ename"] + ": " + message["content"]["evalue"])
            elif message["msg_type"] == "execute_reply":
                status = message["content"]["status"]
        assert status == "ok", "".join(output)
        return "".join(output)
    finally:
        connection.close()


def test_tensorflow_kernel_computes_through_the_tunnel(host):
    name = host.backend.name
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        assert wait_for_status(local, token) == 200
        status, kernel = http(local, "/api/kernels", token, method="POST", body={})
        assert status == 201 and kernel["name"] == "gpubox-tensorflow"
        try:
            printed = execute(local, token, kernel["id"], (
                "import tensorflow as tf, getpass\n"
                "product = tf.matmul(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[5.0, 6.0], [7.0, 8.0]]))\n"
                "print(getpass.getuser(), tf.__version__, product.numpy().tolist())\n"))
            # TensorFlow's C++ start-up notice (oneDNN, on the kernel's stderr) may arrive after the print.
            assert "alice 2.20.0 [[19.0, 22.0], [43.0, 50.0]]" in printed.strip().splitlines(), printed
        finally:
            http(local, f"/api/kernels/{kernel['id']}", token, method="DELETE")


def test_users_can_add_their_own_kernels(host):
    name = host.backend.name
    added = ssh(name, "/opt/gpubox/venv/bin/python", "-m", "ipykernel", "install", "--user", "--name", "alice-own",
                user="alice", key=str(KEYS / "alice"))
    assert added.returncode == 0, added.stderr
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        assert wait_for_status(local, token) == 200
        status, specs = http(local, "/api/kernelspecs", token)
        assert status == 200
        assert specs["default"] == "gpubox-tensorflow"
        # theirs and each chosen framework's; never JupyterLab's own environment ("python3")
        assert set(specs["kernelspecs"]) == {KERNELS[framework][0] for framework in frameworks(name)} | {"alice-own"}
    removed = ssh(name, "/opt/gpubox/venv/bin/jupyter", "kernelspec", "remove", "-y", "alice-own", user="alice", key=str(KEYS / "alice"))
    assert removed.returncode == 0, removed.stderr


# molecule.yml's host_vars choose both frameworks on the Debian 12 host and leave Debian 13 on
# the default (TensorFlow only): both launchers are checked.
KERNELS = {"tensorflow": ("gpubox-tensorflow", "Python 3 (TensorFlow)"), "pytorch": ("gpubox-pytorch", "Python 3 (PyTorch)")}
CELLS = {
    "tensorflow": ("import tensorflow as tf\n"
                   "print('gpubox-matmul', tf.matmul(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[5.0, 6.0], [7.0, 8.0]])).numpy().tolist())"),
    "pytorch": ("import torch\n"
                "print('gpubox-matmul', (torch.tensor([[1.0, 2.0], [3.0, 4.0]]) @ torch.tensor([[5.0, 6.0], [7.0, 8.0]])).tolist())"),
}


def frameworks(name: str) -> list[str]:
    """The host's gpubox_frameworks as molecule.yml sets it (the roles' default where it does not)."""
    scenario = yaml.safe_load((Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "molecule.yml").read_text())
    host_vars = scenario.get("provisioner", {}).get("inventory", {}).get("host_vars", {})
    return host_vars.get(name, {}).get("gpubox_frameworks", ["tensorflow"])


def report(name: str) -> dict:
    result = ssh(name, "cat", "/etc/gpubox/report.json", user="alice", key=str(KEYS / "alice"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_report_holds_each_chosen_frameworks_smoke_test(host):
    """report.json: TensorFlow's result (its top level, as runner.py status reads it) and, where
    chosen, PyTorch's under "pytorch": version, devices, a correct matrix product and its time."""
    name = host.backend.name
    written = report(name)
    assert written["ok"] is True and written["tensorflow"]["version"] == "2.20.0"
    assert written["matmul"]["correct"] is True and written["matmul"]["seconds"] > 0
    if "pytorch" not in frameworks(name):
        assert "pytorch" not in written
        assert not host.file("/opt/gpubox/pytorch").exists
        return
    pytorch = written["pytorch"]
    assert pytorch["ok"] is True, pytorch
    assert pytorch["pytorch"]["version"].split("+")[0] == pytorch["inputs"]["pytorch"] == "2.15.0"
    assert pytorch["device"] == "cpu" and pytorch["gpus"] == []  # no GPU on a test host
    assert pytorch["matmul"]["correct"] is True and pytorch["matmul"]["size"] == 1024 and pytorch["matmul"]["seconds"] > 0
    # Every user's kernel runs from it: readable by all, written by root only.
    assert host.file("/opt/gpubox/pytorch/bin/python").user == "root"
    assert host.file("/opt/gpubox/pytorch").mode & 0o755 == 0o755


def test_launcher_lists_exactly_the_chosen_frameworks_and_each_multiplies(host, tmp_path):
    """In a real browser through the tunnel: the launcher's notebook kernels are exactly the
    chosen frameworks', and a new notebook on each runs a cell that imports the framework and
    multiplies two matrices."""
    name = host.backend.name
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        assert wait_for_status(local, token) == 200
        url = f"http://127.0.0.1:{local}/lab?token={token}"
        # One browser per notebook: leaving a page with an unsaved notebook asks first, and the
        # question would hold the next navigation.
        for framework in frameworks(name):
            with browser.browser(tmp_path / f"chromium-{framework}") as page:
                page.call("Page.enable")
                assert sorted(lab.launcher_notebooks(page, url)) == sorted(KERNELS[chosen][1] for chosen in frameworks(name))
                output = lab.run_in_new_notebook(page, KERNELS[framework][1], CELLS[framework])
            assert "gpubox-matmul [[19.0, 22.0], [43.0, 50.0]]" in output, (framework, output)


def test_listens_on_its_users_socket_only(host):
    """No TCP listener of alice's (her server and a running kernel of hers), her socket in a
    directory of hers alone, and bob's tunnel to it refused by the kernel."""
    name = host.backend.name
    token = alice_token(name)
    with tunnel(name, "alice") as (local, _):
        assert wait_for_status(local, token) == 200
        status, kernel = http(local, "/api/kernels", token, method="POST", body={})
        assert status == 201
        try:
            assert execute(local, token, kernel["id"], "print(6 * 7)").strip() == "42"  # the kernel runs, over ipc
            uid = host.user("alice").uid
            listening = host.check_output("ss -Hltnpe")
            assert f"uid:{uid} " not in listening + " ", listening
            assert ":8080 " not in listening  # her jupyter_port is only the local port of her tunnel
            runtime = host.check_output("ls -A /run/gpubox/jupyter/alice")
            assert "jupyter.sock" in runtime and f"kernel-{kernel['id']}-ipc-1" in runtime
        finally:
            http(local, f"/api/kernels/{kernel['id']}", token, method="DELETE")
    directory = host.file("/run/gpubox/jupyter/alice")
    assert directory.user == "alice" and directory.mode & 0o077 == 0
    assert host.file("/run/gpubox/jupyter").user == "root" and host.file("/run/gpubox").user == "root"
    # The host's published port leads to port 8080 on its network address, where nothing answers.
    with pytest.raises(OSError):
        with socket.create_connection(("127.0.0.1", instance(name)["probe_port"]), timeout=3) as sock:
            sock.sendall(b"GET /api/status HTTP/1.0\r\n\r\n")
            if not sock.recv(100):
                raise ConnectionResetError("closed without an answer")


def test_token_file_is_private(host):
    token = host.file(f"/home/alice/{TOKEN_FILE}")
    assert token.user == "alice" and token.mode == 0o600
    assert host.file("/home/alice/.local/share/gpubox").mode == 0o700
    assert len(token.content_string.strip()) == 64


def test_systemd_brings_a_killed_server_back(host):
    name = host.backend.name
    before = int(host.check_output("systemctl show -P MainPID jupyter@alice"))
    assert before > 0
    host.run(f"kill -9 {before}")
    deadline = time.monotonic() + 45
    after = before
    while time.monotonic() < deadline and after in (before, 0):
        time.sleep(0.5)
        after = int(host.check_output("systemctl show -P MainPID jupyter@alice"))
    assert after not in (before, 0)
    token = alice_token(name)
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        # A new process is not yet a listening server: JupyterLab's start-up takes a few CPU
        # seconds, over half a minute on a loaded 2-core CI machine (seen in the soak).
        assert wait_for_status(local, token, timeout=120) == 200


def test_revoked_user_has_no_server_and_no_tunnel(host):
    bob = host.service("jupyter@bob")
    assert not bob.is_running and not bob.is_enabled
    assert not host.file("/etc/gpubox/jupyter/bob.env").exists
    with tunnel(host.backend.name, "bob") as (_, process):
        assert process.wait(timeout=20) == 255
        assert "Permission denied" in process.stderr.read()


def test_token_never_in_ansible_output_or_the_journal(host):
    name = host.backend.name
    token = alice_token(name)
    output, changed = run_playbook(name, "converge.yml", "-v")
    assert changed == 0
    assert token not in output
    assert host.run(f"journalctl --no-pager | grep -c {token}").stdout.strip() == "0"


def test_check_mode_reports_no_changes(host):
    assert check_mode_changes(host.backend.name) == 0


def as_alice(name: str, command: str) -> None:
    result = ssh(name, command, user="alice", key=str(KEYS / "alice"))
    assert result.returncode == 0, result.stderr


def fingerprint(host) -> str:
    """Owner, mode, size, link target and content of everything root owns that a planted link could reach
    (Ansible's own temporary files and the checker's state, which the timer rewrites, left out)."""
    where = "/etc /root /var/lib/gpubox/holds -xdev -path /root/.ansible -prune -o"
    return host.check_output(f"find {where} -printf '%p %u %g %m %s %l\\n' | sort | sha256sum; "
                             f"find {where} -type f -exec sha256sum {{}} + | sort | sha256sum")


def jupyter_answers(name: str, token: str) -> int:
    with tunnel(name, "alice", ALICE_PORT) as (local, _):
        return wait_for_status(local, token, timeout=60)


@pytest.mark.parametrize("plant", [f": > {TOKEN_FILE}", f"ln -sfn /etc/shadow {TOKEN_FILE}"])
def test_a_broken_token_is_replaced_as_the_user_and_never_served(host, plant):
    name = host.backend.name
    before = fingerprint(host)
    as_alice(name, plant)
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    host.run("systemctl restart jupyter@alice")
    # No valid token, no server: an empty one would have turned authentication off.
    deadline, log = time.monotonic() + 90, ""
    while time.monotonic() < deadline and "no valid Jupyter token" not in log:
        time.sleep(1)
        log = host.check_output(f"journalctl -u jupyter@alice --no-pager -o cat --since '{since}'")
    assert "no valid Jupyter token" in log and "is running at" not in log
    assert not host.socket(f"unix://{socket_of('alice')}").is_listening
    _, changed = run_playbook(name, "converge.yml", "--tags", "jupyter_services")
    assert changed >= 1
    token = host.file(f"/home/alice/{TOKEN_FILE}")
    assert token.is_file and not token.is_symlink and token.user == "alice" and token.mode == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", token.content_string)
    assert fingerprint(host) == before
    host.run("systemctl reset-failed jupyter@alice; systemctl start jupyter@alice")
    assert jupyter_answers(name, alice_token(name)) == 200


def test_root_never_writes_the_token_through_a_planted_directory_link(host):
    name = host.backend.name
    token = alice_token(name)
    before = fingerprint(host)
    as_alice(name, "mv .local/share/gpubox .local/share/gpubox.mine && ln -s /etc/apt/apt.conf.d .local/share/gpubox")
    try:
        output, _ = run_playbook(name, "converge.yml", "--tags", "jupyter_services")
        assert not host.file("/etc/apt/apt.conf.d/jupyter-token").exists
        assert fingerprint(host) == before
        assert token not in output
    finally:
        as_alice(name, "rm .local/share/gpubox && mv .local/share/gpubox.mine .local/share/gpubox")
    assert jupyter_answers(name, token) == 200


def alice_ssh_prefix(name: str) -> list[str]:
    host = instance(name)
    return ["ssh", "-p", str(host["port"]), "-i", str(KEYS / "alice"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"alice@{host['address']}"]


def test_alice_creates_her_own_environment_from_pytorch(host, tmp_path):
    """`runner.py env create myenv -r requirements.txt --from pytorch`, as alice (no sudo) over SSH:
    her kernel imports torch (shared, not copied) and the package from the file; another account
    does not see it; a missing package fails naming it and leaves no environment and no kernel."""
    from gpubox.commands import env  # the project's own client code

    name = host.backend.name
    if "pytorch" not in frameworks(name):
        pytest.skip("PyTorch is not chosen on this host (molecule.yml's host_vars)")
    assert ssh(name, "sudo", "-n", "true", user="alice", key=str(KEYS / "alice")).returncode != 0  # no sudo for alice
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("tabulate==0.9.0\n")
    answer = env.run_remote(alice_ssh_prefix(name), env.create_request("myenv", requirements, None, "pytorch"))
    assert answer["ok"], answer
    # Inherits the 5 GB framework environment by reference: a small fraction of it on disk.
    assert 0 < answer["bytes"] < answer["framework_bytes"] / 100, answer
    token = alice_token(name)
    try:
        with tunnel(name, "alice", ALICE_PORT) as (local, _):
            assert wait_for_status(local, token) == 200
            assert "gpubox-env-myenv" in http(local, "/api/kernelspecs", token)[1]["kernelspecs"]
            status, kernel = http(local, "/api/kernels", token, method="POST", body={"name": "gpubox-env-myenv"})
            assert status == 201
            try:
                printed = execute(local, token, kernel["id"], (
                    "import torch, tabulate, getpass\n"
                    "print(getpass.getuser(), torch.__file__.startswith('/opt/gpubox/pytorch/'), tabulate.__version__,"
                    " (torch.ones(2, 2) @ torch.ones(2, 2)).tolist())\n"))
                assert "alice True 0.9.0 [[2.0, 2.0], [2.0, 2.0]]" in printed.strip().splitlines(), printed
            finally:
                http(local, f"/api/kernels/{kernel['id']}", token, method="DELETE")
        # Another account: neither the environment nor the kernel (alice's home is hers; the kernel spec is in it).
        other = host.run("runuser -u nobody -- env HOME=/tmp JUPYTER_DATA_DIR=/tmp/gpubox-nobody-jupyter "
                         "/opt/gpubox/jupyter/bin/jupyter kernelspec list --json")
        assert other.rc == 0 and "gpubox-env-myenv" not in other.stdout
        assert host.run("runuser -u nobody -- ls /home/alice/.local/share/gpubox/envs").rc != 0

        requirements.write_text("tabulate==0.9.0\ngpubox-no-such-package-7c1e==1.0\n")
        failed = subprocess.run(env.remote_argv(alice_ssh_prefix(name)),
                                input=env.remote_program(env.create_request("broken", requirements, None, "pytorch")),
                                capture_output=True, text=True, timeout=900, check=False)
        assert failed.returncode != 0 and "gpubox-no-such-package-7c1e" in failed.stdout, failed.stdout + failed.stderr
        left = ssh(name, "ls", "-A", ".local/share/gpubox/envs", ".local/share/jupyter/kernels", user="alice", key=str(KEYS / "alice"))
        assert "broken" not in left.stdout and "myenv" in left.stdout, left.stdout
    finally:
        assert env.run_remote(alice_ssh_prefix(name), {"action": "remove", "name": "myenv"})["ok"]


def main_pid(host, user: str) -> int:
    return int(host.check_output(f"systemctl show -P MainPID jupyter@{user}"))


def test_the_server_runs_in_its_users_slice_under_their_limits(host):
    """alice's notebooks share the memory and task limits of her logins and jobs (ssh_access's
    user-<uid>.slice), instead of escaping them as a system service."""
    uid = host.user("alice").uid
    assert host.check_output("systemctl show -P Slice jupyter@alice") == f"user-{uid}.slice"
    limits = dict(line.split("=", 1) for line in host.check_output(f"systemctl show -p MemoryMax -p TasksMax user-{uid}.slice").splitlines())
    assert limits["MemoryMax"] != "infinity" and limits["TasksMax"] != "infinity", limits


def test_a_revoked_account_gets_no_server_even_with_its_settings_back(host):
    """bob is revoked (a locked, expired tombstone). Even if his unit were still enabled, or his
    settings came back (a run of ssh_access.yml alone, then a reboot), PAM's account check refuses
    to start his server: nothing runs as bob."""
    uid = host.user("bob").uid
    host.run_expect([0], "sed 's/^GPUBOX_JUPYTER_PORT=.*/GPUBOX_JUPYTER_PORT=8090/; s|/home/alice|/home/bob|' "
                         "/etc/gpubox/jupyter/alice.env > /etc/gpubox/jupyter/bob.env")
    try:
        since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
        assert host.run("systemctl start jupyter@bob").rc != 0
        # PAM's own words and systemd's verdict reach the journal from two processes, a moment after
        # the start failed and in either order (seen late under load, PAM's not always filed under
        # the unit): wait up to 30 s for both in the whole journal since the start.
        log = host.check_output(f"for i in $(seq 60); do journalctl --no-pager -o cat --since '{since}' > /tmp/bob-start.log; "
                                "grep -q 'account bob has expired' /tmp/bob-start.log && grep -q 'status=224/PAM' /tmp/bob-start.log "
                                "&& break; sleep 0.5; done; cat /tmp/bob-start.log; rm -f /tmp/bob-start.log")
        assert "account bob has expired" in log, log
        assert "status=224/PAM" in log, log
        assert host.run(f"pgrep -u {uid}").rc == 1  # no process of bob's at all
    finally:
        host.run("systemctl stop jupyter@bob; systemctl reset-failed jupyter@bob; rm -f /etc/gpubox/jupyter/bob.env")


def roster(keys: Path, *present: str, absent: tuple[str, ...] = ()) -> str:
    users = [{"name": name, "ssh_keys": [(keys / f"{name}.pub").read_text().strip()],
              **({"jupyter_port": ALICE_PORT} if name == "alice" else {})} for name in present]
    return json.dumps({"gpubox_users": users + [{"name": name, "state": "absent"} for name in absent]})


def test_a_roster_change_restarts_nobody_else(host, tmp_path):
    """carol joins, then leaves: alice's server (and so her kernels) keeps running through both runs;
    carol's own server starts in her slice and ends with her revocation."""
    name = host.backend.name
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "alice.pub").write_text((KEYS / "alice.pub").read_text())
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "carol")], check=True)
    alice_before = main_pid(host, "alice")
    assert alice_before > 0
    run_playbook(name, "converge.yml", "-e", roster(keys, "alice", "carol", absent=("bob",)))
    carol = host.service("jupyter@carol")
    assert carol.is_running and carol.is_enabled
    assert host.check_output("systemctl show -P Slice jupyter@carol") == f"user-{host.user('carol').uid}.slice"
    assert main_pid(host, "alice") == alice_before
    run_playbook(name, "converge.yml", "-e", roster(keys, "alice", absent=("bob", "carol")))
    assert not host.service("jupyter@carol").is_running
    assert main_pid(host, "alice") == alice_before
    _, changed = run_playbook(name, "converge.yml")
    assert changed == 0
