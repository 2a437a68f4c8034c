"""make_token.py, the one judge of a user's Jupyter token: a valid token is kept as it is, and
anything else where it lives (empty, whitespace, wrong alphabet or length, readable by others,
a symlink, a FIFO, a directory) is replaced by a fresh one without touching what a link points
to. Run here in this process's own identity; on a test host it runs as each user
(molecule/jupyter/tests/test_jupyter.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import signal
import stat
import time
from pathlib import Path

import pytest

from conftest import PROJECT

spec = importlib.util.spec_from_file_location("make_token", PROJECT / "roles" / "jupyter" / "files" / "make_token.py")
make_token = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_token)
RELATIVE = ".local/share/gpubox/jupyter-token"
VALID = "fedcba9876543210" * 4 + "\n"


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / RELATIVE
    path.parent.mkdir(parents=True)
    return path


def ensure(tmp_path: Path) -> int:
    umask = os.umask(0o022)
    try:
        return make_token.ensure_token(str(tmp_path), RELATIVE, os.getuid())
    finally:
        os.umask(umask)


def assert_fresh(token: Path) -> None:
    info = token.lstat()
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()
    assert make_token.TOKEN_FORMAT.fullmatch(token.read_text()) and token.read_text() != VALID
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700


def test_a_missing_token_is_made(tmp_path):
    assert ensure(tmp_path) == make_token.REPLACED
    assert_fresh(tmp_path / RELATIVE)
    assert ensure(tmp_path) == make_token.KEPT


def test_a_valid_token_is_kept(token, tmp_path):
    token.write_text(VALID)
    token.chmod(0o600)
    assert ensure(tmp_path) == make_token.KEPT
    assert token.read_text() == VALID


@pytest.mark.parametrize("content", ["", "   \n", "wrong\n", VALID.upper(), VALID.strip() + "0\n", VALID + VALID])
def test_anything_but_a_token_is_replaced(token, tmp_path, content):
    token.write_text(content)
    token.chmod(0o600)
    assert ensure(tmp_path) == make_token.REPLACED
    assert_fresh(token)


def test_a_token_others_can_read_is_replaced(token, tmp_path):
    token.write_text(VALID)
    token.chmod(0o644)
    assert ensure(tmp_path) == make_token.REPLACED
    assert_fresh(token)


@pytest.mark.parametrize("kind", ["symlink to a token", "dangling symlink", "fifo", "directory"])
def test_a_planted_file_is_replaced_and_its_target_untouched(token, tmp_path, kind):
    target = tmp_path / "elsewhere"
    target.write_text(VALID)
    target.chmod(0o600)
    if kind == "symlink to a token":
        token.symlink_to(target)
    elif kind == "dangling symlink":
        token.symlink_to(tmp_path / "nothing-here")
    elif kind == "fifo":
        os.mkfifo(token)
    else:
        token.mkdir()
    assert ensure(tmp_path) == make_token.REPLACED
    assert_fresh(token)
    assert target.read_text() == VALID and not (tmp_path / "nothing-here").exists()


def test_a_replacement_is_owed_before_any_token_changes(tmp_path, monkeypatch):
    """main() records the restart before the first token is written, and only when one will be."""
    marker = tmp_path / "pending" / "jupyter-restart"
    home = tmp_path / "home"
    calls: list[tuple[str, bool, bool]] = []

    def in_this_process(name: str, relative: str, write: bool = True, timeout: float = 10.0) -> int:
        calls.append((name, write, marker.exists()))
        umask = os.umask(0o022)  # ensure_token sets the user's umask: not this test process's for good
        try:
            return make_token.ensure_token(str(home), relative, os.getuid(), write)
        finally:
            os.umask(umask)

    monkeypatch.setattr(make_token, "as_user", in_this_process)
    monkeypatch.setattr("sys.argv", ["make_token.py", "--owe", str(marker), RELATIVE, "alice"])
    assert make_token.main() == 0
    assert marker.is_file()
    assert calls == [("alice", False, False), ("alice", True, True)]  # looked first, wrote after owing
    marker.unlink()
    calls.clear()
    assert make_token.main() == 0  # the token is valid now: nothing owed, nothing written
    assert not marker.exists() and calls == [("alice", False, False), ("alice", True, False)]


def test_looking_writes_nothing(tmp_path):
    umask = os.umask(0o022)
    try:
        assert make_token.ensure_token(str(tmp_path), RELATIVE, os.getuid(), write=False) == make_token.WANTED
    finally:
        os.umask(umask)
    assert not (tmp_path / RELATIVE).parent.exists()


def test_a_stopped_child_costs_the_bound_and_is_reaped(monkeypatch):
    """The child runs as the user, who can SIGSTOP it: root waits the bound, kills it, goes on."""
    def stops_itself(home: str, relative: str, uid: int, write: bool = True) -> int:
        os.kill(os.getpid(), signal.SIGSTOP)
        return make_token.KEPT

    monkeypatch.setattr(make_token, "ensure_token", stops_itself)
    me = pwd.getpwuid(os.getuid()).pw_name
    started = time.monotonic()
    assert make_token.as_user(me, RELATIVE, timeout=1) == make_token.TIMED_OUT
    assert time.monotonic() - started < 4
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(-1, os.WNOHANG)


def test_a_child_that_finishes_in_time_gives_its_result(monkeypatch):
    monkeypatch.setattr(make_token, "ensure_token", lambda home, relative, uid, write=True: make_token.REPLACED)
    assert make_token.as_user(pwd.getpwuid(os.getuid()).pw_name, RELATIVE, timeout=5) == make_token.REPLACED


def test_a_user_who_stops_the_helper_is_named_and_the_others_are_served(tmp_path, monkeypatch, capsys):
    """main() goes on after a timed-out user, asks that user only once, and names them."""
    marker = tmp_path / "pending" / "jupyter-restart"
    calls: list[tuple[str, bool]] = []

    def answers(name: str, relative: str, write: bool = True, timeout: float = 10.0) -> int:
        calls.append((name, write))
        if name == "alice":
            return make_token.TIMED_OUT
        return make_token.REPLACED if write else make_token.WANTED

    monkeypatch.setattr(make_token, "as_user", answers)
    monkeypatch.setattr("sys.argv", ["make_token.py", "--owe", str(marker), "--timeout", "3", RELATIVE, "alice", "dave"])
    assert make_token.main() == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"created": ["dave"], "failed": ["alice"], "timed_out": ["alice"]}
    assert calls == [("alice", False), ("dave", False), ("dave", True)]
    assert marker.is_file()
