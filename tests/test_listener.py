"""Who holds a user's Jupyter port, from /proc/net/tcp(6) as the tunnel reads it over SSH."""

from __future__ import annotations

import os
import subprocess

import pytest

from gpubox import listener
from gpubox.errors import GpuboxError

# Real table layout: alice (1001) listens on 127.0.0.1:8801 (0x2261), mallory (1002) on 8802
# (0x2262) and on [::]:8803, root's sshd on 22; one established connection to 8801.
TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2261 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 41234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2262 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 41235 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0
   3: 0100007F:2261 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1002        0 41240 1 0000000000000000 20 4 30 10 -1
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2263 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 5 1 0 100 0 0 10 0
"""


def output(uid: str = "1001") -> list[str]:
    return ["alice", "token", "GPUBOX_JUPYTER_PORT=8801", listener.MARKER, uid, *(TCP + TCP6).splitlines()]


def test_tables_give_listening_sockets_with_port_and_owner():
    found = listener.parse_tables(TCP + TCP6)
    assert found == [listener.Listener(8801, 1001), listener.Listener(8802, 1002), listener.Listener(22, 0),
                     listener.Listener(8803, 1002)]


def test_output_splits_at_the_marker():
    before, uid, found = listener.split_output(output())
    assert before == ["alice", "token", "GPUBOX_JUPYTER_PORT=8801"] and uid == 1001 and len(found) == 4


def test_the_users_own_listener_passes():
    _, uid, found = listener.split_output(output())
    listener.require_own_listener(found, 8801, uid, "alice", "gpubox-ws")


@pytest.mark.parametrize("port", [8802, 8803])
def test_another_accounts_listener_is_refused_with_the_fix(port):
    _, uid, found = listener.split_output(output())
    with pytest.raises(listener.PortNotTheirs) as error:
        listener.require_own_listener(found, port, uid, "alice", "gpubox-ws")
    assert "uid 1002" in error.value.message and "runner.py configure" in error.value.fix


def test_a_squatter_next_to_the_users_own_listener_is_refused():
    found = [listener.Listener(8801, 1001), listener.Listener(8801, 1002)]
    with pytest.raises(listener.PortNotTheirs):
        listener.require_own_listener(found, 8801, 1001, "alice", "gpubox-ws")


def test_root_on_the_port_is_not_the_user():
    with pytest.raises(listener.PortNotTheirs, match="uid 0"):
        listener.require_own_listener([listener.Listener(8801, 0)], 8801, 1001, "alice", "gpubox-ws")


def test_nothing_listening_means_the_server_is_down():
    _, uid, found = listener.split_output(output())
    with pytest.raises(listener.NothingListens, match="not running"):
        listener.require_own_listener(found, 8804, uid, "alice", "gpubox-ws")


@pytest.mark.parametrize("lines", [["alice", "token"], ["alice", listener.MARKER], ["alice", listener.MARKER, "x"]])
def test_no_proof_is_a_refusal(lines):
    _, uid, found = listener.split_output(lines)
    with pytest.raises(GpuboxError, match="Could not check"):
        listener.require_own_listener(found, 8801, uid, "alice", "gpubox-ws")


def test_the_remote_command_works_on_a_kernel_without_ipv6():
    # No tcp6 table (ipv6.disable=1): the command still succeeds and prints the IPv4 listeners.
    command = listener.REMOTE_COMMAND.replace("/proc/net/tcp6", "/nonexistent/tcp6")
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    marker, uid, header = result.stdout.splitlines()[:3]
    assert marker == listener.MARKER and uid == str(os.getuid()) and header.split()[:2] == ["sl", "local_address"]
