"""runner.py notebook's browser step (gpubox.opener): the browser opens only once the tunnel's
port answers, and the user is told to open the URL themselves when there is no browser to open."""

from __future__ import annotations

import io
import socket

import pytest

from gpubox import opener

URL = "http://127.0.0.1:8801/lab?token=t"


def test_the_browser_opens_once_the_tunnel_port_answers():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        opened: list[str] = []
        out = io.StringIO()

        def opener_fake(url: str) -> bool:
            opened.append(url)
            return True

        thread = opener.open_when_up(URL, port, out, opener=opener_fake, graphical=True, timeout=30)
        thread.join(timeout=1.5)
        assert thread.is_alive() and opened == []  # nothing listens yet: no browser on a dead URL
        sock.listen()
        thread.join(timeout=30)
    assert opened == [URL] and "Opened JupyterLab in your browser." in out.getvalue()


def test_no_browser_found_prints_what_to_do():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        out = io.StringIO()
        opener.open_when_up(URL, sock.getsockname()[1], out, opener=lambda url: False, graphical=True).join(timeout=30)
    assert out.getvalue().strip() == opener.NO_BROWSER


def test_no_graphical_session_never_starts_a_browser():
    out = io.StringIO()
    calls: list[str] = []
    opener.open_when_up(URL, 1, out, opener=lambda url: calls.append(url) or True, graphical=False).join(timeout=5)
    assert calls == [] and out.getvalue().strip() == opener.NO_BROWSER


def test_a_tunnel_that_never_comes_up_opens_nothing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        out = io.StringIO()
        calls: list[str] = []
        opener.open_when_up(URL, port, out, opener=lambda url: calls.append(url) or True, graphical=True,
                            timeout=1).join(timeout=10)
    assert calls == [] and out.getvalue() == ""


@pytest.mark.parametrize(("environ", "platform", "expected"), [
    ({}, "linux", False),                       # an SSH session on a server: a text browser would take the terminal
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"BROWSER": "firefox"}, "linux", True),   # the user said which
    ({"DISPLAY": ""}, "linux", False),
    ({}, "darwin", True),
    ({}, "win32", True),
])
def test_graphical_session(environ, platform, expected):
    assert opener.graphical_session(environ, platform) is expected


def test_the_default_opener_uses_pythons_webbrowser(monkeypatch):
    seen = []
    monkeypatch.setattr(opener.webbrowser, "open", lambda url, new=0: seen.append((url, new)) or True)
    assert opener._default_open(URL) is True and seen == [(URL, 2)]

    def broken(url, new=0):
        raise opener.webbrowser.Error("could not locate runnable browser")

    monkeypatch.setattr(opener.webbrowser, "open", broken)
    assert opener._default_open(URL) is False
