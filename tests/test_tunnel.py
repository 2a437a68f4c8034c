"""runner.py tunnel's pieces that need no workstation: port choice, the forward to the user's
socket, the endpoint read over SSH, and giving up on a tunnel that cannot start (the end-to-end tunnel, with a real drop and reconnect, is in test_demo.py)."""

from __future__ import annotations

import io
import socket
import subprocess

import pytest

from gpubox import listener, tunnel
from gpubox.errors import GpuboxError


def test_local_port_is_the_remote_one_when_free():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert tunnel.pick_local_port(free) == free


def test_local_port_moves_when_the_remote_one_is_taken_here():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        chosen = tunnel.pick_local_port(busy)
        assert chosen != busy and chosen > 0


def test_a_tunnel_that_never_starts_gives_up_with_advice():
    out = io.StringIO()
    started = []

    def start(argv):
        started.append(argv)
        return subprocess.Popen(["false"])

    endpoint = tunnel.Endpoint(user="alice", preferred_port=8801, token="secret-token")
    with pytest.raises(GpuboxError, match="keeps failing") as error:
        tunnel.keep_tunnel("gpubox-x", endpoint, 18801, out, retry_delay=0, start=start, verify=lambda: None)
    assert "ssh gpubox-x" in error.value.fix
    assert len(started) == 5 and out.getvalue().count("reconnecting") == 4
    # the local port forwards to the user's Unix socket on the workstation, never to a TCP port there
    assert started[0][0] == "ssh" and "-N" in started[0] and "127.0.0.1:18801:/run/gpubox/jupyter/alice/jupyter.sock" in started[0]
    assert ["-l", "alice"] == started[0][-3:-1] and "secret-token" not in " ".join(started[0])


def test_a_reconnect_to_a_socket_that_is_not_theirs_ends_the_tunnel():
    out = io.StringIO()
    started = []
    checks = []

    def start(argv):
        started.append(argv)
        return subprocess.Popen(["false"])

    def verify():
        checks.append(1)
        raise listener.SocketNotTheirs("/run/gpubox/jupyter/alice is not a private directory of alice", "tell IT")

    endpoint = tunnel.Endpoint(user="alice", preferred_port=8801, token="secret-token")
    with pytest.raises(listener.SocketNotTheirs):
        tunnel.keep_tunnel("gpubox-x", endpoint, 18801, out, retry_delay=0, start=start, verify=verify)
    # the first connection was proven by jupyter_endpoint; the reconnect is checked and refused
    assert len(started) == 1 and checks == [1]


def test_a_reconnect_waits_for_a_server_that_is_not_back_yet():
    out = io.StringIO()
    started = []
    answers = [listener.NothingListens("not running", "wait"), None]

    def start(argv):
        started.append(argv)
        if len(started) == 2:
            raise KeyboardInterrupt  # the user ends the second, healthy tunnel
        return subprocess.Popen(["false"])

    def verify():
        answer = answers.pop(0)
        if answer:
            raise answer

    endpoint = tunnel.Endpoint(user="alice", preferred_port=8801, token="secret-token")
    with pytest.raises(KeyboardInterrupt):
        tunnel.keep_tunnel("gpubox-x", endpoint, 18801, out, retry_delay=0, start=start, verify=verify)
    assert len(started) == 2 and answers == [] and "not running" in out.getvalue()


def test_a_server_still_starting_is_waited_for(monkeypatch):
    answers = [listener.NothingListens("not running", "wait")] * 2 + [tunnel.Endpoint("alice", 8801, "t")]
    slept = []

    def endpoint(alias, user):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(tunnel, "jupyter_endpoint", endpoint)
    assert tunnel.jupyter_endpoint_when_up("gpubox-x", None, sleep=slept.append).user == "alice"
    assert slept == [2.0, 2.0]


def test_a_server_that_never_comes_up_and_a_socket_not_theirs_are_reported(monkeypatch):
    monkeypatch.setattr(tunnel, "jupyter_endpoint", lambda alias, user: (_ for _ in ()).throw(listener.NothingListens("down", "wait")))
    with pytest.raises(listener.NothingListens):
        tunnel.jupyter_endpoint_when_up("gpubox-x", None, attempts=3, sleep=lambda _: None)
    calls = []

    def squatted(alias, user):
        calls.append(alias)
        raise listener.SocketNotTheirs("not theirs", "tell IT")

    monkeypatch.setattr(tunnel, "jupyter_endpoint", squatted)
    with pytest.raises(listener.SocketNotTheirs):
        tunnel.jupyter_endpoint_when_up("gpubox-x", None, sleep=lambda _: None)
    assert calls == ["gpubox-x"]  # refused at once, not waited out


def test_the_endpoint_is_read_over_ssh_and_checked(monkeypatch):
    """jupyter_endpoint's one SSH round trip: user, token, settings and the socket's facts."""
    replies = {"ok": "alice\ntoken-x\nGPUBOX_JUPYTER_PORT=8801\n--gpubox-socket--\n1001\n1001 1700 directory\n1001 600 socket\n",
               "down": "alice\ntoken-x\nGPUBOX_JUPYTER_PORT=8801\n--gpubox-socket--\n1001\nmissing\nmissing\n",
               "foreign": "alice\ntoken-x\nGPUBOX_JUPYTER_PORT=8801\n--gpubox-socket--\n1001\n0 755 directory\n0 666 socket\n"}
    commands = []

    def fake_run(argv, **kwargs):
        commands.append(argv[-1])
        return subprocess.CompletedProcess(argv, 0, stdout=replies[reply], stderr="")

    monkeypatch.setattr(tunnel.subprocess, "run", fake_run)
    reply = "ok"
    endpoint = tunnel.jupyter_endpoint("gpubox-x", None)
    assert endpoint == tunnel.Endpoint("alice", 8801, "token-x")
    assert endpoint.socket == "/run/gpubox/jupyter/alice/jupyter.sock"
    assert listener.REMOTE_COMMAND in commands[0] and "/proc/net/tcp" not in commands[0]
    reply = "down"
    with pytest.raises(listener.NothingListens):
        tunnel.jupyter_endpoint("gpubox-x", None)
    reply = "foreign"
    with pytest.raises(listener.SocketNotTheirs):
        tunnel.jupyter_endpoint("gpubox-x", None)
