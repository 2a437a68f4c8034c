"""The command line of `image build|list|prune`: its parsers and what it prints
(commands/image.py and gpubox/bake.py do the work)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gpubox import bake, targets
from gpubox.commands import budget_cli, confirm, image, provision
from gpubox.commands.provision_cli import options
from gpubox.errors import GpuboxError
from gpubox.examples import EXAMPLES
from gpubox.flags import Flags, add_confirm, add_ec2


def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "image", "baked images: site.yml once into an AMI or a local image, for fast workstations",
                      cmd_image)
    actions = made.add_subparsers(dest="action", required=True, metavar="ACTION")
    # A target group of its own: set_defaults below changes the --name action, which parents share.
    build = actions.add_parser("build", parents=[flags.debug, flags.fresh_target(host=False), flags.region],
                               help="launch a builder, converge, verify and clean it, and image it", epilog=EXAMPLES["image"],
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    build.set_defaults(name="default")
    add_ec2(build, "--instance-type", "--ami", "--os", "--deadman-minutes", "--disk-gb", "--allow-cidr", "--connect",
            who="the builder")
    build.add_argument("--yes", action="store_true", help="do not ask before opening SSH to the whole internet")
    budget_cli.add_request_options(build, plan_ref=False)
    listed = actions.add_parser("list", parents=[flags.debug, flags.region], epilog=EXAMPLES["image"],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                help="your baked images (AMIs; --local: podman images)")
    prune = actions.add_parser("prune", parents=[flags.debug, flags.region], epilog=EXAMPLES["image"],
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               help="deregister your baked AMIs beyond the newest N of each series")
    prune.add_argument("--keep", type=int, required=True, help="how many of each series to keep")
    add_confirm(prune, done="removed")
    for action in (listed, prune):
        action.add_argument("--any-owner", action="store_true", help="everyone's gpubox images, not only yours (for IT)")
    listed.add_argument("--local", action="store_true", help="the local baked images")


def _build(args: argparse.Namespace) -> int:
    if args.local:
        made = bake.build_local(targets.check_name(args.name), args.release, sys.stdout, key=args.key)
        print(f"\nBaked {made.ref}: TensorFlow {made.labels[f'{bake.LABEL}.tensorflow']}, "
              f"audit {made.labels[f'{bake.LABEL}.audit']}.\nNext: python runner.py provision --local --image {args.name}")
        return 0
    cloud = provision.Cloud(instance_type=args.instance_type, ami=args.ami, disk_gb=args.disk_gb, allow_cidr=args.allow_cidr,
                            connect=args.connect, yes=args.yes, os=args.os, deadman_minutes=args.deadman_minutes, tag=args.tag)
    built = image.build_ec2(targets.check_name(args.name), options(provision.Target, args), cloud, sys.stdout)
    print(f"\nBaked {built.image_id} ({built.name}): TensorFlow {built.tags['gpubox:tensorflow']}, "
          f"driver {built.tags['gpubox:driver']}, audit {built.tags['gpubox:audit']}."
          f"\nNext: python runner.py provision --image {built.image_id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.local:
        for line in bake.local_lines():
            print(line)
        return 0
    found = image.listing(args.region, everyone=args.any_owner)
    for item in found:
        print(item.line())
    if not found:
        print(f"No baked gpubox images{'' if args.any_owner else ' of yours'}; `python runner.py image build` makes one.")
    return 0


def _prune(args: argparse.Namespace) -> int:
    pruned = image.plan_prune(args.region, args.keep, everyone=args.any_owner)
    summary = f"Kept {len(pruned.kept)} baked image(s) in {pruned.region}; {len(pruned.removed)} would be deregistered"
    if not pruned.removed:
        print(f"{summary} (nothing to prune).")
        return 0
    lines = []
    for item in pruned.removed:
        owner = f", owner {item.owner or '?'}" if args.any_owner else ""
        lines.append(f"{'Would deregister' if args.dry_run else 'Deregisters'} {item.image_id} ({item.series}, "
                     f"{item.created[:19]}{owner}) and deletes its snapshots {', '.join(item.snapshots) or 'none'}")

    def act() -> None:
        image.run_prune(pruned)
        print(f"Kept {len(pruned.kept)} baked image(s) in {pruned.region}; {len(pruned.removed)} deregistered.")

    return confirm.list_confirm_act(lines, dry_run=args.dry_run, yes=args.yes, word="prune", what="deregister images", act=act,
                                    dry_run_line=f"{summary}. Dry run: nothing was deleted.")


def cmd_image(args: argparse.Namespace) -> int:
    return {"build": _build, "list": _list, "prune": _prune}[args.action](args)
