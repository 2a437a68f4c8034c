"""The README's `make demo` path end to end: runner.py provision --local starts a container,
configures it with site.yml through ansible-runner with live progress, and a plain `ssh
gpubox-NAME` then works; a second provision changes nothing and logins right after it never wait;
JupyterLab works in a real browser; destroy removes it all. The workstation is provisioned once
for the module, so the login test can be repeated (`make soak`)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

import browser
import lab
from conftest import PROJECT, run_env
from gpubox import containers, contract, status

pytestmark = pytest.mark.integration


def runner(home, *args: str, timeout: int = 1800, login: str = "") -> subprocess.CompletedProcess[str]:
    """runner.py as a person whose HOME is `home` (and whose login name is `login`, when given)."""
    env = run_env(home) | ({"USER": login, "LOGNAME": login} if login else {})
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@dataclasses.dataclass
class DemoWorkstation:
    name: str
    home: Path
    first: subprocess.CompletedProcess[str]
    login: str

    def ssh(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", "-F", str(self.home / ".ssh" / "config"), "-o", "BatchMode=yes", f"gpubox-{self.name}", *command],
                              capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[DemoWorkstation]:
    """One `provision --local` for the module, without --name: the first run is what `make demo`
    does. The workstation is named after the login (pt_1a2b3c makes pt-1a2b3c), and every verb
    after it finds the only workstation without --name."""
    home = tmp_path_factory.mktemp("demo") / "home"
    home.mkdir()
    login = f"pt_{uuid.uuid4().hex[:6]}"
    name = login.replace("_", "-")
    try:
        yield DemoWorkstation(name, home, runner(home, "provision", "--local", login=login), login)
    finally:
        containers.remove(f"gpubox-{name}")


def test_provision_local_then_ssh(demo):
    first, home = demo.first, demo.home
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # Live progress for people: one line per step in plain words with the time so far; Ansible's
    # task names only in the run's log (and with --verbose). At most 25 lines in all.
    assert "] Preparing the system (packages, time, certificates)" in first.stdout
    assert "Install the common packages" not in first.stdout
    assert len(first.stdout.splitlines()) <= 25, first.stdout
    steps = [line for line in first.stdout.splitlines() if re.match(r"^\[\d+:\d\d\] ", line)]
    assert len(steps) >= 7, first.stdout
    assert f"ssh gpubox-{demo.name}" in first.stdout
    assert "Traceback" not in first.stdout + first.stderr

    login = demo.ssh("sudo", "-n", "cat", "/etc/pip.conf")
    assert login.returncode == 0, login.stderr
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in login.stdout

    key = home / ".ssh" / "gpubox_ed25519"
    assert key.stat().st_mode & 0o777 == 0o600
    assert (home / ".ssh" / "config").read_text().startswith(f'Include "{home}/.ssh/gpubox/*.conf"')


def test_reprovision_changes_nothing_and_logins_never_wait(demo):
    """A data scientist who re-provisions and logs in again must never meet a frozen ssh. In a
    container on a cgroup v1 host a user manager that stops is never seen to end, so a login
    after the last one ended (logind stops the manager 10 s later) would wait 120 s for it."""
    assert demo.first.returncode == 0
    assert demo.ssh("true").returncode == 0
    time.sleep(12)  # past logind's UserStopDelaySec: without lingering, the manager is stopping now
    again = runner(demo.home, "provision", "--local", login=demo.login)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert ": 0 changed." in again.stdout

    started = time.monotonic()
    for attempt in range(3):
        begun = time.monotonic()
        try:
            whoami = demo.ssh("id", "-un", timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"login {attempt + 1} after a re-provision hung for 10 s:\n" + demo_diagnostics(demo.name))
        assert whoami.stdout.strip() == demo.login, whoami.stderr  # the data scientist (their login), not the admin account
        assert time.monotonic() - begun < 10
    assert time.monotonic() - started < 10, "three logins took 10 s or more:\n" + demo_diagnostics(demo.name)


# One line, so the editor's auto-indent and bracket closing have nothing to change.
MATMUL = ("import tensorflow as tf; print('gpubox-matmul', tf.linalg.matmul(tf.constant([[1.0, 2.0], [3.0, 4.0]]),"
          " tf.constant([[5.0, 6.0], [7.0, 8.0]])).numpy().tolist())")
ARTIFACTS = Path("/tmp/gpubox-artifacts")


def jupyter_api(url: str, path: str) -> dict:
    base, token = url.split("/lab?token=")
    request = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_jupyterlab_in_a_browser(demo, tmp_path):
    """The data scientist's first minutes in JupyterLab, in a real browser through the URL that
    `runner.py tunnel` prints: one kernel (TensorFlow's), no news question, a notebook whose cell
    multiplies two matrices with TensorFlow; without the token, the login page. The screenshot is
    kept in /tmp/gpubox-artifacts/."""
    assert demo.first.returncode == 0
    with running_tunnel(demo.home, None) as tunnel:
        assert jupyter_status(tunnel.url) == 200
        specs = jupyter_api(tunnel.url, "/api/kernelspecs")
        assert sorted(specs["kernelspecs"]) == ["gpubox-tensorflow"] and specs["default"] == "gpubox-tensorflow"
        # Nothing fetched from the internet: no news feed, no update check, news question decided.
        assert jupyter_api(tunnel.url, "/lab/api/news") == {"news": []}
        assert jupyter_api(tunnel.url, "/lab/api/update") == {"notification": None}
        notification = jupyter_api(tunnel.url, "/lab/api/settings/@jupyterlab/apputils-extension:notification")
        assert notification["schema"]["properties"]["fetchNews"]["default"] == "false"
        assert notification["schema"]["properties"]["checkForUpdates"]["default"] is False

        with browser.browser(tmp_path / "chromium") as page:
            page.call("Page.enable")
            login = lab.shows_login(page, tunnel.url.split("?")[0])
            assert "token" in login.lower()
            assert lab.launcher_notebooks(page, tunnel.url) == ["Python 3 (TensorFlow)"]
            output = lab.run_in_new_notebook(page, "Python 3 (TensorFlow)", MATMUL)
            shown = page.text()
            png = page.screenshot(tmp_path / "jupyterlab-notebook.png")
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(png, ARTIFACTS / "jupyterlab-notebook.png")
    assert "gpubox-matmul [[19.0, 22.0], [43.0, 50.0]]" in output, output
    assert lab.NEWS_QUESTION not in shown


def test_notebook_opens_the_url_in_the_browser(demo, tmp_path):
    """runner.py notebook: the tunnel, and the user's browser (BROWSER, as Python's webbrowser
    reads it; here a script that notes the URL) opened on a URL that works once the tunnel is up."""
    assert demo.first.returncode == 0
    opened = tmp_path / "opened"
    fake_browser = tmp_path / "browser.sh"
    fake_browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" > {opened}\n")
    fake_browser.chmod(0o755)
    with running_tunnel(demo.home, None, "notebook", BROWSER=f"{fake_browser} %s") as tunnel:
        tunnel.next_line_with("Opened JupyterLab in your browser.")
        assert opened.read_text().strip() == tunnel.url
        assert jupyter_status(tunnel.url) == 200
        tunnel.process.send_signal(signal.SIGINT)
        tunnel.next_line_with("Tunnel closed.")
        assert tunnel.process.wait(timeout=15) == 0


def test_status_shows_local_host_and_ec2_together(demo, moto_endpoint):
    """runner.py status: this local workstation, the same machine set up as an SSH host, and an
    EC2 instance (moto), in text and JSON; the workstations' own answers come over SSH."""
    assert demo.first.returncode == 0
    local_entry = demo.home / ".ssh" / "gpubox" / f"gpubox-{demo.name}.conf"
    host_name = f"{demo.name}h"  # what `provision --host` writes, for an address we can reach
    planted = local_entry.parent / f"gpubox-{host_name}.conf"
    planted.write_text(local_entry.read_text().replace(f"gpubox-{demo.name}", f"gpubox-{host_name}"))
    try:
        check_status_of_three(demo, host_name, moto_endpoint)
        # Two workstations known: a verb without --name names both and acts on neither.
        ambiguous = runner(demo.home, "hold")
        assert ambiguous.returncode == 2, ambiguous.stdout + ambiguous.stderr
        assert f"{demo.name} (local container)" in ambiguous.stderr and f"{host_name} (SSH host)" in ambiguous.stderr, ambiguous.stderr
        assert "--name" in ambiguous.stderr
    finally:  # the later tests find the only workstation without --name
        planted.unlink()


