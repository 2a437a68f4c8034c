"""`python runner.py ...`: parses arguments and prints results; gpubox.commands does the work."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpubox import bake, containers, contract, data_access, opener, targets
from gpubox.cloud import aws, data_role, deadman, images, ownership, regions
from gpubox import status as workstations
from gpubox.commands import document, image, lifecycle, provision, retention, session
from gpubox.errors import GpuboxError
from gpubox.examples import EXAMPLES


def _parents() -> dict[str, argparse.ArgumentParser]:
    """Options several commands share, each defined once."""
    region = argparse.ArgumentParser(add_help=False)
    region.add_argument("--region", help=f"AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or {contract.DEFAULT_REGION})")
    named = argparse.ArgumentParser(add_help=False)
    named.add_argument("--name", default="local", help="workstation name (default: local)")
    target = argparse.ArgumentParser(add_help=False)
    where = target.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="a local podman container as the workstation")
    where.add_argument("--host", metavar="HOST", help="an existing machine reachable over SSH")
    target.add_argument("--name", help="workstation name (default: 'local' for --local, else derived from --host)")
    target.add_argument("--release", choices=containers.RELEASES, default="debian12", help="image of the local container")
    target.add_argument("--user", help="login user with sudo (default: admin; on EC2 the image's own: admin on Debian, "
                                       "ubuntu with --os ubuntu-24.04)")
    target.add_argument("--port", type=int, default=22, help="SSH port of --host (default: 22)")
    target.add_argument("--key", type=Path, help="private key to log in with (default: ~/.ssh/id_ed25519 or a new one)")
    target.add_argument("--idle-stop", type=int, metavar="MINUTES",
                        help="power the workstation off after this many idle minutes (default 60; 0 never)")
    target.add_argument("--trust-local-cas", action="store_true",
                        help="make the workstation trust this machine's extra CAs (/usr/local/share/ca-certificates), "
                             "for a TLS-inspecting proxy between both and the internet (always on for --local)")
    owner = argparse.ArgumentParser(add_help=False)
    owner.add_argument("--any-owner", action="store_true", help="act on someone else's workstation (for IT)")
    return {"region": region, "named": named, "target": target, "owner": owner}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python runner.py",
        description="gpubox: a hardened GPU workstation, ready for data science.",
        epilog="Run `python runner.py COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parents = _parents()

    def command(verb: str, text: str, func: Callable[[argparse.Namespace], int], *shared: str) -> argparse.ArgumentParser:
        made = sub.add_parser(verb, help=text, epilog=EXAMPLES[verb], formatter_class=argparse.RawDescriptionHelpFormatter,
                              parents=[parents[name] for name in shared])
        made.set_defaults(func=func)
        return made

    made = command("provision", "create (or find) a workstation and configure it", _provision, "target", "region")
    made.add_argument("--image", default="", metavar="latest|ami-...|NAME",
                      help="start from a baked image (`image build`): only per-instance work is left to do. On EC2 "
                           "latest (your newest), latest:SERIES or an AMI ID; with --local the image's --name")
    cloud = made
    cloud = cloud.add_argument_group("EC2 (when neither --local nor --host is given)")
    cloud.add_argument("--instance-type", default="g4dn.xlarge", help="default: g4dn.xlarge (one T4 GPU)")
    cloud.add_argument("--ami", default="", help="image ID (default: the latest image of --os from its publisher)")
    cloud.add_argument("--os", default=images.DEFAULT_OS, metavar="|".join(images.OPERATING_SYSTEMS),
                       help=f"operating system (default: {images.DEFAULT_OS}; ubuntu-24.04 is not exercised by the test suite)")
    cloud.add_argument("--deadman-minutes", type=int, default=deadman.DEFAULT_MINUTES, metavar="MINUTES",
                       help=f"the instance powers itself off this long after boot unless configuring finished "
                            f"(default {deadman.DEFAULT_MINUTES})")
    cloud.add_argument("--disk-gb", type=int, default=100, help="root disk in GB, encrypted gp3 (default: 100)")
    cloud.add_argument("--spot", action="store_true", help="a spot instance: cheaper, but AWS can interrupt it")
    cloud.add_argument("--allow-cidr", help="who may SSH in (default: this machine's public address /32)")
    cloud.add_argument("--connect", metavar="HOST:PORT",
                       help="reach the instance here instead of its public address (a port-forward, a private address)")
    cloud.add_argument("--dry-run", action="store_true", help="only list what would be created")
    cloud.add_argument("--yes", action="store_true", help="do not ask before opening SSH to the whole internet")
    cloud.add_argument("--data", action="append", metavar="s3://BUCKET[/PREFIX][:rw]",
                       help="S3 data the workstation may read (or also write, with :rw) through its instance role; repeatable; "
                            "replaces the access an earlier --data gave")
    cloud.add_argument("--from-snapshot", metavar="latest|SNAPSHOT",
                       help="a new instance whose disk is made from your snapshot (latest: the newest of --name, e.g. "
                            "what destroy kept)")

    configure = command("configure", "re-apply site.yml to an existing workstation", _configure, "target", "region")
    configure.add_argument("--tags", help="only these Ansible tags, e.g. base_time")
    configure.add_argument("--check", action="store_true", help="show what would change, change nothing")

    login = command("ssh", "log in to a workstation", _ssh, "named")
    login.add_argument("remote", nargs=argparse.REMAINDER, help="command to run instead of a shell (after --)")
    for verb, text, func in (("tunnel", "open JupyterLab through an SSH tunnel (until Ctrl-C)", _tunnel),
                             ("notebook", "the tunnel, and JupyterLab opened in your browser (until Ctrl-C)", _notebook)):
        tunnel = command(verb, text, func, "named")
        tunnel.add_argument("--user", help="your account on the workstation (default: the one `ssh gpubox-NAME` uses)")
        tunnel.add_argument("--local-port", type=int, help="local port (default: your Jupyter port from the workstation's settings, if free)")

    status = command("status", "every workstation: local, SSH hosts and EC2 (asked now)", _status, "region")
    status.add_argument("--name", help="only this workstation")
    status.add_argument("--all", action="store_true", help="every gpubox workstation in the account, with its owner (for IT)")
    status.add_argument("--local", action="store_true", help="only local containers and SSH hosts (no AWS call)")
    status.add_argument("--json", action="store_true", help="machine-readable, for scripts")
    for verb, text, func in (("stop", "stop a workstation (the disk and your data stay)", _stop),
                             ("start", "start a stopped workstation", _start)):
        command(verb, text, func, "region", "owner").add_argument("--name", required=True, help="workstation name")

    hold = command("hold", "keep a workstation up: autostop leaves it running", _hold, "named", "owner")
    hold.add_argument("--hours", type=float,
                      help="for this many hours (default: until `release`; the workstation ends any hold after its limit, "
                           "72 h unless IT set autostop_hold_max_hours)")
    command("release", "end your hold", _release, "named")

    destroy = command("destroy", "delete a workstation, everything gpubox created for it, and its SSH entry", _destroy,
                      "region", "owner")
    destroy.add_argument("--local", action="store_true", help="the local container workstation")
    destroy.add_argument("--name", help="workstation name (default: local for --local)")
    destroy.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    destroy.add_argument("--no-snapshot", action="store_true",
                         help="delete the disks for good (default: keep a final snapshot of each, taken before anything is deleted)")

    kept = command("snapshots", "your workstations' snapshots (what destroy keeps): list, or prune old ones", _snapshots, "region")
    kept.add_argument("action", choices=["list", "prune"],
                      help="list them, or delete all but the newest --keep of each disk of each workstation")
    kept.add_argument("--name", help="only this workstation's")
    kept.add_argument("--keep", type=int, help="prune: how many snapshots of each workstation's disk to keep (the newest)")
    kept.add_argument("--dry-run", action="store_true", help="prune: only list what would be deleted")
    kept.add_argument("--yes", action="store_true", help="prune: do not ask for confirmation")
    sweep = command("cleanup", "snapshot and destroy workstations stopped longer than autostop_stopped_days (for IT, or yourself)",
                    _cleanup, "region", "owner")
    sweep.add_argument("--days", type=int, help="stopped longer than this many days (default: autostop_stopped_days, 14)")
    sweep.add_argument("--dry-run", action="store_true", help="only list what would be snapshotted and deleted")
    sweep.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    paper = command("plan", "a one-page plan for your manager and IT: what is created, cost, controls (no AWS call)",
                    _plan, "region")
    paper.add_argument("--name", help="workstation name (default: your login name)")
    paper.add_argument("--instance-type", default="g4dn.xlarge", help="default: g4dn.xlarge (one T4 GPU)")
    paper.add_argument("--ami", default="", help="image ID (default: the latest Debian 13)")
    paper.add_argument("--disk-gb", type=int, default=100, help="root disk in GB, encrypted gp3 (default: 100)")
    paper.add_argument("--spot", action="store_true", help="price a spot instance")
    paper.add_argument("--allow-cidr", help="who may SSH in (default: your public address /32, looked up at provision time)")
    paper.add_argument("--idle-stop", type=int, metavar="MINUTES", help="idle minutes before autostop (default 60; 0 never)")
    paper.add_argument("--hours-per-day", type=float, default=8.0, help="hours of use a day, for the expected cost (default: 8)")
    paper.add_argument("--data", action="append", metavar="s3://BUCKET[/PREFIX][:rw]", help="S3 access as for provision --data")
    for made in (paper, command("report", "evidence read from a running workstation over SSH, for IT", _report, "named", "region")):
        made.add_argument("--inventory", type=Path, help="IT's inventory: its group_vars override the roles' defaults")
        made.add_argument("--output", type=Path, help="file to write (default: gpubox-plan-NAME.html or gpubox-report-NAME.html here)")
        made.add_argument("--format", choices=document.FORMATS, default="html", help="html (default, self-contained) or md")

    _image_parser(command("image", "baked images: site.yml once into an AMI or a local image, for fast workstations",
                          _image))

    doctor = command("doctor", "check AWS credentials, quota, region and SSH before spending money", _doctor, "region")
    doctor.add_argument("--instance-type", default="g4dn.xlarge", help="the type you plan to use (default: g4dn.xlarge)")
    doctor.add_argument("--key", type=Path, help="the SSH key you plan to use")
    return parser


def _image_parser(made: argparse.ArgumentParser) -> None:
    actions = made.add_subparsers(dest="action", required=True, metavar="ACTION")
    region = _parents()["region"]
    build = actions.add_parser("build", parents=[_parents()["target"], region],
                               help="launch a builder, converge, verify and clean it, and image it")
    build.set_defaults(name="default")
    build.add_argument("--instance-type", default="g4dn.xlarge", help="the builder's type (default: g4dn.xlarge)")
    build.add_argument("--ami", default="", help="base image ID (default: the latest image of --os from its publisher)")
    build.add_argument("--os", default=images.DEFAULT_OS, metavar="|".join(images.OPERATING_SYSTEMS))
    build.add_argument("--deadman-minutes", type=int, default=deadman.DEFAULT_MINUTES, metavar="MINUTES",
                       help="the builder powers itself off this long after boot unless configured")
    build.add_argument("--disk-gb", type=int, default=100, help="root disk in GB (default: 100)")
    build.add_argument("--allow-cidr", help="who may SSH into the builder (default: this machine's public address /32)")
    build.add_argument("--connect", metavar="HOST:PORT", help="reach the builder here instead of its public address")
    build.add_argument("--yes", action="store_true", help="do not ask before opening SSH to the whole internet")
    listed = actions.add_parser("list", parents=[region], help="your baked images (AMIs; --local: podman images)")
    prune = actions.add_parser("prune", parents=[region], help="deregister your baked AMIs beyond the newest N of each series")
    prune.add_argument("--keep", type=int, required=True, help="how many of each series to keep")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    prune.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for action in (listed, prune):
        action.add_argument("--any-owner", action="store_true", help="everyone's gpubox images, not only yours (for IT)")
    listed.add_argument("--local", action="store_true", help="the local baked images")


def _image(args: argparse.Namespace) -> int:
    if args.action == "build" and args.local:
        made = bake.build_local(targets.check_name(args.name), args.release, sys.stdout, key=args.key)
        print(f"\nBaked {made.ref}: TensorFlow {made.labels[f'{bake.LABEL}.tensorflow']}, "
              f"audit {made.labels[f'{bake.LABEL}.audit']}.\nNext: python runner.py provision --local --image {args.name}")
        return 0
    if args.action == "build":
        if args.host:
            raise GpuboxError("image build runs on EC2 (or --local); an existing --host is not imaged.", "Drop --host.",
                              exit_code=2)
        cloud = provision.Cloud(instance_type=args.instance_type, ami=args.ami, disk_gb=args.disk_gb, allow_cidr=args.allow_cidr,
                                connect=args.connect, yes=args.yes, os=args.os, deadman_minutes=args.deadman_minutes)
        built = image.build_ec2(targets.check_name(args.name), _options(provision.Target, args), cloud, sys.stdout)
        print(f"\nBaked {built.image_id} ({built.name}): TensorFlow {built.tags['gpubox:tensorflow']}, "
              f"driver {built.tags['gpubox:driver']}, audit {built.tags['gpubox:audit']}."
              f"\nNext: python runner.py provision --image {built.image_id}")
        return 0
    if args.action == "list" and args.local:
        for line in bake.local_lines():
            print(line)
        return 0
    if args.action == "list":
        found = image.listing(args.region, everyone=args.any_owner)
        for item in found:
            print(item.line())
        if not found:
            print(f"No baked gpubox images{'' if args.any_owner else ' of yours'}; `python runner.py image build` makes one.")
        return 0
    pruned = image.plan_prune(args.region, args.keep, everyone=args.any_owner)
    for item in pruned.removed:
        owner = f", owner {item.owner or '?'}" if args.any_owner else ""
        print(f"{'Would deregister' if args.dry_run else 'Deregisters'} {item.image_id} ({item.series}, {item.created[:19]}{owner}) "
              f"and deletes its snapshots {', '.join(item.snapshots) or 'none'}")
    if args.dry_run or not pruned.removed:
        print(f"Kept {len(pruned.kept)} baked image(s) in {pruned.region}; {len(pruned.removed)} would be deregistered"
              f"{'' if pruned.removed else ' (nothing to prune)'}.")
        return 0
    if not args.yes and not _typed("prune", "deregister images"):
        print("Not confirmed; nothing was deleted.")
        return 1
    image.run_prune(pruned)
    print(f"Kept {len(pruned.kept)} baked image(s) in {pruned.region}; {len(pruned.removed)} deregistered.")
    return 0


def _options(kind: type, args: argparse.Namespace) -> Any:
    """The dataclass of a command's options, from the parsed arguments of the same names."""
    return kind(**{field.name: getattr(args, field.name) for field in dataclasses.fields(kind)})


