"""The command line of `provision`, `configure` and `doctor`: their parsers and what they print
(commands/provision.py does the work)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from gpubox import contract, which
from gpubox.cloud import doctor
from gpubox.commands import budget_cli, provision
from gpubox.errors import GpuboxError
from gpubox.flags import Flags, add_confirm, add_ec2

EC2_OPTIONS = ("--instance-type", "--ami", "--os", "--deadman-minutes", "--disk-gb", "--spot", "--allow-cidr", "--connect")


def add_parser(subparsers: Any, flags: Flags) -> None:
    made = flags.verb(subparsers, "provision", "create (or find) a workstation and configure it", cmd_provision,
                      "target", "region")
    made.add_argument("--image", default="", metavar="latest|ami-...|NAME",
                      help="start from a baked image (`image build`): only per-instance work is left to do. On EC2 "
                           "latest (your newest), latest:SERIES or an AMI ID; with --local the image's --name")
    cloud = made.add_argument_group("EC2 (when neither --local nor --host is given)")
    add_ec2(cloud, *EC2_OPTIONS, "--data",
            instance_type=f"instance type (default: {provision.Cloud().instance_type}); an existing workstation is changed to it",
            disk_gb=f"root disk in GB (default: {provision.Cloud().disk_gb}); an existing workstation's grows to it")
    # Left out, they are not compared with an existing workstation (launch.changes): None says so.
    made.set_defaults(instance_type=None, disk_gb=None)
    add_confirm(cloud, done="created", yes="do not ask before opening SSH to the whole internet or changing an existing workstation")
    cloud.add_argument("--from-snapshot", metavar="latest|SNAPSHOT",
                       help="a new instance whose disk is made from your snapshot (latest: the newest of --name, e.g. "
                            "what destroy kept)")
    budget_cli.add_request_options(cloud)

    configure = flags.verb(subparsers, "configure", "re-apply site.yml to an existing workstation", cmd_configure,
                           "target", "region")
    configure.add_argument("--tags", help="only these Ansible tags, e.g. base_time")
    configure.add_argument("--check", action="store_true", help="show what would change, change nothing")

    doctor = flags.verb(subparsers, "doctor", "check AWS credentials, quota, region and SSH before spending money", cmd_doctor,
                        "region")
    add_ec2(doctor, "--instance-type", instance_type=f"the type you plan to use (default: {provision.Cloud().instance_type})")
    doctor.add_argument("--key", type=Path, help="the SSH key you plan to use")


def options(kind: type, args: argparse.Namespace) -> Any:
    """The dataclass of a command's options, from the parsed arguments of the same names."""
    return kind(**{field.name: getattr(args, field.name) for field in dataclasses.fields(kind) if hasattr(args, field.name)})


def print_configured(done: provision.Configured, *, check: bool = False) -> None:
    verb = "would change" if check else "changed"
    print(f"\nDone in {done.run.seconds:.0f}s: {sum(done.run.changed.values())} {verb}. Full log: {done.run.log_path}")


def _pick_target(args: argparse.Namespace) -> None:
    """configure without --local or --host: the workstation by the one rule (gpubox/which.py);
    --local without --name: the only local one, else the name a new one gets."""
    if args.local and args.name is None:
        local = [known for known in which.known() if known.kind == which.LOCAL]
        args.name = local[0].name if len(local) == 1 else which.new_name(None, which.configured_default())
    if args.local or args.host:
        return
    picked = which.pick(args.name)
    if picked.kind == which.HOST:
        raise GpuboxError(f"{picked.name} is an SSH host: configure reaches it by its address and admin login.",
                          f"Run: python runner.py configure --host {picked.address} --port {picked.port} --name {picked.name} "
                          "--user ADMIN_LOGIN", exit_code=2)
    args.name, args.local = picked.name, picked.kind == which.LOCAL


def cmd_configure(args: argparse.Namespace) -> int:
    _pick_target(args)
    tags, check = getattr(args, "tags", None), getattr(args, "check", False)
    done = provision.configure(options(provision.Target, args), sys.stdout, tags=tags, check=check,
                               image=getattr(args, "image", ""))
    print_configured(done, check=check)
    if not check:
        name = done.connection.alias.removeprefix(contract.RESOURCE_PREFIX)
        print(f"\nLog in with:\n    ssh {done.connection.alias}\n(or: python runner.py ssh --name {name})")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    data_source = getattr(args, "effective", {}).get("data")
    if (args.local or args.host) and data_source and not data_source.source.startswith("command line"):
        args.data = None  # the config file's data is for EC2 workstations; a local or --host one has no instance role
    if (args.local or args.host) and args.data:
        raise GpuboxError("--data gives an EC2 workstation an instance role; --local and --host machines have none.",
                          "Drop --data, or provision on EC2 (without --local/--host).", exit_code=2)
    if args.host and args.image:
        raise GpuboxError("--image starts a new machine from a baked image; an existing --host is configured as it is.",
                          "Drop --image, or use --local or EC2.", exit_code=2)
    if args.local and args.name is None:  # a new local workstation is named by the same rule as one on EC2
        args.name = which.new_name(None, which.configured_default())
    if args.local or args.host:
        return cmd_configure(args)
    args.name = which.new_name(args.name, which.configured_default())
    cloud = options(provision.Cloud, args)
    effective = getattr(args, "effective", {})  # where each value came from (flags.apply_config)
    given = frozenset(option for option in ("instance_type", "disk_gb") if getattr(args, option) is not None
                      and (option not in effective or effective[option].source.startswith("command line")))
    plan = provision.plan_ec2(options(provision.Target, args), dataclasses.replace(cloud, given=given))
    print("\n".join(provision.preview(plan, dry_run=args.dry_run)))
    if args.dry_run:
        print("Dry run: nothing was created.")
        return 0
    if plan.open_to_everyone:
        print(f"warning: --allow-cidr {plan.request.allow_cidr} lets the whole internet try to log in over SSH.", file=sys.stderr)
    for network in plan.private_ranges:
        print(f"warning: --allow-cidr {network} is a private range, but the instance is reached at its public address: SSH "
              "from it only arrives through a VPN or peering that keeps private source addresses (else pass your public "
              "range, or --connect).", file=sys.stderr)
    done = provision.provision_ec2(plan, sys.stdout)
    print_configured(done)
    print(f"\nNext: python runner.py tunnel --name {plan.request.name}   (JupyterLab in your browser)\n"
          f"      ssh {done.connection.alias}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    lines, status = doctor.report(doctor.run(args.region, args.instance_type, args.key))
    print("\n".join(lines))
    return status