def check_status_of_three(demo: DemoWorkstation, host_name: str, moto_endpoint: str) -> None:
    aws = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    client = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    image = client.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]
    # Owned by the caller (status lists only the caller's workstations without --all): the owner
    # tag is the caller's STS UserId (docs/iam.md).
    caller = boto3.client("sts", region_name="us-east-1", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing").get_caller_identity()["UserId"]
    tags = [{"Key": contract.TAG_MANAGED, "Value": contract.MANAGED_VALUE}, {"Key": contract.TAG_NAME, "Value": "cloud1"},
            {"Key": contract.TAG_OWNER, "Value": caller}]
    client.run_instances(ImageId=image["ImageId"], MinCount=1, MaxCount=1, InstanceType="g4dn.xlarge",
                         TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "runner.py", "status", *args], cwd=PROJECT, env=run_env(demo.home) | aws,
                              capture_output=True, text=True, timeout=180, check=False)

    text = status()
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    local = next(index for index, line in enumerate(lines) if line.startswith(f"{demo.name}: "))
    assert lines[local].startswith(f"{demo.name}: running, local container at 127.0.0.1:")
    assert lines[local].endswith(", Jupyter ready")
    assert lines[local + 1].startswith("  TensorFlow ") and "(ok), no GPU seen" in lines[local + 1]
    assert lines[local + 2].startswith("  autostop: ")
    assert any(line.startswith(f"{host_name}: reachable, SSH host at 127.0.0.1:") and line.endswith("Jupyter ready")
               for line in lines)
    assert any(line.startswith("cloud1: running, g4dn.xlarge in ") for line in lines), text.stdout

    document = json.loads(status("--json").stdout)
    rows = {row["name"]: row for row in document["workstations"]}
    assert {name: rows[name]["kind"] for name in (demo.name, host_name, "cloud1")} == {
        demo.name: "local", host_name: "host", "cloud1": "ec2"}
    assert rows[demo.name]["jupyter"] == "ready" and rows[demo.name]["tensorflow"]["ok"] is True
    assert rows[host_name]["state"] == "reachable" and rows[host_name]["autostop"]
    assert rows["cloud1"]["hourly_price_usd"] == 0.526 and rows["cloud1"]["reachable"] is False
    assert document["ec2_error"] is None


