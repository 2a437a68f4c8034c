"""Headless Chromium for tests: what a page shows (its rendered DOM as text) and a screenshot.
Chromium comes from scripts/host-tools.sh (Debian package `chromium`); tests skip without it."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest


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