def _print_configured(done: provision.Configured, *, check: bool = False) -> None:
    verb = "would change" if check else "changed"
    print(f"\nDone in {done.run.seconds:.0f}s: {sum(done.run.changed.values())} {verb}. Full log: {done.run.log_path}")


def _configure(args: argparse.Namespace) -> int:
    tags, check = getattr(args, "tags", None), getattr(args, "check", False)
    done = provision.configure(_options(provision.Target, args), sys.stdout, tags=tags, check=check,
                               image=getattr(args, "image", ""))
    _print_configured(done, check=check)
    if not check:
        name = done.connection.alias.removeprefix(contract.RESOURCE_PREFIX)
        print(f"\nLog in with:\n    ssh {done.connection.alias}\n(or: python runner.py ssh --name {name})")
    return 0


def _provision(args: argparse.Namespace) -> int:
    if (args.local or args.host) and args.data:
        raise GpuboxError("--data gives an EC2 workstation an instance role; --local and --host machines have none.",
                          "Drop --data, or provision on EC2 (without --local/--host).", exit_code=2)
    if args.host and args.image:
        raise GpuboxError("--image starts a new machine from a baked image; an existing --host is configured as it is.",
                          "Drop --image, or use --local or EC2.", exit_code=2)
    if args.local or args.host:
        return _configure(args)
    plan = provision.plan_ec2(_options(provision.Target, args), _options(provision.Cloud, args))
    print("Would create:" if args.dry_run else "Creating (or finding):")
    for line in plan.lines:
        print(f"  - {line}")
    if args.dry_run:
        print("Dry run: nothing was created.")
        return 0
    if plan.open_to_everyone:
        print(f"warning: --allow-cidr {plan.request.allow_cidr} lets the whole internet try to log in over SSH.", file=sys.stderr)
    done = provision.provision_ec2(plan, sys.stdout)
    _print_configured(done)
    print(f"\nNext: python runner.py tunnel --name {plan.request.name}   (JupyterLab in your browser)\n      ssh {done.connection.alias}")
    return 0


