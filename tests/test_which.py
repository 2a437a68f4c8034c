"""One rule for which workstation a verb acts on (gpubox/which.py), through the real command line:
--name, else the only one this machine knows, else the config file's default_name, else an error
listing the names. Local workstations are planted as provision leaves them (an SSH entry, and a
container podman says is gpubox's); podman itself is replaced by a recorder, so nothing starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpubox import cli, containers, contract, ssh, status, tunnel, which
from gpubox.cloud import records
from gpubox.commands import session
from gpubox.errors import GpuboxError


def plant(home: Path, name: str, port: int = 1) -> None:
    """The SSH entry provision --local (or --host) writes; port 1: nothing answers there."""
    ssh.write_config_entry(ssh.Connection(alias=contract.alias(name), address="127.0.0.1", port=port, user="scientist",
                                          key=home / ".ssh" / "k"))


class Podman:
    """Stands in for podman: the containers named in `local` exist and run; records each call."""

    def __init__(self, local: set[str]) -> None:
        self.states = {contract.alias(name): "running" for name in local}
        self.calls: list[tuple[str, ...]] = []

    def state(self, alias: str) -> str | None:
        return self.states.get(alias)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(args)
        alias = args[-1]
        if args[:2] == ("container", "inspect"):
            return subprocess.CompletedProcess(args, 0 if alias in self.states else 1, f"{self.states.get(alias, '')}\n", "")
        if args[0] == "stop":
            self.states[alias] = "exited"
        if args[0] == "rm":
            self.states.pop(alias, None)
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def podman(monkeypatch):
    def install(*local: str) -> Podman:
        fake = Podman(set(local))
        monkeypatch.setattr(status, "container_state", fake.state)
        monkeypatch.setattr(containers, "_podman", fake.run)
        return fake
    return install


class Reached(BaseException):  # not caught by main()'s last line of defence
    """Raised where a verb would have touched the workstation: carries the SSH alias it used."""


@pytest.fixture
def reached(monkeypatch):
    """Every session verb's first contact with the workstation, recorded instead of made."""
    def login(_file: str, argv: list[str]) -> None:
        raise Reached(argv[-1])

    def endpoint(alias: str, _user: str | None) -> None:
        raise Reached(alias)

    def remote(alias: str, _command: str) -> None:
        raise Reached(alias)

    monkeypatch.setattr("os.execvp", login)
    monkeypatch.setattr(tunnel, "jupyter_endpoint_when_up", endpoint)
    monkeypatch.setattr(session, "_run", remote)
    monkeypatch.setattr(ssh, "require_ssh_client", lambda: None)


@pytest.mark.parametrize(("login", "name"), [("alice_smith", "alice-smith"), ("john.doe", "john-doe"), ("Alice", "alice"),
                                             ("a__b..c", "a-b-c"), ("x" * 40, "x" * 31), ("bob-", "bob")])
def test_a_login_maps_to_a_workstation_name_by_one_rule(login, name):
    assert which.from_login(login) == name


@pytest.mark.parametrize("login", ["1alice", "__", "ééé", ""])
def test_a_login_that_makes_no_name_asks_for_one(login):
    with pytest.raises(GpuboxError) as error:
        which.from_login(login)
    assert "--name" in error.value.fix and error.value.exit_code == 2


@pytest.mark.parametrize("argv", [["ssh"], ["tunnel"], ["notebook"], ["hold"], ["release"]])
def test_the_session_verbs_find_the_only_workstation_without_name(home, podman, reached, argv):
    plant(home, "demo")
    podman("demo")
    with pytest.raises(Reached) as where:
        cli.main(argv)
    assert str(where.value) == "gpubox-demo"


def test_stop_status_and_destroy_act_on_the_only_local_workstation(home, podman, capsys):
    plant(home, "demo")
    fake = podman("demo")
    assert cli.main(["stop"]) == 0
    assert ("stop", "gpubox-demo") in fake.calls and "demo is stopped" in capsys.readouterr().out
    assert cli.main(["status", "--local"]) == 0
    assert capsys.readouterr().out.startswith("demo: exited, local container")
    assert cli.main(["destroy", "--yes"]) == 0
    assert ("rm", "--force", "--time", "0", "gpubox-demo") in fake.calls
    assert not ssh.config_entry_path("gpubox-demo").exists()


@pytest.mark.parametrize("argv", [["ssh"], ["tunnel"], ["notebook"], ["hold"], ["release"], ["stop"], ["start"],
                                  ["destroy", "--yes"], ["report"], ["configure"]])
def test_with_two_workstations_each_verb_names_both(home, podman, reached, capsys, argv):
    plant(home, "alpha")
    plant(home, "beta")
    records.save_record("gamma", {"region": "us-east-1", "instance_id": "i-0123456789abcdef0"})
    podman("alpha")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "alpha (local container), beta (SSH host), gamma (EC2)" in err and "--name" in err


def test_the_config_files_default_picks_one_of_several(home, podman, reached, monkeypatch):
    plant(home, "alpha")
    plant(home, "beta")
    podman()
    config = home / ".config" / "gpubox" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('default_name = "beta"\n')
    with pytest.raises(Reached) as where:
        cli.main(["ssh"])
    assert str(where.value) == "gpubox-beta"


def test_with_no_workstation_the_error_says_how_to_make_one(home, podman, capsys):
    podman()
    assert cli.main(["ssh"]) == 2
    assert "provision --local" in capsys.readouterr().err


def test_a_new_ec2_workstation_is_named_after_the_login(home, monkeypatch, capsys):
    monkeypatch.setenv("USER", "alice_smith")
    monkeypatch.setenv("LOGNAME", "alice_smith")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert cli.main(["provision", "--dry-run"]) == 0
    assert "instance gpubox-alice-smith:" in capsys.readouterr().out


def test_a_new_local_workstation_is_named_after_the_login_and_configure_finds_it(home, podman, monkeypatch):
    """provision --local without --name follows the same rule as EC2 (no shared placeholder name);
    configure --local without --name acts on the only local workstation, whatever its name."""
    from gpubox.commands import provision_cli  # noqa: PLC0415

    monkeypatch.setenv("USER", "alice_smith")
    monkeypatch.setenv("LOGNAME", "alice_smith")
    seen: list[str] = []
    monkeypatch.setattr(provision_cli.provision, "configure", lambda target, *args, **kwargs: seen.append(target.name) or exit(0))
    podman()
    with pytest.raises(SystemExit):
        cli.main(["provision", "--local"])
    plant(home, "lab-box")
    podman("lab-box")
    with pytest.raises(SystemExit):
        cli.main(["configure", "--local"])
    assert seen == ["alice-smith", "lab-box"]
