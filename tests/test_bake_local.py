"""A baked local image (`image build --local`) and workstations started from it: nothing per-machine,
secret or personal is in the image, and each workstation makes its own on first boot."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import pytest

from conftest import PROJECT, run_env
from gpubox import bake, contract

pytestmark = pytest.mark.integration


def _filesystem(ref: str) -> tarfile.TarFile:
    """The image's whole filesystem, as `podman export` writes it (never started: nothing made at boot)."""
    name = f"gpubox-pytest-export-{uuid.uuid4().hex[:6]}"
    subprocess.run(["podman", "create", "--name", name, ref], check=True, capture_output=True)
    try:
        exported = subprocess.run(["podman", "export", name], check=True, capture_output=True).stdout
    finally:
        subprocess.run(["podman", "rm", "--force", name], check=False, capture_output=True)
    return tarfile.open(fileobj=io.BytesIO(exported))


def test_the_image_carries_nothing_per_machine_secret_or_personal(baked_debian12):
    found = bake.local_image(baked_debian12)
    assert found is not None and found.current
    labels = found.labels
    assert labels[f"{bake.LABEL}.tensorflow"] == "2.20.0" and labels[f"{bake.LABEL}.roles"] == bake.roles_digest()
    assert labels[f"{bake.LABEL}.base"].startswith("localhost/gpubox-testhost:debian12")
    with _filesystem(found.ref) as image:
        members = {"/" + member.name.lstrip("./"): member for member in image.getmembers()}
        names = sorted(members)
        assert "/opt/gpubox/venv/bin/python" in names and "/etc/ssh/sshd_config" in names  # a converged host, exported
        leftovers = [name for name in names if re.search(
            r"^/etc/ssh/ssh_host_|_history$|/\.lesshst$|/jupyter-token$|/authorized_keys$|/known_hosts$|/\.ansible(/|$)"
            r"|^/var/lib/apt/lists/[^/]+$|^/var/log/journal/.|^/var/lib/systemd/random-seed$"
            r"|^/var/lib/systemd/credential\.secret$|^/var/lib/systemd/timers/stamp-"
            r"|^/var/lib/gpubox/(configured|holds/.|autostop/(status|state)\.json)$|^/var/lib/fail2ban/fail2ban\.sqlite3$", name)
            and not members[name].isdir()]
        assert leftovers == []
        homes = sorted({name.split("/")[2] for name in names if name.startswith("/home/") and name.count("/") >= 2})
        assert homes == ["admin"]
        logs = [name for name in names if name.startswith("/var/log/") and members[name].isfile() and members[name].size > 0]
        assert logs == []
        assert members["/etc/machine-id"].size == 0
        accounts = image.extractfile(members["/etc/passwd"]).read().decode()
        people = [line.split(":")[0] for line in accounts.splitlines() if 1000 <= int(line.split(":")[2]) < 60000]
        assert people == ["admin"]
        assert "/etc/systemd/system/multi-user.target.wants/gpubox-host-keys.service" in names


def runner(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=1200, check=False, stdin=subprocess.DEVNULL)


def _on(name: str, *command: str) -> str:
    result = subprocess.run(["podman", "exec", contract.alias(name), *command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_two_workstations_from_one_image_have_their_own_keys_tokens_and_machine_ids(baked_debian12, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    env = run_env(home)
    names = [f"bk{uuid.uuid4().hex[:6]}", f"bk{uuid.uuid4().hex[:6]}"]
    try:
        for name in names:
            made = runner(env, "provision", "--local", "--name", name, "--image", baked_debian12)
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
            assert "only per-instance work runs" in made.stdout
            login = subprocess.run(["ssh", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", contract.alias(name),
                                    "id", "-un"], capture_output=True, text=True, timeout=60, check=False,
                                   stdin=subprocess.DEVNULL)
            assert login.stdout.strip() == "scientist", login.stderr
        # The per-instance work is idempotent: a workstation from an image stays changed=0 when re-run.
        again = runner(env, "provision", "--local", "--name", names[0], "--image", baked_debian12)
        assert again.returncode == 0 and ": 0 changed." in again.stdout, again.stdout[-3000:]

        def facts(name: str) -> tuple[str, str, str]:
            return (_on(name, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"), _on(name, "cat", "/etc/machine-id"),
                    _on(name, "cat", f"/home/scientist/{contract.JUPYTER_TOKEN_FILE}"))
        first, second = facts(names[0]), facts(names[1])
        assert all(first) and all(second)
        assert first[0] != second[0], "same SSH host key"
        assert first[1] != second[1], "same machine-id"
        assert first[2] != second[2], "same Jupyter token"
        assert _on(names[0], "ls", "/etc/ssh").count("ssh_host_") == 2  # only the kept type (ed25519), public and private
    finally:
        for name in names:
            runner(env, "destroy", "--local", "--name", name, "--yes")
