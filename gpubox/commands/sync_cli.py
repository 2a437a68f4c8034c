"""The command line of `sync` (commands/sync.py does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpubox import ssh, which
from gpubox.commands import session, sync
from gpubox.flags import Flags



def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "sync", "copy a project to ~/work/<dir> on a workstation (or back with --pull), over SSH with rsync",
                      cmd_sync, "named")
    made.add_argument("local_dir", nargs="?", type=Path, default=Path("."), metavar="LOCAL_DIR", help="the project (default: .)")
    made.add_argument("--pull", action="store_true", help="copy the workstation's ~/work/<dir> back into LOCAL_DIR")
    made.add_argument("--delete", action="store_true", help="delete on the receiving side what the sending side lacks")
    made.add_argument("--dry-run", action="store_true", help="list what would be copied, copy nothing")


def cmd_sync(args: argparse.Namespace) -> int:
    alias = session.require_entry(which.pick(args.name).name)
    ssh.require_ssh_client()
    result = sync.sync(args.local_dir, alias, pull=args.pull, delete=args.delete, dry_run=args.dry_run)
    changed = [line for line in result.stdout.splitlines() if line and not line.startswith(".d..t")]
    where = f"{alias}:~/{sync.remote_dir_for(args.local_dir)}"
    direction = f"{where} -> {args.local_dir}" if args.pull else f"{args.local_dir} -> {where}"
    print("\n".join(changed) if changed else "Nothing to copy.")
    print(f"{'Would sync' if args.dry_run else 'Synced'} {direction}: {len(changed)} change(s)"
          + ("" if args.delete else " (nothing deleted; --delete to mirror deletions)") + ".")
    return 0
