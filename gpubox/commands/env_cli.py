"""The command line of `env create|list|remove` (commands/env.py does the work; the helper that
runs on the workstation, as the data scientist, is commands/env_remote.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpubox import ssh, which
from gpubox.commands import env, session
from gpubox.errors import GpuboxError
from gpubox.flags import Flags



def add_parser(subparsers: Any, flags: Flags) -> None:
    """`env create|list|remove`, on the workstation named by --name, as its SSH entry's user."""
    made = flags.verb(subparsers, "env", "your own Python environments and Jupyter kernels on a workstation (no root needed)",
                      cmd_env)
    actions = made.add_subparsers(dest="env_action", required=True, metavar="ACTION")
    named = [flags.named]
    create = actions.add_parser("create", parents=named, help="create an environment and its kernel (all or nothing)")
    create.add_argument("env_name", metavar="NAME", help="lowercase letters, digits, '-' and '_'")
    create.add_argument("-r", "--requirements", type=Path, metavar="FILE", help="a pip requirements file to install")
    create.add_argument("--python", metavar="VERSION", help="Python version, e.g. 3.11 (default: the workstation's python3)")
    create.add_argument("--from", dest="from_framework", choices=env.FRAMEWORKS,
                        help="start from this framework's environment (its packages are shared, not copied)")
    actions.add_parser("list", parents=named, help="your environments, their kernels and sizes")
    remove = actions.add_parser("remove", parents=named, help="remove an environment and its kernel")
    remove.add_argument("env_name", metavar="NAME")


def cmd_env(args: argparse.Namespace) -> int:
    if args.env_action == "create":
        request = env.create_request(args.env_name, args.requirements, args.python, args.from_framework)
    else:
        request = {"action": args.env_action, "name": getattr(args, "env_name", "")}
    alias = session.require_entry(which.pick(args.name).name)
    ssh.require_ssh_client()
    answer = env.run_remote(env.ssh_prefix(alias), request)
    if not answer.get("ok"):
        raise GpuboxError(answer.get("error", "The environment helper failed."), answer.get("fix", ""))
    if args.env_action == "create":
        inherited = f", inheriting {answer['from']} ({answer['framework_bytes'] / 2**30:.1f} GiB, shared)" if answer["from"] else ""
        print(f"Created {answer['path']} (Python {answer['python']}, {answer['bytes'] / 2**20:.1f} MiB{inherited}).\n"
              f"Kernel: '{answer['display_name']}' in your JupyterLab's launcher.")
    elif args.env_action == "list":
        for item in answer["envs"]:
            print(f"{item['name']:<20} {item['bytes'] / 2**20:>9.1f} MiB  {('from ' + item['from']) if item['from'] else '':<16} "
                  f"kernel: {item['kernel'] or 'missing'}")
        if not answer["envs"]:
            print("No environments of yours. Create one: python runner.py env create NAME -r requirements.txt")
    else:
        print(f"Removed the environment {answer['name']} and its kernel.")
    return 0
