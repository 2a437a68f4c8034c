"""Headless Chromium for tests: what a page shows (its rendered DOM as text) and a screenshot, and
a tab driven over the DevTools protocol for pages a user works in (JupyterLab).
Chromium comes from scripts/host-tools.sh (Debian package `chromium`); tests skip without it."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed; run `make host-tools`")
    return found


def _run(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", *flags, page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def shown_text(page: Path, profile: Path) -> str:
    """The page's text after Chromium rendered it, whitespace collapsed."""
    dom = _run(page, profile, "--dump-dom").stdout
    assert "<body" in dom, dom[:500]
    body = re.sub(r"(?s)<(style|script)\b.*?</\1>", " ", dom)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def screenshot(page: Path, profile: Path, png: Path) -> Path:
    _run(page, profile, "--window-size=1000,2200", f"--screenshot={png}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return png


class Page:
    """One Chromium tab driven over the DevTools protocol (a websocket; websocket-client is in
    requirements-dev.txt), as a user's browser would be: navigate, read the DOM, click, type."""

    def __init__(self, socket: websocket.WebSocket) -> None:
        self._socket = socket
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        sent = self._next_id
        self._socket.send(json.dumps({"id": sent, "method": method, "params": params}))
        while True:  # events arrive in between; only the answer to this call matters
            message = json.loads(self._socket.recv())
            if message.get("id") == sent:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError):  # a page still loading throws
                value = self.evaluate(expression)
                if value:
                    return value
            time.sleep(0.5)
        raise AssertionError(f"the page never showed {what} in {timeout:.0f}s; it shows: {self.text()[:1500]}")

    def text(self) -> str:
        with contextlib.suppress(AssertionError):
            return " ".join(str(self.evaluate("document.body ? document.body.innerText : ''")).split())
        return ""

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a user clicks."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def type(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def press(self, key: str, code: int, modifiers: int = 0) -> None:
        """A key press; modifiers: 8 is Shift."""
        for kind in ("rawKeyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code, modifiers=modifiers)

    def screenshot(self, png: Path) -> Path:
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        return png


@contextlib.contextmanager
def browser(profile: Path, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A headless Chromium with its DevTools port on loopback; its first tab."""
    profile.mkdir(parents=True, exist_ok=True)
    # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    process = subprocess.Popen([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it chose here
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None and time.monotonic() < deadline, "Chromium did not start its DevTools port"
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            tab = next(target for target in json.loads(answer.read()) if target["type"] == "page")
        # No Origin header: Chromium refuses DevTools connections from other origins.
        socket = websocket.create_connection(tab["webSocketDebuggerUrl"], timeout=120, suppress_origin=True)
        try:
            yield Page(socket)
        finally:
            socket.close()
    finally:
        # The whole group: Chromium's helpers (zygotes, crash handler) outlive a killed parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
