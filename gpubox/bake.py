"""Baked images: site.yml run once into an image, so a workstation started from it only does the
work that is its own (users, keys, Jupyter tokens, host name).

A build converges a builder with no data scientists, verifies it (the TensorFlow smoke test's
report; ssh-audit and Lynis where installed), cleans it with playbooks/bake.yml and snapshots it:
`podman commit` locally, an AMI on EC2 (gpubox/commands/image.py). The image carries what it
proves as labels or tags, and a digest of the roles it was made from: a workstation started from
an image of other roles is converged in full, not just per instance.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from gpubox import ansible, containers, contract, ssh, workstation
from gpubox.errors import GpuboxError
from gpubox.paths import PROJECT_DIR

CLEAN = "playbooks/bake.yml"
# What a workstation's configuration is made from: a change to any of them makes a new image.
INPUTS = ("site.yml", "playbooks", "roles", "group_vars", "ansible.cfg", "collections/ansible_collections/gpubox")
# The tags of site.yml that are a workstation's own, not the image's: its data scientists and their
# keys (ssh_access), their Jupyter servers and tokens (jupyter_services), its host keys' sshd
# settings (hardening_ssh), its host name and clock (base_time), and autostop's per-instance
# settings and the configured marker that stands the dead-man's switch down (autostop).
PER_INSTANCE_TAGS = "ssh_access,jupyter_services,hardening_ssh,base_time,autostop"
LOCAL_REPOSITORY = "localhost/gpubox-baked"
DOCUMENTATION = ("README.md", "CHANGELOG.md")
LABEL = "gpubox.baked"


def roles_digest(root: Path = PROJECT_DIR) -> str:
    """A digest of every file site.yml is made from (names and contents, not its READMEs), 12 hex digits."""
    digest = hashlib.sha256()
    for entry in INPUTS:
        path = root / entry
        files = sorted(item for item in path.rglob("*") if item.is_file()) if path.is_dir() else [path] if path.is_file() else []
        for item in files:
            # Documentation changes no host: a README edit must not make every baked image stale.
            if "__pycache__" in item.parts or item.suffix == ".pyc" or item.name in DOCUMENTATION:
                continue
            digest.update(str(item.relative_to(root)).encode() + b"\0" + item.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def commit() -> str:
    """The project's git commit (with '+' when the work tree has changes), or 'unknown'."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    head = git("rev-parse", "--short=12", "HEAD")
    if head.returncode != 0:
        return "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + ("+" if dirty else "")


@dataclass(frozen=True)
class Proof:
    """What the builder proved, for the image's labels (locally) or tags (AMI)."""

    tensorflow: str
    driver: str
    gpus: str
    smoke_test: str
    audit: str

    def labels(self) -> dict[str, str]:
        return {"tensorflow": self.tensorflow, "driver": self.driver, "gpus": self.gpus, "smoke-test": self.smoke_test,
                "audit": self.audit}


def metadata(proof: Proof, base: str) -> dict[str, str]:
    """Every label/tag a baked image carries (keys without the gpubox: prefix)."""
    return {"version": commit(), "roles": roles_digest(), "base": base, **proof.labels()}


def read_report(text: str) -> dict:
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise GpuboxError("The builder has no readable TensorFlow report; the converge did not finish.",
                          "Look at the converge's log above; nothing was imaged.") from exc
    if not report.get("ok"):
        raise GpuboxError(f"The builder's TensorFlow smoke test failed: {report.get('error') or report}",
                          "Fix the cause and build again; nothing was imaged.")
    return report


def audit(remote: list[str], address: str, port: int) -> str:
    """Lynis's hardening index (on the builder) and ssh-audit's findings (from here), where installed.

    `remote` runs a shell command on the builder (ssh or podman exec) and returns its output."""
    figures = []
    lynis = subprocess.run([*remote, "command -v lynis >/dev/null && sudo -n lynis audit system --quick --no-colors "
                            "| sed -n 's/.*Hardening index : \\([0-9]*\\).*/\\1/p'"],
                           capture_output=True, text=True, check=False, timeout=900, stdin=subprocess.DEVNULL)
    index = lynis.stdout.strip()
    figures.append(f"lynis {index}" if index.isdigit() else "lynis not installed")
    if shutil.which("ssh-audit"):
        result = subprocess.run(["ssh-audit", "-p", str(port), address], capture_output=True, text=True, check=False, timeout=120)
        fails = result.stdout.count("(fail)") + result.stdout.count("[fail]")
        warns = result.stdout.count("(warn)") + result.stdout.count("[warn]")
        figures.append(f"ssh-audit {fails} fail {warns} warn")
    else:
        figures.append("ssh-audit not installed")
    return ", ".join(figures)


