"""Local systemd containers (podman) that stand in for an EC2 instance: the `--local` target
and the test hosts. A container gets the caller's public key for `admin`, like cloud-init
would, and publishes sshd on a 127.0.0.1 port so real OpenSSH clients can log in."""

from __future__ import annotations

import argparse
import fcntl
import json
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gpubox.errors import GpuboxError
from gpubox.paths import PROJECT_DIR

RELEASES = ("debian12", "debian13")
# Test hosts only: the smallest fresh Debian site.yml must converge on (see images/testhost/build.sh).
TEST_RELEASES = (*RELEASES, "debian12-minimal", "debian13-minimal")
BUILD_SCRIPT = PROJECT_DIR / "images" / "testhost" / "build.sh"
LOGIN_USER = "admin"
# A second published port, closed on the host, so tests can prove the firewall drops what arrives
# from outside the host on anything but SSH.
PROBE_PORT = 8080


@dataclass(frozen=True)
class Container:
    name: str
    address: str
    port: int
    user: str = LOGIN_USER
    probe_port: int = 0


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("podman") is None:
        raise GpuboxError("podman is not installed on this machine.", "Run `make host-tools` (Debian/Ubuntu, as root).")
    result = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise GpuboxError(
            f"`podman {' '.join(args[:2])}` failed: {result.stderr.strip() or result.stdout.strip()}",
            "Check `podman info`; on Debian hosts `make host-tools` writes the containers.conf podman needs.",
        )
    return result


def ensure_image(release: str) -> str:
    """Build (or reuse, when its recipe is unchanged) the image for a release; return its reference."""
    if release not in TEST_RELEASES:
        raise GpuboxError(f"Unknown release '{release}'.", f"Use one of: {', '.join(TEST_RELEASES)}.")
    # One build at a time: the suite's pytest and molecule streams may ask for the same image at
    # once. The lock is the build script's own file (not a new file in a shared directory; and
    # the script itself stays as it is, since its hash names the images).
    with open(BUILD_SCRIPT, "rb") as script:
        fcntl.flock(script, fcntl.LOCK_EX)
        result = subprocess.run(["bash", str(BUILD_SCRIPT), release], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise GpuboxError(
            f"Building the {release} image failed (see the messages above).",
            "Run `make host-tools` as root, then try again.",
        )
    return result.stdout.strip().splitlines()[-1]


def _published_port(name: str, port: int = 22) -> int:
    out = _podman("port", name, f"{port}/tcp").stdout.strip().splitlines()
    if not out:
        raise GpuboxError(f"Container {name} does not publish port {port}.", f"Remove it with `podman rm -f {name}` and start again.")
    return int(out[0].rsplit(":", 1)[1])


def _state(name: str) -> str | None:
    result = _podman("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def exists(name: str) -> bool:
    return _state(name) is not None


def install_login_key(name: str, public_key: str) -> None:
    """Add a public key to admin's authorized_keys, once (what cloud-init does on EC2)."""
    script = (
        'set -e; home=$(getent passwd "$LOGIN_USER" | cut -d: -f6); '
        'install -d -m 0700 -o "$LOGIN_USER" -g "$LOGIN_USER" "$home/.ssh"; '
        'f="$home/.ssh/authorized_keys"; touch "$f"; '
        'grep -qxF "$KEY" "$f" || printf "%s\\n" "$KEY" >>"$f"; '
        'chown "$LOGIN_USER:$LOGIN_USER" "$f"; chmod 0600 "$f"'
    )
    _podman("exec", "-e", f"KEY={public_key.strip()}", "-e", f"LOGIN_USER={LOGIN_USER}", name, "sh", "-c", script)


def wait_for_ssh(address: str, port: int, timeout: float = 90.0) -> None:
    """Wait until sshd answers with its banner, not merely until the port accepts."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=3) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
                last_error = "no SSH banner"
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.5)
    raise GpuboxError(
        f"SSH on {address}:{port} did not answer within {timeout:.0f}s ({last_error}).",
        "Look at the container's boot log with `podman logs NAME`.",
    )


def start(name: str, release: str, public_key: str, *, label: str = "testhost", image: str = "") -> Container:
    """Start (or reuse) a systemd container with sshd published on 127.0.0.1 (from `image`, a baked
    one, when given; else the release's test-host image)."""
    state = _state(name)
    if state is None:
        image = image or ensure_image(release)
        _podman(
            "run", "--detach", "--name", name, "--hostname", name,
            "--systemd=always", "--stop-signal", "SIGRTMIN+3",
            "--label", f"gpubox={label}", "--label", f"gpubox.release={release}",
            "--publish", "127.0.0.1::22", "--publish", f"127.0.0.1::{PROBE_PORT}",
            # The firewall and fail2ban need nftables in the container's own network namespace;
            # NET_ADMIN there touches nothing of this machine's (never --privileged).
            "--cap-add", "NET_ADMIN",
            image,
        )
    elif state != "running":
        _podman("start", name)
    port = _published_port(name)
    install_login_key(name, public_key)
    wait_for_ssh("127.0.0.1", port)
    return Container(name=name, address="127.0.0.1", port=port, probe_port=_published_port(name, PROBE_PORT))


def remove(name: str) -> bool:
    """Remove a container and its data; True when there was one."""
    if _state(name) is None:
        return False
    _podman("rm", "--force", "--time", "0", name)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m gpubox.containers up|down|image ...`, used by molecule and the Makefile."""
    parser = argparse.ArgumentParser(prog="python -m gpubox.containers", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a test host and print its connection details as JSON")
    up.add_argument("name")
    up.add_argument("--release", choices=TEST_RELEASES, default="debian12")
    up.add_argument("--public-key", type=Path, required=True, help="public key file admin may log in with")
    up.add_argument("--image", default="", help="start from this image (a baked one) instead of the release's")
    down = sub.add_parser("down", help="remove test hosts")
    down.add_argument("names", nargs="+")
    image = sub.add_parser("image", help="build (or reuse) the image for releases")
    image.add_argument("releases", nargs="+", choices=TEST_RELEASES)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            container = start(args.name, args.release, args.public_key.read_text(), image=args.image)
            print(json.dumps(asdict(container)))
        elif args.command == "down":
            for name in args.names:
                remove(name)
        else:
            for release in args.releases:
                print(ensure_image(release))
    except GpuboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