def _status(args: argparse.Namespace) -> int:
    if args.json:
        document = workstations.as_document(args.region, args.name, local_only=args.local, everyone=args.all)
        print(json.dumps(document, indent=2))
        return 0
    for line in workstations.text(args.region, args.name, local_only=args.local, everyone=args.all):
        print(line, flush=True)
    return 0


def _stop(args: argparse.Namespace) -> int:
    item = lifecycle.stop(args.region, args.name, sys.stdout, any_owner=args.any_owner)
    print(f"{item.name} is {item.state}.")
    print(f"The disk and your data stay; `python runner.py start --name {item.name}` brings it back.")
    return 0


def _start(args: argparse.Namespace) -> int:
    started = lifecycle.start(args.region, args.name, sys.stdout, any_owner=args.any_owner)
    print(f"{started.workstation.name} is {started.workstation.state}.")
    if started.ssh_updated:
        print(f"SSH entry updated: ssh {targets.alias(started.workstation.name)} now reaches {started.workstation.public_ip}.")
    return 0


def _plan(args: argparse.Namespace) -> int:
    request = document.plan_request(args.name, args.region, instance_type=args.instance_type, ami=args.ami,
                                    disk_gb=args.disk_gb, spot=args.spot, allow_cidr=args.allow_cidr,
                                    hours_per_day=args.hours_per_day, data=data_access.parse_all(args.data))
    made = document.make_plan(request, idle_stop=args.idle_stop, inventory=args.inventory)
    written = document.write(made, args.format, args.output, f"gpubox-plan-{request.name}")
    print(f"{made.summary}\nWrote {written.path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    made = document.make_report(args.name, region=args.region, inventory=args.inventory)
    written = document.write(made, args.format, args.output, f"gpubox-report-{args.name}")
    print(f"{made.summary}\nWrote {written.path}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    checks = aws.doctor(args.region, args.instance_type, args.key)
    if checks[0].ok:  # with credentials: a stable owner, the IAM rights and the boundary provision --data needs
        checks += [ownership.doctor(args.region), data_role.doctor(args.region), data_role.boundary_doctor(args.region)]
    for check in checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"       -> {check.fix}")
    failed = [check for check in checks if not check.ok]
    print("\nAll checks passed." if not failed else f"\n{len(failed)} problem(s) to fix before provisioning.")
    return 0 if not failed else 1


def _hold(args: argparse.Namespace) -> int:
    held = session.hold(args.name, args.hours, any_owner=args.any_owner)
    print(f"{held.alias} is held{' until ' + held.until if held.until else ' until you release it'}: autostop leaves it running.")
    return 0


def _release(args: argparse.Namespace) -> int:
    print(f"Released your hold on {session.release(args.name)}: autostop may stop it once it is idle.")
    return 0


def _ssh(args: argparse.Namespace) -> int:
    session.login(args.name, args.remote)  # replaces this process


def _tunnel(args: argparse.Namespace, *, browse: bool = False) -> int:
    opened = session.open_tunnel(args.name, args.user, args.local_port)
    # The token is printed here because the user asked for the tunnel: this is how they open Jupyter.
    print(f"JupyterLab of {opened.endpoint.user} on {opened.alias}, through an SSH tunnel:\n\n    {opened.url}\n\n"
          f"{'Opening it in your browser.' if browse else 'Open it in your browser.'} "
          "Keep this running; Ctrl-C closes the tunnel.", flush=True)
    if browse:
        opener.open_when_up(opened.url, opened.local_port, sys.stdout)
    return session.keep_tunnel(opened, sys.stdout)


def _notebook(args: argparse.Namespace) -> int:
    return _tunnel(args, browse=True)


def _confirmed(name: str) -> bool:
    """The user types the workstation's name; without a terminal to ask on, --yes is required."""
    if not sys.stdin.isatty():
        raise GpuboxError("Refusing to destroy without confirmation.", "Re-run with --yes to confirm.", exit_code=2)
    return input(f"Type the workstation name ({name}) to confirm: ").strip() == name


def _destroy(args: argparse.Namespace) -> int:
    if args.local:
        name = targets.check_name(args.name or "local")
        print(f"This deletes the local container {targets.alias(name)} with everything stored in it, and its SSH entry.")
        if not args.yes and not _confirmed(name):
            print("Not confirmed; nothing was deleted.")
            return 1
        gone = lifecycle.destroy_local(name)
        print(f"Deleted {targets.alias(name)}." if gone else f"There was no workstation {targets.alias(name)}; nothing to delete.")
        return 0
    plan = lifecycle.plan_destroy(args.name, args.region, any_owner=args.any_owner, snapshot=not args.no_snapshot)
    if plan.empty:
        print(f"Nothing tagged for workstation '{plan.name}' in {plan.region}; nothing to delete.")
        return 0
    print(f"{'Would delete' if args.dry_run else 'This deletes'} (only resources gpubox tagged for '{plan.name}' in {plan.region}):")
    for kind, items in plan.resources.items():
        for item in items:
            print(f"  - {kind}: {item}")
    if plan.kept:
        print("First it stops the instance and keeps, completed before anything is deleted:")
        for line in plan.kept:
            print(f"  - {line}")
    elif plan.disks:
        but = " (except those marked NOT deleted)" if any(not disk.deleted for disk in plan.disks) else ""
        print(f"--no-snapshot: no snapshot is taken; the volumes above{but} and everything on them are deleted for good.")
    if args.dry_run:
        print("Dry run: nothing was deleted.")
        return 0
    if not args.yes and not _confirmed(plan.name):
        print("Not confirmed; nothing was deleted.")
        return 1
    lifecycle.destroy_ec2(plan, sys.stdout)
    if plan.in_aws:
        print(f"Deleted workstation {plan.name}.")
    else:
        print(f"Removed the SSH entry of {plan.name}; AWS has nothing tagged for it in {plan.region} "
              "(if it runs in another region, destroy it there with --region).")
    return 0


def _typed(word: str, what: str) -> bool:
    if not sys.stdin.isatty():
        raise GpuboxError(f"Refusing to {what} without confirmation.", "Re-run with --yes to confirm.", exit_code=2)
    return input(f"Type {word} to confirm: ").strip() == word


def _snapshots(args: argparse.Namespace) -> int:
    if args.action == "list":
        lines = retention.listing(args.region, args.name)
        print("\n".join(lines) if lines else "You have no gpubox snapshots there.")
        return 0
    if args.keep is None:
        raise GpuboxError("snapshots prune needs --keep N.", "Example: python runner.py snapshots prune --keep 2", exit_code=2)
    plans = retention.plan_prune(args.region, args.name, args.keep)
    doomed = [(plan.region, snap) for plan in plans for snap in plan.doomed]
    if not doomed:
        print(f"Nothing to prune: no workstation of yours has more than {args.keep} snapshot(s).")
        return 0
    print(f"{'Would delete' if args.dry_run else 'This deletes'} for good "
          f"(keeping the newest {args.keep} of each disk of each workstation):")
    for region, snap in doomed:
        print(f"  - snapshot {snap.line()} in {region}")
    if args.dry_run:
        print("Dry run: nothing was deleted.")
        return 0
    if not args.yes and not _typed("prune", "delete snapshots"):
        print("Not confirmed; nothing was deleted.")
        return 1
    print(f"Deleted {retention.prune(plans)} snapshot(s).")
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    planned = retention.plan_cleanup(args.region, args.days, any_owner=args.any_owner)
    whose = "" if args.any_owner else " of yours"
    if args.any_owner:
        print(f"Every owner's workstations, {regions.searched(planned.regions)}.")
    if not planned.overdue:
        print(f"No workstation{whose} has been stopped longer than {planned.days} days.")
        return 0
    print(f"Stopped longer than {planned.days} days{whose}: each gets a final snapshot of its disks, then "
          f"{'would be' if args.dry_run else 'is'} deleted:")
    for entry, plan in zip(planned.overdue, planned.plans):
        print(f"  {plan.name} ({plan.region}), stopped since {entry.since:%Y-%m-%d %H:%M} UTC, owner {entry.workstation.owner or '?'}:")
        for kind, items in plan.resources.items():
            for item in items:
                print(f"    - deletes {kind}: {item}")
        for line in plan.kept:
            print(f"    - keeps {line}")
    if args.dry_run:
        print("Dry run: nothing was deleted.")
        return 0
    if not args.yes and not _typed("cleanup", "clean up"):
        print("Not confirmed; nothing was deleted.")
        return 1
    done = retention.run_cleanup(planned, sys.stdout)
    print(f"\nCleaned up {len(done)}: {', '.join(done)}. `python runner.py snapshots list` shows what was kept.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GpuboxError as exc:
        print(f"\nerror: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"  -> {exc.fix}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the last line of defence: a readable message, not a traceback)
        if args.debug:
            traceback.print_exc()
        print(f"\nerror: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        print("  -> Re-run with --debug for details, and include them when you report the problem.", file=sys.stderr)
        return 1