def verify(remote: list[str], address: str, port: int) -> Proof:
    """The converged builder's proof: its smoke test passed, and the audit figures."""
    text = subprocess.run([*remote, f"cat {contract.REPORT_PATH}"], capture_output=True, text=True, check=False,
                          timeout=60, stdin=subprocess.DEVNULL).stdout
    report = read_report(text)
    return Proof(tensorflow=str(report.get("tensorflow", {}).get("version", "?")),
                 driver=str(report.get("inputs", {}).get("driver") or "none"),
                 gpus=str(len(report.get("gpus", []))),
                 smoke_test=f"{report.get('matmul', {}).get('gflops', '?')} GFLOP/s",
                 audit=audit(remote, address, port))


def clean_inventory(host: str, variables: dict[str, object]) -> dict:
    return {"all": {"children": {ansible.GROUP: {"hosts": {host: variables}}}}}


def clean(inventory: dict, login_user: str, out: TextIO) -> None:
    """Run playbooks/bake.yml against the one builder of the inventory."""
    with tempfile.TemporaryDirectory(prefix="gpubox-bake-") as folder:
        path = Path(folder) / "inventory.json"
        path.write_text(json.dumps(inventory))
        result = subprocess.run([ansible._bin("ansible-playbook"), "-i", str(path), "-e", f"bake_login_user={login_user}", CLEAN],
                                cwd=PROJECT_DIR, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    recap = [line for line in result.stdout.splitlines() if " : ok=" in line]
    print(f"Cleaned for imaging (playbooks/bake.yml): {recap[-1].split(':', 1)[-1].strip() if recap else 'no recap'}",
          file=out, flush=True)
    if result.returncode != 0:
        raise GpuboxError(f"Cleaning the builder failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}",
                          "Nothing was imaged; fix the cause and build again.")


def local_ref(name: str) -> str:
    return f"{LOCAL_REPOSITORY}:{name}"


@dataclass(frozen=True)
class LocalImage:
    ref: str
    labels: dict[str, str]

    @property
    def current(self) -> bool:
        """Made from the roles as they are now."""
        return self.labels.get(f"{LABEL}.roles") == roles_digest()


def local_image(name: str) -> LocalImage | None:
    """The baked local image NAME (a full reference is taken as is), or None."""
    ref = name if "/" in name or ":" in name else local_ref(name)
    result = subprocess.run(["podman", "image", "inspect", "--format", "{{json .Labels}}", ref],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    labels = json.loads(result.stdout or "{}") or {}
    if labels.get(LABEL) != "true":
        raise GpuboxError(f"Image {ref} is not a gpubox baked image.",
                          "Build one with `python runner.py image build --local --name NAME`.", exit_code=2)
    return LocalImage(ref, labels)


def build_local(name: str, release: str, out: TextIO, *, key: Path | None = None) -> LocalImage:
    """Converge a builder container with no data scientists, verify, clean and commit it as NAME."""
    login_key = ssh.ensure_key(key)
    builder = f"gpubox-bake-{name}"
    containers.remove(builder)  # a builder left by an interrupted build is of no use
    print(f"Starting builder {builder} ({release})...", file=out, flush=True)
    try:
        started = containers.start(builder, release, ssh.public_key(login_key), label="bake")
        reached = ssh.Connection(alias=builder, address=started.address, port=started.port, user=started.user, key=login_key)
        ssh.forget_host_key(builder)
        print(f"Converging {builder} with site.yml, no data scientists", file=out, flush=True)
        run = ansible.run_playbook(workstation.SITE, [reached], extravars=workstation.local_extravars(), label=builder, out=out)
        if not run.ok:
            first = run.failures[0]
            raise GpuboxError(f"Converging the builder failed at '{first.task}': {first.message}", f"Full log: {run.log_path}")
        proof = verify(["podman", "exec", builder, "sh", "-c"], started.address, started.port)
        print(f"Verified: TensorFlow {proof.tensorflow}, driver {proof.driver}, {proof.smoke_test}; {proof.audit}",
              file=out, flush=True)
        # Through podman, not SSH: a login during the clean would leave its own marks (wtmp, journal).
        clean(clean_inventory(builder, {"ansible_connection": "containers.podman.podman"}), started.user, out)
        labels = {LABEL: "true", f"{LABEL}.release": release, **{f"{LABEL}.{key}": value for key, value in
                                    metadata(proof, containers.ensure_image(release)).items()}}
        changes = [item for key, value in labels.items() for item in ("--change", f"LABEL {key}={json.dumps(value)}")]
        digest_ref = f"{local_ref(name)}-{labels[f'{LABEL}.roles']}"
        subprocess.run(["podman", "commit", "--quiet", *changes, builder, digest_ref], capture_output=True, text=True, check=True)
        subprocess.run(["podman", "tag", digest_ref, local_ref(name)], capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise GpuboxError(f"podman commit failed: {exc.stderr.strip()}", "Check `podman info` and the disk space.") from exc
    finally:
        containers.remove(builder)
        ssh.forget_host_key(builder)
    print(f"Baked {local_ref(name)} ({digest_ref})", file=out, flush=True)
    _remove_older(name, digest_ref)
    return LocalImage(local_ref(name), labels)


def provision_tags(image_roles: str, out: TextIO, what: str) -> str | None:
    """The tags a workstation started from a baked image is converged with: only its per-instance
    work, unless the image was made from other roles than these (then all of site.yml)."""
    if image_roles == roles_digest():
        print(f"{what} is baked from these roles: only per-instance work runs (users, keys, Jupyter tokens, host name, "
              f"autostop; tags {PER_INSTANCE_TAGS}).", file=out, flush=True)
        return PER_INSTANCE_TAGS
    print(f"{what} was baked from other roles ({image_roles or 'unknown'}; these are {roles_digest()}): all of site.yml runs.",
          file=out, flush=True)
    return None


def local_lines() -> list[str]:
    """`image list --local`: one line per baked local image."""
    result = subprocess.run(["podman", "images", "--filter", f"label={LABEL}=true", "--format",
                             "{{.Repository}}:{{.Tag}}\t{{.Created}}"], capture_output=True, text=True, check=False)
    lines = []
    for row in sorted(set(result.stdout.splitlines())):
        ref, _, created = row.partition("\t")
        found = local_image(ref)
        if found:
            labels = found.labels
            lines.append(f"{ref}  {created}  TensorFlow {labels.get(f'{LABEL}.tensorflow', '?')}, gpubox "
                         f"{labels.get(f'{LABEL}.version', '?')}, roles {labels.get(f'{LABEL}.roles', '?')}"
                         f"{'' if found.current else ' (older roles: provision runs all of site.yml)'}")
    return lines or ["No baked local images; `python runner.py image build --local --name NAME` makes one."]


def _remove_older(name: str, keep: str) -> None:
    """Images of NAME from older roles are of no further use (one still used by a container stays)."""
    listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True,
                            check=False)
    pattern = re.compile(rf"^{re.escape(local_ref(name))}-[0-9a-f]{{12}}$")
    for ref in sorted(set(listed.stdout.split())):
        if pattern.match(ref) and ref != keep:
            subprocess.run(["podman", "rmi", ref], capture_output=True, text=True, check=False)


def ensure_local(name: str, release: str, out: TextIO, *, key: Path | None = None) -> LocalImage:
    """The baked local image NAME, built only when missing or made from other roles (the test
    suite's cache: one build per change of the roles, reused by every later run). The suite's two
    streams (pytest and molecule) may ask at once: the second waits for the first's build and
    reuses it, instead of removing its builder (both builders have the same name)."""
    # The lock is this module's own file: one per checkout, nothing created in a shared directory.
    with open(__file__, "rb") as this_module:
        fcntl.flock(this_module, fcntl.LOCK_EX)
        found = local_image(name)
        if found and found.current and found.labels.get(f"{LABEL}.release", release) == release:
            print(f"Reusing {found.ref} (baked from these roles, {roles_digest()})", file=out, flush=True)
            return found
        return build_local(name, release, out, key=key)


def main(argv: list[str] | None = None) -> int:
    """`python -m gpubox.bake ensure NAME --release R`: the test suite's baked image (built once per
    change of the roles); prints its reference."""
    parser = argparse.ArgumentParser(prog="python -m gpubox.bake", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ensure = sub.add_parser("ensure", help="build the baked local image NAME unless it is current; print its reference")
    ensure.add_argument("name")
    ensure.add_argument("--release", choices=containers.RELEASES, default="debian12")
    ensure.add_argument("--key", type=Path, help="private key the builder is reached with (default: a new one)")
    args = parser.parse_args(argv)
    # Called from molecule, whose own ansible.cfg is for its scenario: the image is made as runner.py makes workstations.
    os.environ["ANSIBLE_CONFIG"] = str(PROJECT_DIR / "ansible.cfg")
    try:
        with tempfile.TemporaryDirectory(prefix="gpubox-bake-key-") as folder:
            key = args.key
            if key is None:  # a throw-away key: the image keeps no key of anyone's
                key = Path(folder) / "id_ed25519"
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            print(ensure_local(args.name, args.release, sys.stderr, key=key).ref)
    except GpuboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
