"""`runner.py notebook`: open the tunnel's URL in the user's browser once the tunnel is up.

Python's webbrowser picks the browser (the BROWSER variable first). Without a graphical session
it would start a text browser in this very terminal, over the tunnel's messages, so there the URL
is only printed; the same when no browser is found."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
import webbrowser
from collections.abc import Callable, Mapping
from typing import TextIO

NO_BROWSER = "No browser to open here: open the URL above in yours."


def graphical_session(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether opening a browser means a window rather than a text browser in this terminal."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    return platform in ("darwin", "win32") or any(environ.get(var) for var in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"))


def port_open(port: int, timeout: float, sleep: Callable[[float], None] = time.sleep) -> bool:
    """Whether 127.0.0.1:port accepts a connection within `timeout` seconds (the tunnel is up)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(0.3)


def _default_open(url: str) -> bool:
    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False


def open_when_up(url: str, port: int, out: TextIO, *, timeout: float = 60,
                 opener: Callable[[str], bool] = _default_open, graphical: bool | None = None) -> threading.Thread:
    """In the background: once the tunnel's local port answers, open the URL in a browser, or say
    to open it by hand. The thread is returned (started) so callers and tests can join it."""
    def run() -> None:
        if not (graphical_session() if graphical is None else graphical):
            print(NO_BROWSER, file=out, flush=True)
            return
        if not port_open(port, timeout):
            return  # the tunnel loop reports why it is not up
        if opener(url):
            print("Opened JupyterLab in your browser.", file=out, flush=True)
        else:
            print(NO_BROWSER, file=out, flush=True)

    thread = threading.Thread(target=run, name="gpubox-open-browser", daemon=True)
    thread.start()
    return thread
