"""The TensorFlow kernel's launcher: ipykernel, with nothing of it on a TCP port.

The server starts kernels with the ipc transport (their channels are Unix sockets in the user's
private runtime directory). ipykernel itself still binds one socket to loopback TCP: the pipe that
carries output of forked subprocesses (multiprocessing workers, os.fork) to the notebook, on
tcp://127.0.0.1:<random>, where any account on the host can connect to it. Here that pipe is an ipc
socket in the same private directory instead, so no other account can reach or occupy it. The
rest is ipykernel_launcher as it is.

Run as `python -P /usr/local/lib/gpubox/jupyter_kernel.py -f {connection_file}`: -P keeps the
kernel from importing from its working directory (a notebook's folder) first.
"""

from __future__ import annotations

import os
import secrets

import zmq
from ipykernel import iostream
from jupyter_core.paths import jupyter_runtime_dir


def _setup_pipe_in(self: iostream.IOPubThread) -> None:
    """ipykernel's own, bound to an ipc endpoint in the private runtime directory, not to loopback."""
    self._pipe_uuid = os.urandom(16)  # still authenticates what comes through the pipe
    pipe_in = self.socket.context.socket(zmq.PULL)
    pipe_in.linger = 0
    self._gpubox_pipe = f"ipc://{jupyter_runtime_dir()}/kernel-pipe-{os.getpid()}-{secrets.token_hex(4)}"
    pipe_in.bind(self._gpubox_pipe)
    self._pipe_in = iostream.ZMQStream(pipe_in, self.io_loop)
    self._pipe_in.on_recv(self._handle_pipe_msg)


def _setup_pipe_out(self: iostream.IOPubThread) -> tuple[zmq.Context, zmq.Socket]:
    """In a forked child: connect to the parent's ipc pipe (ipykernel's own connects to TCP)."""
    context = zmq.Context()
    pipe_out = context.socket(zmq.PUSH)
    pipe_out.linger = 3000  # as ipykernel: 3 s for a child's last output, then it is dropped
    pipe_out.connect(self._gpubox_pipe)
    return context, pipe_out


iostream.IOPubThread._setup_pipe_in = _setup_pipe_in  # type: ignore[method-assign]
iostream.IOPubThread._setup_pipe_out = _setup_pipe_out  # type: ignore[method-assign]

if __name__ == "__main__":
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
