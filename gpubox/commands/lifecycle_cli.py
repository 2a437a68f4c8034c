"""The command line of `status`, `stop`, `start` and `destroy`: their parsers and what they print
(commands/lifecycle.py and gpubox/status.py do the work)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gpubox import status as workstations
from gpubox import ssh, targets, which, workstation
from gpubox.commands import confirm, lifecycle
from gpubox.errors import GpuboxError
from gpubox.flags import Flags, add_confirm


def add_parser(subparsers: Any, flags: Flags) -> None:
    status = flags.verb(subparsers, "status", "every workstation: local, SSH hosts and EC2 (asked now)", cmd_status, "region")
    status.add_argument("--name", help="only this workstation")
    status.add_argument("--all", action="store_true", help="every gpubox workstation in the account, with its owner (for IT)")
    status.add_argument("--local", action="store_true", help="only local containers and SSH hosts (no AWS call)")
    status.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    for verb, text, handler in (("stop", "stop a workstation (the disk and your data stay)", cmd_stop),
                                ("start", "start a stopped workstation", cmd_start)):
        flags.verb(subparsers, verb, text, handler, "named", "region", "owner")

    destroy = flags.verb(subparsers, "destroy", "delete a workstation, everything gpubox created for it, and its SSH entry",
                         cmd_destroy, "region", "owner")
    destroy.add_argument("--local", action="store_true", help="only consider local container workstations")
    destroy.add_argument("--name", help="workstation name (default: the only one you have (with --local: the only local one), "
                                        "else default_name from ~/.config/gpubox/config.toml)")
    add_confirm(destroy)
    destroy.add_argument("--no-snapshot", action="store_true",
                         help="delete the disks for good "
                              "(default: keep a final snapshot of each, taken before anything is deleted)")


def cmd_status(args: argparse.Namespace) -> int:
    if args.json:
        document = workstations.as_document(args.region, args.name, local_only=args.local, everyone=args.all)
        print(json.dumps(document, indent=2))
        failed = workstations.exit_code(document, args.name)
        if failed:  # the document is printed all the same: it says what failed (ec2_error)
            raise failed
        return 0
    for line in workstations.text(args.region, args.name, local_only=args.local, everyone=args.all):
        print(line, flush=True)
    return 0


def _not_for_a_host(picked: which.Known, verb: str) -> None:
    if picked.kind == which.HOST:
        raise GpuboxError(f"{picked.name} is an SSH host ({picked.address}): gpubox does not {verb} it.",
                          f"{verb.capitalize()} it the way you usually do, or pass --name of another workstation.", exit_code=2)


def cmd_stop(args: argparse.Namespace) -> int:
    picked = which.pick(args.name)
    _not_for_a_host(picked, "stop")
    if picked.kind == which.LOCAL:
        targets.stop_local(picked.name)
        print(f"{picked.name} is stopped.\nIts disk and your data stay; `python runner.py start --name {picked.name}` brings it back.")
        return 0
    item = lifecycle.stop(args.region, picked.name, sys.stdout, any_owner=args.any_owner)
    print(f"{item.name} is {item.state}.")
    print(f"The disk and your data stay; `python runner.py start --name {item.name}` brings it back.")
    return 0


def _start_local(picked: which.Known) -> int:
    port = targets.start_local(picked.name)
    if port != picked.port:  # podman may publish SSH on another port after a restart
        entry = ssh.config_entry_path(targets.alias(picked.name)).read_text()
        key = which.entry_field(entry, "IdentityFile").strip('"').replace("%%", "%")
        ssh.write_config_entry(ssh.Connection(alias=targets.alias(picked.name), address="127.0.0.1", port=port,
                                              user=which.entry_field(entry, "User") or workstation.owner_name(), key=Path(key)))
    print(f"{picked.name} is running: ssh {targets.alias(picked.name)}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    picked = which.pick(args.name)
    _not_for_a_host(picked, "start")
    if picked.kind == which.LOCAL:
        return _start_local(picked)
    started = lifecycle.start(args.region, picked.name, sys.stdout, any_owner=args.any_owner)
    print(f"{started.workstation.name} is {started.workstation.state}.")
    if started.ssh_updated:
        print(f"SSH entry updated: ssh {targets.alias(started.workstation.name)} now reaches {started.workstation.public_ip}.")
    return 0


def _destroy_local(args: argparse.Namespace, name: str) -> int:

    def act() -> None:
        gone = lifecycle.destroy_local(name)
        print(f"Deleted {targets.alias(name)}." if gone
              else f"There was no workstation {targets.alias(name)}; nothing to delete.")

    heading = f"This deletes the local container {targets.alias(name)} with everything stored in it, and its SSH entry."
    return confirm.list_confirm_act([heading], dry_run=args.dry_run, yes=args.yes, word=name, what="destroy", act=act,
                                    prompt=f"Type the workstation name ({name}) to confirm: ")


def destroy_lines(plan: lifecycle.DestroyPlan, dry_run: bool) -> list[str]:
    """What destroy deletes and what it keeps, as the user confirms it."""
    lines = [f"{'Would delete' if dry_run else 'This deletes'} "
             f"(only resources gpubox tagged for '{plan.name}' in {plan.region}):"]
    lines += [f"  - {kind}: {item}" for kind, items in plan.resources.items() for item in items]
    if plan.kept:
        lines.append("First it stops the instance and keeps, completed before anything is deleted:")
        lines += [f"  - {line}" for line in plan.kept]
    elif plan.disks:
        but = " (except those marked NOT deleted)" if any(not disk.deleted for disk in plan.disks) else ""
        lines.append(f"--no-snapshot: no snapshot is taken; the volumes above{but} and everything on them are deleted for good.")
    return lines


def cmd_destroy(args: argparse.Namespace) -> int:
    candidates = [item for item in which.known() if not args.local or item.kind == which.LOCAL]
    picked = which.resolve(args.name, which.configured_default() if args.name is None else None, candidates=candidates)
    if args.local or picked.kind == which.LOCAL:
        return _destroy_local(args, picked.name)
    # An SSH host's entry may be an EC2 workstation of this user's whose record is gone: AWS is asked.
    plan = lifecycle.plan_destroy(picked.name, args.region, any_owner=args.any_owner, snapshot=not args.no_snapshot)
    if plan.empty:
        print(f"Nothing tagged for workstation '{plan.name}' in {plan.region}; nothing to delete.")
        return 0

    def act() -> None:
        lifecycle.destroy_ec2(plan, sys.stdout)
        if plan.in_aws:
            print(f"Deleted workstation {plan.name}.")
        else:
            print(f"Removed the SSH entry of {plan.name}; AWS has nothing tagged for it in {plan.region} "
                  "(if it runs in another region, destroy it there with --region).")

    return confirm.list_confirm_act(destroy_lines(plan, args.dry_run), dry_run=args.dry_run, yes=args.yes, word=plan.name,
                                    what="destroy", act=act, prompt=f"Type the workstation name ({plan.name}) to confirm: ")
