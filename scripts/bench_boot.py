#!/usr/bin/env python3
"""`make bench` (second part): how long a data scientist waits for a local workstation, fresh and
from a baked image: from `provision --local` to a working `ssh gpubox-NAME` and to the tunnel's
JupyterLab URL answering 200. The baked image is built first if missing (not timed as a start).

A benchmark, not a test: the figures go into notes; it fails only when a workstation does not come up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from gpubox import bake, containers  # noqa: E402

URL_SECONDS = 300


def runner(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          check=False, stdin=subprocess.DEVNULL, **kwargs)


def until_url_answers(env: dict[str, str], name: str) -> None:
    """Open the tunnel as a data scientist would and wait for JupyterLab to answer 200 through it."""
    tunnel = subprocess.Popen([sys.executable, "runner.py", "tunnel", "--name", name], cwd=PROJECT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + URL_SECONDS
        url = ""
        assert tunnel.stdout is not None
        while not url:
            line = tunnel.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise SystemExit(f"bench: no tunnel URL for {name}")
            url = line.strip() if line.strip().startswith("http://127.0.0.1:") else ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise SystemExit(f"bench: {url.split('?')[0]} did not answer 200 within {URL_SECONDS}s")
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=30)


def one(release: str, image: str, home: Path) -> tuple[float, float, float]:
    """Seconds to the end of provision, to a working ssh, and to the URL answering 200."""
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("ANSIBLE_CONFIG", None)
    name = f"bench{'b' if image else 'f'}{uuid.uuid4().hex[:5]}"
    started = time.monotonic()
    try:
        made = runner(env, "provision", "--local", "--name", name, "--release", release, *(["--image", image] if image else []))
        if made.returncode != 0:
            raise SystemExit(f"bench: provision failed:\n{made.stdout[-3000:]}{made.stderr[-2000:]}")
        provisioned = time.monotonic() - started
        while subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                              f"gpubox-{name}", "true"], capture_output=True, check=False, stdin=subprocess.DEVNULL).returncode:
            time.sleep(0.2)
        logged_in = time.monotonic() - started
        until_url_answers(env, name)
        return provisioned, logged_in, time.monotonic() - started
    finally:
        containers.remove(f"gpubox-{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--release", choices=containers.RELEASES, default="debian12")
    parser.add_argument("--image", default=os.environ.get("BENCH_IMAGE", "bench"), help="the baked image's name")
    parser.add_argument("--skip-fresh", action="store_true", help="only the start from a baked image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpubox-bench-boot-") as folder:
        home = Path(folder)
        built = time.monotonic()
        bake.ensure_local(args.image, args.release, sys.stderr)
        print(f"baked image {bake.local_ref(args.image)} ready in {time.monotonic() - built:.0f}s (0 when reused)", flush=True)
        print(f"\n{'start':<8}{'provision':>12}{'ssh works':>12}{'URL 200':>12}", flush=True)
        for label, image in [("baked", args.image)] + ([] if args.skip_fresh else [("fresh", "")]):
            provisioned, logged_in, answered = one(args.release, image, home)
            print(f"{label:<8}{provisioned:>11.1f}s{logged_in:>11.1f}s{answered:>11.1f}s", flush=True)


if __name__ == "__main__":
    main()
