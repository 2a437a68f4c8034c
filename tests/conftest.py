"""Shared fixtures: an isolated HOME per test, and real systemd test hosts (podman) reached
over real SSH, as the data scientist's laptop reaches a workstation."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpubox import containers
from gpubox.cloud import aws

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME, so no test reads or writes the real ~/.ssh or ~/.local/state."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return home


def run_env(home: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_NOCOLOR"] = "1"
    env.pop("ANSIBLE_CONFIG", None)
    if home is not None:
        env["HOME"] = str(home)
    return env


@contextlib.contextmanager
def moto_server(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """AWS played by moto in server mode on 127.0.0.1 (extra_env: e.g. MOTO_AMIS_PATH, its images)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                              env={**os.environ, **(extra_env or {})})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.2)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_endpoint():
    """AWS played by moto in server mode on 127.0.0.1, one per test module (its state is shared within one)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, home, monkeypatch) -> dict[str, str]:
    """boto3 in this process and runner.py in a child both talk to moto, never to AWS."""
    settings = {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return dict(run_env(home), **settings)


class TestHost:
    """A running test host: its container name, SSH port and admin's key."""

    def __init__(self, name: str, port: int, key: Path) -> None:
        self.name = name
        self.port = port
        self.key = key

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", "exec", self.name, *command], capture_output=True, text=True, check=False)

    def inventory(self, path: Path) -> Path:
        path.write_text(
            "gpu_workstations:\n  hosts:\n"
            f"    {self.name}:\n"
            "      ansible_host: 127.0.0.1\n"
            f"      ansible_port: {self.port}\n"
            "      ansible_user: admin\n"
            f"      ansible_private_key_file: {self.key}\n"
            "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
        )
        return path

    def fingerprint(self) -> str:
        """A digest of everything a role could change: files under /etc, /usr/local and /home, and
        packages. Logging in and using sudo leave marks of their own, which are left out."""
        listing = self.exec(
            "sh", "-c",
            "find /etc /usr/local /home -xdev ! -name .sudo_as_admin_successful ! -path '*/.ansible*' "
            "\\( -type d -printf '%p %m %u\\n' -o -printf '%p %s %T@ %m %u\\n' \\) | sort; "
            "dpkg-query -W -f '${Package} ${Version}\\n'",
        )
        assert listing.returncode == 0, listing.stderr
        return hashlib.sha256(listing.stdout.encode()).hexdigest()


def _start_host(tmp_path_factory: pytest.TempPathFactory, release: str, image: str = "") -> TestHost:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed; run `make host-tools`")
    key = tmp_path_factory.mktemp("keys") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"gpubox-pytest-{release}-{uuid.uuid4().hex[:6]}"
    started = containers.start(name, release, key.with_suffix(".pub").read_text(), image=image)
    return TestHost(name, started.port, key)


@pytest.fixture(scope="session")
def debian12_host(tmp_path_factory: pytest.TempPathFactory):
    host = _start_host(tmp_path_factory, "debian12")
    yield host
    containers.remove(host.name)


@pytest.fixture(scope="module")
def untouched_debian12_host(tmp_path_factory: pytest.TempPathFactory):
    """A host no role has touched yet, shared by one test module."""
    host = _start_host(tmp_path_factory, "debian12")
    yield host
    containers.remove(host.name)


@pytest.fixture(scope="module")
def untouched_debian13_host(tmp_path_factory: pytest.TempPathFactory):
    host = _start_host(tmp_path_factory, "debian13")
    yield host
    containers.remove(host.name)


@pytest.fixture
def fresh_debian12_host(tmp_path_factory: pytest.TempPathFactory):
    host = _start_host(tmp_path_factory, "debian12")
    yield host
    containers.remove(host.name)


@pytest.fixture(scope="session")
def baked_debian12(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The suite's baked debian12 image (gpubox/bake.py): built once per change of the roles, then
    reused by every later run, like the test-host images are by their recipe's hash. Its name."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed; run `make host-tools`")
    from gpubox import bake  # noqa: PLC0415  (only the tests that use the image need Ansible's side)

    key = tmp_path_factory.mktemp("bake-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    bake.ensure_local("pytest-debian12", "debian12", sys.stderr, key=key)
    return "pytest-debian12"


@pytest.fixture(scope="module")
def baked_debian12_host(baked_debian12: str, tmp_path_factory: pytest.TempPathFactory):
    """A host started from the suite's baked image, for a test not about a first run: everything
    site.yml installs is there; what is per machine (users, tokens) is not done yet."""
    from gpubox import bake  # noqa: PLC0415

    host = _start_host(tmp_path_factory, "debian12", image=bake.local_ref(baked_debian12))
    yield host
    containers.remove(host.name)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict]]:
    """Every AWS call gpubox makes in this process, with its parameters, as botocore sends them."""
    calls: list[tuple[str, dict]] = []
    made = aws.client

    def recording(service: str, region: str | None):
        real = made(service, region)
        real.meta.events.register("provide-client-params.*.*", lambda params, model, **kw: calls.append((model.name, dict(params))))
        return real
    monkeypatch.setattr(aws, "client", recording)
    return calls


@pytest.fixture
def checkip(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This machine's "public address" as a local stand-in for checkip.amazonaws.com answers it
    (198.51.100.7); GPUBOX_CHECKIP_URL points provision and doctor at it, here and in children."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's name)
            body = b"198.51.100.7\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("GPUBOX_CHECKIP_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
