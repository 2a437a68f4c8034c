"""The command line of `ssh`, `tunnel`, `notebook`, `hold` and `release`: their parsers and what
they print (commands/session.py does the work)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gpubox import opener, which
from gpubox.commands import session
from gpubox.flags import Flags


def add_parser(subparsers: Any, flags: Flags) -> None:
    login = flags.verb(subparsers, "ssh", "log in to a workstation", cmd_ssh, "named")
    login.add_argument("remote", nargs=argparse.REMAINDER, help="command to run instead of a shell (after --)")
    for verb, text, handler in (("tunnel", "open JupyterLab through an SSH tunnel (until Ctrl-C)", cmd_tunnel),
                                ("notebook", "the tunnel, and JupyterLab opened in your browser (until Ctrl-C)", cmd_notebook)):
        tunnel = flags.verb(subparsers, verb, text, handler, "named")
        tunnel.add_argument("--user", help="your account on the workstation (default: the one `ssh gpubox-NAME` uses)")
        tunnel.add_argument("--local-port", type=int,
                            help="local port (default: your Jupyter port from the workstation's settings, if free)")

    hold = flags.verb(subparsers, "hold", "keep a workstation up: autostop leaves it running", cmd_hold, "named", "owner")
    hold.add_argument("--hours", type=float,
                      help="for this many hours (default: until `release`; the workstation ends any hold after its limit, "
                           "72 h unless IT set autostop_hold_max_hours)")
    flags.verb(subparsers, "release", "end your hold", cmd_release, "named")


def cmd_hold(args: argparse.Namespace) -> int:
    held = session.hold(which.pick(args.name).name, args.hours, any_owner=args.any_owner)
    print(f"{held.alias} is held{' until ' + held.until if held.until else ' until you release it'}: autostop leaves it running.")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    print(f"Released your hold on {session.release(which.pick(args.name).name)}: autostop may stop it once it is idle.")
    return 0


def cmd_ssh(args: argparse.Namespace) -> int:
    session.login(which.pick(args.name).name, args.remote)  # replaces this process


def cmd_tunnel(args: argparse.Namespace, *, browse: bool = False) -> int:
    opened = session.open_tunnel(which.pick(args.name).name, args.user, args.local_port)
    # The token is printed here because the user asked for the tunnel: this is how they open Jupyter.
    print(f"JupyterLab of {opened.endpoint.user} on {opened.alias}, through an SSH tunnel:\n\n    {opened.url}\n\n"
          f"{'Opening it in your browser.' if browse else 'Open it in your browser.'} "
          "Keep this running; Ctrl-C closes the tunnel.", flush=True)
    if browse:
        opener.open_when_up(opened.url, opened.local_port, sys.stdout)
    return session.keep_tunnel(opened, sys.stdout)


def cmd_notebook(args: argparse.Namespace) -> int:
    return cmd_tunnel(args, browse=True)
