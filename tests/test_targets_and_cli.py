"""Names, targets and the command line's promises: help with examples, readable errors, exit codes."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from conftest import PROJECT, run_env
from gpubox import cli as runner_cli
from gpubox import targets
from gpubox.errors import GpuboxError


@pytest.mark.parametrize("name", ["Alice", "1gpu", "a_b", "", "x" * 40, "bad name"])
def test_bad_workstation_names_are_refused(name):
    with pytest.raises(GpuboxError) as error:
        targets.check_name(name)
    assert repr(name)[1:-1] in error.value.message and "--name" in error.value.fix


@pytest.mark.parametrize(("address", "name"), [("gpu1.corp.example", "gpu1"), ("203.0.113.10", "host-203-0-113-10"),
                                               ("My_Box", "my-box")])
def test_names_derived_from_hosts_are_valid(address, name):
    assert targets.derive_name(address) == name
    targets.check_name(name)


def cli(home, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=run_env(home),
                          capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("command", ["provision", "configure", "ssh", "destroy", "plan", "report"])
def test_every_command_has_help_with_an_example(home, command):
    result = cli(home, command, "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and f"python runner.py {command}" in result.stdout


def test_bad_name_is_a_readable_error_with_exit_2(home):
    result = cli(home, "provision", "--local", "--name", "Bad_Name")
    assert result.returncode == 2
    assert "Workstation name 'Bad_Name' is not allowed." in result.stderr
    assert "Traceback" not in result.stderr


def test_ssh_to_unknown_workstation_says_how_to_create_it(home):
    result = cli(home, "ssh", "--name", "ghost")
    assert result.returncode == 1
    assert "No workstation named 'ghost'" in result.stderr and "runner.py provision" in result.stderr


def test_destroy_needs_confirmation_without_a_terminal(home):
    result = cli(home, "destroy", "--local", "--name", "ghost")
    assert result.returncode == 2
    assert "--yes" in result.stderr


def test_bad_port_is_refused_before_anything_runs(home):
    result = cli(home, "configure", "--host", "127.0.0.1", "--port", "70000")
    assert result.returncode == 2
    assert "Port 70000" in result.stderr


@pytest.mark.parametrize("verb", sorted(runner_cli.EXAMPLES))
def test_every_example_parses_to_its_command(verb):
    parser = runner_cli.build_parser()
    for line in runner_cli.EXAMPLES[verb].splitlines()[1:]:
        argv = shlex.split(line.split("#")[0])[2:]  # without "python runner.py"
        args = parser.parse_args(argv)
        assert args.command == verb and callable(args.func), line


def test_the_cli_layer_stays_small():
    """gpubox/cli.py only assembles the verbs (their parsers live beside their handlers)."""
    assert len((PROJECT / "gpubox" / "cli.py").read_text().splitlines()) <= 300


def test_every_deleting_verb_stops_at_dry_run_and_refuses_without_a_terminal(monkeypatch, capsys):
    """The one list -> dry run -> confirm -> act path: a dry run acts on nothing; without --yes and
    without a terminal it refuses (exit 2) before acting."""
    from gpubox.commands import confirm

    acted = []
    done = confirm.list_confirm_act(["  - thing"], dry_run=True, yes=False, word="prune", what="prune",
                                    act=lambda: acted.append(1))
    assert done == 0
    assert acted == [] and "Dry run: nothing was deleted." in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(GpuboxError) as refused:
        confirm.list_confirm_act(["  - thing"], dry_run=False, yes=False, word="prune", what="prune", act=lambda: acted.append(1))
    assert refused.value.exit_code == 2 and "--yes" in refused.value.fix and acted == []
    assert confirm.list_confirm_act([], dry_run=False, yes=True, word="prune", what="prune", act=lambda: acted.append(1)) == 0
    assert acted == [1]


@pytest.mark.parametrize("verb", ["destroy", "snapshots", "cleanup", "image"])
def test_the_deleting_verbs_share_the_confirm_path(verb):
    """Each of them reaches its act through confirm.list_confirm_act (no copy of the prompt)."""
    import inspect

    from gpubox.commands import image_cli, lifecycle_cli, retention_cli

    handler = {"destroy": lifecycle_cli.cmd_destroy, "snapshots": retention_cli.cmd_snapshots,
               "cleanup": retention_cli.cmd_cleanup, "image": image_cli._prune}[verb]
    source = inspect.getsource(handler)
    assert "confirm.list_confirm_act(" in source and "input(" not in source


@pytest.mark.parametrize(("argv", "name"), [(["provision", "--local"], None), (["configure"], None), (["image", "build"], "default")])
def test_a_verbs_defaults_are_its_own(argv, name):
    """Option groups are shared between verbs: one verb's default must not leak into another's."""
    assert runner_cli.build_parser().parse_args(argv).name == name


def _verbs(parser):
    import argparse

    return next(action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction))


@pytest.mark.parametrize("verb", sorted(_verbs(runner_cli.build_parser())))
def test_every_verb_has_its_own_help_with_examples_of_itself(verb, capsys):
    """Each verb's --help: its own description, and examples that are of that verb (gpubox/examples.py)."""
    with pytest.raises(SystemExit) as done:
        runner_cli.main([verb, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "examples:" in out and f"python runner.py {verb}" in out
    assert out.splitlines()[0].startswith(f"usage: python runner.py {verb} ")


def test_image_build_does_not_offer_host_it_would_refuse(capsys):
    with pytest.raises(SystemExit):
        runner_cli.main(["image", "build", "--help"])
    assert "--host" not in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        runner_cli.main(["image", "build", "--host", "203.0.113.10"])
    assert refused.value.code == 2


@pytest.mark.parametrize(("typed", "meant"), [("stauts", "status"), ("provison", "provision"), ("notebok", "notebook")])
def test_a_mistyped_verb_gets_did_you_mean(typed, meant, capsys):
    with pytest.raises(SystemExit) as refused:
        runner_cli.main([typed])
    assert refused.value.code == 2 and f"did you mean '{meant}'?" in capsys.readouterr().err


def test_global_options_after_the_verb_and_version(capsys):
    assert runner_cli.build_parser().parse_args(["status", "--debug"]).debug is True
    assert runner_cli.build_parser().parse_args(["--debug", "status"]).debug is True
    assert runner_cli.build_parser().parse_args(["status"]).debug is False
    with pytest.raises(SystemExit) as done:
        runner_cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("gpubox 0.")


def test_bash_completion_knows_every_verb_and_its_options(capsys):
    assert runner_cli.main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    for verb, sub in _verbs(runner_cli.build_parser()).items():
        assert f"        {verb}) opts=" in script
    assert "--allow-cidr" in next(line for line in script.splitlines() if line.strip().startswith("provision)"))
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    completed = subprocess.run(["bash", "-c", script + 'COMP_WORDS=(runner.py stat); COMP_CWORD=1; _gpubox_runner; '
                                                      'echo "${COMPREPLY[@]}"'], text=True, capture_output=True, check=False)
    assert completed.stdout.split() == ["status"]
