"""The command line of `plan` and `report`: their parsers and what they print
(commands/document.py does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gpubox import data_access, which
from gpubox.commands import budget_cli, document
from gpubox.flags import Flags, add_ec2


def add_parser(subparsers: Any, flags: Flags) -> None:
    paper = flags.verb(subparsers, "plan", "the request for your manager and IT: what is created, cost, team policy, "
                                           "approval block", cmd_plan, "region")
    paper.add_argument("--name", help="workstation name (default: default_name from your config file, else your login name, "
                                      "alice_smith -> alice-smith)")
    add_ec2(paper, "--instance-type", "--ami", "--os", "--deadman-minutes", "--disk-gb", "--spot", "--allow-cidr", "--data",
            spot="price a spot instance", data="S3 access as for provision --data",
            instance_type="instance type, any EC2 one (default: instance_type from your config file, else the spec's); "
                          "one gpubox has no price for reads unknown",
            allow_cidr="who may SSH in; repeatable (default: your public address /32, looked up at provision time); "
                       "a range wider than a /8 shows as a warning")
    paper.add_argument("--image", default="", metavar="latest|latest:SERIES|ami-...",
                       help="a baked image (`image build`), as for provision --image")
    paper.add_argument("--from-snapshot", default="", metavar="latest|SNAPSHOT",
                       help="a workstation brought back from your snapshot, as for provision --from-snapshot")
    paper.add_argument("--idle-stop", type=int, metavar="MINUTES", help="idle minutes before autostop (default 60; 0 never)")
    paper.add_argument("--hours-per-day", type=float, default=8.0, help="hours of use a day, for the expected cost (default: 8)")
    budget_cli.add_request_options(paper, plan_ref=False)
    report = flags.verb(subparsers, "report", "evidence read from a running workstation over SSH, for IT", cmd_report,
                        "named", "region")
    for made in (paper, report):
        made.add_argument("--inventory", type=Path, help="IT's inventory: its group_vars override the roles' defaults")
        made.add_argument("--output", type=Path,
                          help="file to write (default: gpubox-plan-NAME.html or gpubox-report-NAME.html here)")
        made.add_argument("--format", choices=document.FORMATS, default="html", help="html (default, self-contained) or md")


def cmd_plan(args: argparse.Namespace) -> int:
    request = document.plan_request(which.new_name(args.name, which.configured_default()), args.region, instance_type=args.instance_type, ami=args.ami,
                                    os=args.os, image=args.image, from_snapshot=args.from_snapshot,
                                    deadman_minutes=args.deadman_minutes, disk_gb=args.disk_gb, spot=args.spot,
                                    allow_cidr=args.allow_cidr,
                                    hours_per_day=args.hours_per_day, data=data_access.parse_all(args.data),
                                    tag=args.tag, idle_stop=args.idle_stop)
    made = document.make_plan(request, idle_stop=args.idle_stop, inventory=args.inventory)
    written = document.write(made, args.format, args.output, f"gpubox-plan-{request.name}")
    print(f"{made.summary}\nWrote {written.path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    name = which.pick(args.name).name
    made = document.make_report(name, region=args.region, inventory=args.inventory)
    written = document.write(made, args.format, args.output, f"gpubox-report-{name}")
    print(f"{made.summary}\nWrote {written.path}")
    return 0
