"""`runner.py sync` against a real test host over its SSH entry (OpenSSH, rsync on both sides):
files, modes and nested folders arrive; what git ignores and .git's internals do not; nothing is
deleted there without --delete; --pull brings back a file made on the workstation; the project's
path has a space in it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gpubox import ssh
from gpubox.commands import sync

ALIAS = "gpubox-synctest"
REMOTE = "/home/admin/work/my project"


@pytest.fixture(scope="module")
def rsync_host(debian12_host):
    if subprocess.run(["which", "rsync"], capture_output=True, check=False).returncode != 0:
        pytest.skip("rsync is not installed here; run `make host-tools`")
    if debian12_host.exec("sh", "-c", "command -v rsync").returncode != 0:
        # The base role installs rsync on a workstation; the bare test host gets it here.
        installed = debian12_host.exec("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsync")
        if installed.returncode != 0:
            pytest.skip(f"rsync could not be installed on the test host: {installed.stderr[-300:]}")
    return debian12_host


def remote(host, command: str) -> str:
    """A command as admin, the entry's user, as a data scientist's own shell there would run it."""
    result = host.exec("runuser", "-u", "admin", "--", "sh", "-c", command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_round_trip(rsync_host, home, tmp_path):
    ssh.write_config_entry(ssh.Connection(alias=ALIAS, address="127.0.0.1", port=rsync_host.port, user="admin", key=rsync_host.key))
    project = tmp_path / "my project"
    (project / "nested" / "deep").mkdir(parents=True)
    (project / "build").mkdir()
    (project / "train.py").write_text("print('train')\n")
    (project / "train.py").chmod(0o640)
    (project / "run.sh").write_text("#!/bin/sh\necho run\n")
    (project / "run.sh").chmod(0o755)
    (project / "nested" / "deep" / "data with space.csv").write_text("a,b\n1,2\n")
    (project / ".gitignore").write_text("*.ckpt\nbuild/\n")
    (project / "model.ckpt").write_text("weights")
    (project / "build" / "out.o").write_text("object")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "nested" / "local.ckpt").write_text("ignored too")

    sync.sync(project, ALIAS)
    listing = remote(rsync_host, f"cd '{REMOTE}' && find . -printf '%p %m\\n' | sort")
    assert "./train.py 640" in listing and "./run.sh 755" in listing
    assert "./nested/deep/data with space.csv" in listing and "./.gitignore" in listing
    assert "ckpt" not in listing and "build" not in listing and ".git/" not in listing and "./.git " not in listing, listing

    # Made there; deleted here: a plain sync deletes nothing there, --pull brings the new file back.
    remote(rsync_host, f"echo 0.93 > '{REMOTE}/nested/result.txt' && chmod 600 '{REMOTE}/nested/result.txt'")
    (project / "train.py").unlink()
    sync.sync(project, ALIAS)
    assert remote(rsync_host, f"cat '{REMOTE}/train.py'") == "print('train')\n"
    sync.sync(project, ALIAS, pull=True)
    assert (project / "nested" / "result.txt").read_text() == "0.93\n"
    assert (project / "nested" / "result.txt").stat().st_mode & 0o777 == 0o600
    assert (project / "model.ckpt").read_text() == "weights"  # ignored: untouched by the pull
    (project / "train.py").unlink()

    # --delete mirrors the deletion, and still leaves ignored files alone on both sides.
    remote(rsync_host, f"echo there > '{REMOTE}/model.ckpt'")
    sync.sync(project, ALIAS, delete=True)
    after = remote(rsync_host, f"cd '{REMOTE}' && find . | sort")
    assert "./train.py" not in after and "./run.sh" in after and "./model.ckpt" in after


def test_without_git_each_gitignore_is_read_by_rsync(tmp_path):
    project = tmp_path / "plain"
    project.mkdir()
    assert sync.filter_rules(project, pull=False) == ["- /.git/", "- .git/", ":- .gitignore"]


def test_ignored_names_are_matched_literally(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".gitignore").write_text("weird*\n")
    (project / "weird[1]?.txt").write_text("x")
    rules = sync.filter_rules(project, pull=False)
    assert "- /weird\\[1]\\?.txt" in rules, rules


def test_pull_delete_into_the_home_or_above_is_refused(home, monkeypatch):
    """--pull --delete mirrors the workstation's folder onto the local one: from the home it would
    delete everything there that the project lacks. Refused before anything runs."""
    monkeypatch.setattr(sync.subprocess, "run", lambda *args, **kwargs: pytest.fail(f"ran {args}"))
    for where in (Path.home(), Path.home().parent):
        with pytest.raises(sync.GpuboxError, match="--pull --delete into"):
            sync.sync(where, ALIAS, pull=True, delete=True)


def test_a_folder_name_with_a_quote_reaches_the_remote_shell_as_one_word(tmp_path, monkeypatch):
    import shlex

    project = tmp_path / "it's; touch PWNED"
    project.mkdir()
    ran = []

    def recorded(argv, **kwargs):
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 1, "", "stop here")

    monkeypatch.setattr(sync.subprocess, "run", recorded)
    with pytest.raises(sync.GpuboxError):
        sync.sync(project, ALIAS)
    assert shlex.split(ran[0][-1]) == ["mkdir", "-p", "--", "work/it's; touch PWNED"]