def test_one_connection_carries_many_sessions_and_forwards(demo):
    """What VS Code Remote-SSH and similar tools do: one OpenSSH ControlMaster connection, over it
    several sessions at once (a terminal, the editor's server, commands) and port forwards."""
    assert demo.first.returncode == 0
    alias = f"gpubox-{demo.name}"
    user = demo.ssh("id -un").stdout.strip()
    jupyter_socket = contract.jupyter_socket(user)  # JupyterLab listens on a Unix socket of the user's
    control = Path(f"/tmp/gpubox-cm-{uuid.uuid4().hex[:8]}")  # a socket path must stay short
    base = ["ssh", "-F", str(demo.home / ".ssh" / "config"), "-o", "BatchMode=yes", "-S", str(control)]
    master = subprocess.Popen([*base, "-M", "-N", "-o", "ControlPersist=no", alias], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([*base, "-O", "check", alias], capture_output=True, check=False).returncode != 0:
            assert master.poll() is None and time.monotonic() < deadline, "the ControlMaster connection never came up"
            time.sleep(0.3)
        ports = []
        for _ in range(2):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                ports.append(sock.getsockname()[1])
            forward = subprocess.run([*base, "-O", "forward", "-L", f"127.0.0.1:{ports[-1]}:{jupyter_socket}", alias],
                                     capture_output=True, text=True, check=False)
            assert forward.returncode == 0, forward.stderr
        sessions = [subprocess.Popen([*base, alias, f"sleep 4; echo session-{number}"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for number in range(6)]
        for port in ports:  # the forwards work while every session is open
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=10) as response:
                assert response.status == 200 and "version" in json.loads(response.read())
        for number, session in enumerate(sessions):
            out, err = session.communicate(timeout=60)
            assert session.returncode == 0 and out.strip() == f"session-{number}", f"session {number}: {err}"
    finally:
        subprocess.run([*base, "-O", "exit", alias], capture_output=True, check=False)
        try:
            master.wait(timeout=15)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        control.unlink(missing_ok=True)


def test_tunnel(demo):
    assert demo.first.returncode == 0
    check_tunnel(demo.home, None)


def test_hold_and_release_without_a_name(demo):
    assert demo.first.returncode == 0
    held = runner(demo.home, "hold", timeout=120)
    assert held.returncode == 0, held.stdout + held.stderr
    holds = demo.ssh("find", "/var/lib/gpubox/holds", "-mindepth", "1", "-user", demo.login)
    assert holds.returncode == 0 and holds.stdout.strip(), holds.stdout + holds.stderr
    released = runner(demo.home, "release", timeout=120)
    assert released.returncode == 0, released.stdout + released.stderr
    assert demo.ssh("find", "/var/lib/gpubox/holds", "-mindepth", "1", "-user", demo.login).stdout.strip() == ""


def run_logs(home: Path) -> list[str]:
    runs = Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "gpubox" / "runs"
    return sorted(path.name for path in runs.iterdir()) if runs.is_dir() else []


def test_autostop_one_minute_powers_the_workstation_off_without_an_ansible_run(demo):
    """`runner.py autostop 1` (the only workstation, no --name): the owner's wish reaches the root
    checker over SSH, with no Ansible run, and the idle host powers itself off about a minute later."""
    assert demo.first.returncode == 0
    container = f"gpubox-{demo.name}"
    before = run_logs(demo.home)
    assert before, "the provision left no run log to compare with"
    asked = runner(demo.home, "autostop", "1", timeout=120)
    assert asked.returncode == 0, asked.stdout + asked.stderr
    assert "1 min" in asked.stdout, asked.stdout
    started = time.monotonic()
    while time.monotonic() - started < 300 and status.container_state(container) == "running":
        time.sleep(2)
    stopped_after = time.monotonic() - started
    assert status.container_state(container) != "running", "still running 5 minutes after `autostop 1`:\n" + demo_diagnostics(demo.name)
    print(f"autostop 1: the workstation powered itself off {stopped_after:.0f} s after the verb")
    assert run_logs(demo.home) == before  # no ansible-playbook run: the wish is a file the checker reads


def test_start_stop_and_destroy_without_a_name(demo):
    assert demo.first.returncode == 0
    container = f"gpubox-{demo.name}"
    started = runner(demo.home, "start", timeout=300)
    assert started.returncode == 0 and status.container_state(container) == "running", started.stdout + started.stderr
    stopped = runner(demo.home, "stop", timeout=300)
    assert stopped.returncode == 0 and status.container_state(container) != "running", stopped.stdout + stopped.stderr
    gone = runner(demo.home, "destroy", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert not containers.exists(f"gpubox-{demo.name}")
    assert not (demo.home / ".ssh" / "gpubox" / f"gpubox-{demo.name}.conf").exists()


def demo_diagnostics(name: str) -> str:
    """What the host's systemd says about user managers and logins, for a failure message."""
    return subprocess.run(
        ["podman", "exec", f"gpubox-{name}", "sh", "-c",
         "systemctl list-jobs --no-pager; systemctl status --no-pager 'user@*' | tail -20; "
         "ls /var/lib/systemd/linger; journalctl -u ssh --no-pager | tail -10"],
        capture_output=True, text=True, check=False).stdout


def test_failed_run_names_host_task_and_log(home, fresh_debian12_host):
    host = fresh_debian12_host
    # A host where the login user lost sudo: the very first privileged step fails.
    assert host.exec("rm", "/etc/sudoers.d/90-cloud-init-users").returncode == 0
    broken = runner(home, "configure", "--host", "127.0.0.1", "--port", str(host.port), "--user", "admin",
                    "--key", str(host.key), "--name", "nosudo")
    assert broken.returncode == 1
    assert "failed on gpubox-nosudo at task 'Gathering Facts'" in broken.stderr
    assert "sudo" in broken.stderr  # the host's own words about what went wrong
    assert "Full log:" in broken.stderr and "Traceback" not in broken.stdout + broken.stderr


def jupyter_status(url: str, timeout: float = 30) -> int:
    """GET /api/status with the token from the printed URL, retrying while the tunnel comes up."""
    base, token = url.split("/lab?token=")
    deadline = time.monotonic() + timeout
    while True:
        request = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                json.loads(response.read())
                return response.status
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclasses.dataclass
class Tunnel:
    """A running `runner.py tunnel`: the URL it printed, and its further output line by line."""
    process: subprocess.Popen[str]
    lines: queue.Queue[str]
    seen: list[str]
    url: str = ""

    def next_line_with(self, words: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if words in line:
                return line
        raise AssertionError(f"runner.py tunnel never printed {words!r}; it printed: {''.join(self.seen)[-2000:]}")


@contextlib.contextmanager
def running_tunnel(home, name: str | None, verb: str = "tunnel", **environ: str) -> Iterator[Tunnel]:
    """`runner.py tunnel` (or notebook) on `name`; None: without --name (the only workstation)."""
    # Ctrl-C as a terminal delivers it: a suite started in the background (nohup ... &) hands its
    # children SIGINT ignored, and Python then never raises KeyboardInterrupt.
    process = subprocess.Popen([sys.executable, "runner.py", verb, *(["--name", name] if name else [])], cwd=PROJECT,
                               env=run_env(home) | environ,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    tunnel = Tunnel(process, lines, [])
    try:
        tunnel.url = tunnel.next_line_with("http://127.0.0.1:").strip()
        yield tunnel
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=15)


def check_tunnel(home, name: str | None) -> None:
    """runner.py tunnel: a clickable URL that works, a reconnect after the SSH connection drops,
    and a clean exit on Ctrl-C."""
    with running_tunnel(home, name) as tunnel:
        url = tunnel.url
        assert jupyter_status(url) == 200
        local_port = url.split(":")[2].split("/")[0]
        # Drop the SSH connection under the tunnel: it must come back by itself.
        subprocess.run(["pkill", "-f", f"127.0.0.1:{local_port}:{contract.JUPYTER_RUNTIME_ROOT}/"], check=True)
        tunnel.next_line_with("reconnecting")
        assert jupyter_status(url) == 200
        tunnel.process.send_signal(signal.SIGINT)
        tunnel.next_line_with("Tunnel closed.")
        assert tunnel.process.wait(timeout=15) == 0
