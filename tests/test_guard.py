"""runner.py --host and the lockout guard: an admin account outside the groups sshd admits keeps
its login by its own group being added for the run, and only then (gpubox.guard)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from gpubox import guard, ssh

ALLOWED = ["sudo", "gpubox"]


def test_an_account_already_admitted_changes_nothing():
    assert guard.allow_groups_for("admin", ["admin", "sudo"], ALLOWED) is None


def test_an_account_with_a_group_of_its_own_gets_it_added():
    assert guard.allow_groups_for("corpadmin", ["corpadmin", "users"], ALLOWED) == ["sudo", "gpubox", "corpadmin"]


def test_without_a_group_of_its_own_the_guard_decides():
    """Adding a shared group would let all its members log in: left to IT (the role says how)."""
    assert guard.allow_groups_for("corpadmin", ["users", "wheel"], ALLOWED) is None
    assert guard.allow_groups_for("corpadmin", None, ALLOWED) is None  # the host could not be asked


def test_extravars_ask_the_host_as_the_login_user():
    connection = ssh.Connection(alias="gpubox-h", address="203.0.113.5", port=22, user="corpadmin", key=Path("/k"))
    asked = []

    def ask(reached: ssh.Connection) -> list[str]:
        asked.append(reached)
        return ["corpadmin"]

    expected = {"hardening_ssh_allow_groups": ["sudo", "gpubox", "corpadmin"]}
    assert guard.extravars(connection, ask=ask, allowed=ALLOWED) == expected
    assert asked == [connection]
    assert guard.extravars(connection, ask=lambda reached: ["sudo"], allowed=ALLOWED) == {}


def test_the_allowed_groups_are_the_sites_own():
    """What site.yml would use for a runner.py run: the role default with group_vars on top."""
    connection = ssh.Connection(alias="gpubox-h", address="203.0.113.5", port=22, user="corpadmin", key=Path("/k"))
    assert guard.extravars(connection, ask=lambda reached: ["corpadmin"]) == {
        "hardening_ssh_allow_groups": ["sudo", "gpubox", "corpadmin"]}


def test_a_host_that_cannot_be_asked_gives_no_answer(home):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]  # bound, not listening: connections are refused
        key = home / "k"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        connection = ssh.Connection(alias="gpubox-h", address="127.0.0.1", port=closed, user="corpadmin", key=key)
        assert guard.login_groups(connection, timeout=30) is None
