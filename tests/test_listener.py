"""Whether a user's Jupyter socket is up and theirs, from what `stat` says over their own SSH login
(the tunnel's clear message before it forwards; the kernel's permissions are the boundary). The
remote command runs here for real, as nobody, against a socket directory laid out as the jupyter@
unit lays it out."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from gpubox import contract, listener
from gpubox.errors import GpuboxError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="plays nobody: needs root")


def output(uid: str = "1001", directory: str = "1001 1700 directory", sock: str = "1001 600 socket") -> list[str]:
    return ["alice", "token", "GPUBOX_JUPYTER_PORT=8801", listener.MARKER, uid, directory, sock]


def test_output_splits_at_the_marker():
    before, uid, directory, sock = listener.split_output(output())
    assert before == ["alice", "token", "GPUBOX_JUPYTER_PORT=8801"] and uid == 1001
    assert directory == listener.Entry(1001, "1700", "directory") and sock == listener.Entry(1001, "600", "socket")


def test_missing_parts_are_none():
    assert listener.split_output(["alice", "token"]) == (["alice", "token"], None, None, None)
    _, uid, directory, sock = listener.split_output(output(directory=listener.MISSING, sock=listener.MISSING))
    assert uid == 1001 and directory is None and sock is None
    assert listener.split_output(["alice", listener.MARKER])[1:] == (None, None, None)


def test_the_users_own_socket_passes():
    _, uid, directory, sock = listener.split_output(output())
    listener.require_own_socket(uid, directory, sock, "alice", "gpubox-x")


@pytest.mark.parametrize(("directory", "sock"), [(listener.MISSING, listener.MISSING), ("1001 1700 directory", listener.MISSING)])
def test_a_server_that_is_not_running_is_told_apart(directory, sock):
    _, uid, entry, sock_entry = listener.split_output(output(directory=directory, sock=sock))
    with pytest.raises(listener.NothingListens, match="not running"):
        listener.require_own_socket(uid, entry, sock_entry, "alice", "gpubox-x")


@pytest.mark.parametrize(("directory", "sock", "words"), [
    ("1002 700 directory", "1002 600 socket", "not a private directory of alice (uid 1002"),
    ("1001 755 directory", "1001 600 socket", "mode 755"),
    ("1001 770 directory", "1001 600 socket", "mode 770"),
    ("1001 777 symbolic link", "1001 600 socket", "symbolic link"),
    ("1001 700 directory", "1002 600 socket", "not a socket of alice (socket, uid 1002)"),
    ("1001 700 directory", "1001 777 symbolic link", "symbolic link"),
    ("1001 700 directory", "1001 600 regular file", "regular file"),
])
def test_anything_not_the_users_alone_is_refused(directory, sock, words):
    _, uid, entry, sock_entry = listener.split_output(output(directory=directory, sock=sock))
    with pytest.raises(listener.SocketNotTheirs) as refused:
        listener.require_own_socket(uid, entry, sock_entry, "alice", "gpubox-x")
    assert words in refused.value.message and "no tunnel was opened" in refused.value.message


def test_no_uid_is_no_proof():
    with pytest.raises(GpuboxError, match="Could not check"):
        listener.require_own_socket(None, None, None, "alice", "gpubox-x")


def remote(root: Path) -> list[str]:
    """The remote command, run as nobody in a login shell's stead, with the socket root moved to root."""
    command = listener.REMOTE_COMMAND.replace(contract.JUPYTER_RUNTIME_ROOT, str(root))
    assert command != listener.REMOTE_COMMAND
    result = subprocess.run(["runuser", "-u", "nobody", "--", "/bin/sh", "-c", command], capture_output=True, text=True,
                            timeout=30, check=True, cwd="/")
    return result.stdout.splitlines()


@needs_root
def test_the_remote_command_on_a_real_layout():
    root = Path(tempfile.mkdtemp(prefix="gpubox-sockets-", dir="/tmp"))
    try:
        root.chmod(0o755)
        _, uid, directory, sock = listener.split_output(remote(root))
        assert uid == NOBODY and directory is None and sock is None  # not started
        (root / "nobody").mkdir(mode=0o700)
        os.chown(root / "nobody", NOBODY, NOBODY)
        os.chmod(root / "nobody", 0o1700)  # as Jupyter leaves it
        with pytest.raises(listener.NothingListens):
            listener.require_own_socket(*listener.split_output(remote(root))[1:], "nobody", "gpubox-x")
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(root / "nobody" / "jupyter.sock"))
            os.chown(root / "nobody" / "jupyter.sock", NOBODY, NOBODY)
            _, uid, directory, sock = listener.split_output(remote(root))
            assert directory == listener.Entry(NOBODY, "1700", "directory") and sock is not None and sock.kind == "socket"
            listener.require_own_socket(uid, directory, sock, "nobody", "gpubox-x")
            os.chown(root / "nobody", 0, 0)  # a directory that is not theirs: nobody cannot even look inside
            with pytest.raises(listener.SocketNotTheirs):
                listener.require_own_socket(*listener.split_output(remote(root))[1:], "nobody", "gpubox-x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
