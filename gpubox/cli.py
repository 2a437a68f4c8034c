"""`python runner.py ...`: parses arguments and prints results; the work happens elsewhere."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

import dataclasses
import subprocess
from datetime import datetime, timedelta, timezone

from gpubox import aws, containers, ec2, ssh, targets, tunnel, workstation
from gpubox.errors import GpuboxError

HOLDS_DIR = "/var/lib/gpubox/holds"
EXAMPLES = {
    "provision": "examples:\n  python runner.py provision                       # a g4dn.xlarge on EC2, SSH from your address only\n"
                 "  python runner.py provision --instance-type g5.xlarge --region eu-west-1 --spot\n"
                 "  python runner.py provision --dry-run            # what it would create\n"
                 "  python runner.py provision --local\n"
                 "  python runner.py provision --host 203.0.113.10 --user ubuntu --key ~/.ssh/id_ed25519 --name alice",
    "status": "examples:\n  python runner.py status\n  python runner.py status --region eu-west-1",
    "stop": "examples:\n  python runner.py stop --name alice",
    "start": "examples:\n  python runner.py start --name alice",
    "hold": "examples:\n  python runner.py hold --name alice --hours 12   # a long training run\n  python runner.py hold --name alice",
    "release": "examples:\n  python runner.py release --name alice",
    "doctor": "examples:\n  python runner.py doctor\n  python runner.py doctor --instance-type g5.xlarge --region eu-west-1",
    "configure": "examples:\n  python runner.py configure --local\n  python runner.py configure --local --tags base --check",
    "ssh": "examples:\n  python runner.py ssh\n  python runner.py ssh --name alice -- nvidia-smi",
    "tunnel": "examples:\n  python runner.py tunnel\n  python runner.py tunnel --name alice --local-port 8888",
    "destroy": "examples:\n  python runner.py destroy --name alice --dry-run\n  python runner.py destroy --name alice\n"
               "  python runner.py destroy --local --name demo --yes",
}


def _add_target_options(parser: argparse.ArgumentParser, *, ec2_default: bool = False) -> None:
    where = parser.add_mutually_exclusive_group(required=not ec2_default)
    where.add_argument("--local", action="store_true", help="a local podman container as the workstation")
    where.add_argument("--host", metavar="HOST", help="an existing machine reachable over SSH")
    parser.add_argument("--name", help="workstation name (default: 'local' for --local, else derived from --host)")
    parser.add_argument("--release", choices=containers.RELEASES, default="debian12", help="image of the local container")
    parser.add_argument("--user", help="login user with sudo (default: admin; ubuntu on EC2)")
    parser.add_argument("--port", type=int, default=22, help="SSH port of --host (default: 22)")
    parser.add_argument("--key", type=Path, help="private key to log in with (default: ~/.ssh/id_ed25519 or a new one)")
    parser.add_argument("--idle-stop", type=int, metavar="MINUTES",
                        help="power the workstation off after this many idle minutes (default 60; 0 never)")
    parser.add_argument("--trust-local-cas", action="store_true",
                        help="make the workstation trust this machine's extra CAs (/usr/local/share/ca-certificates), "
                             "for a TLS-inspecting proxy between both and the internet (always on for --local)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python runner.py",
        description="gpubox: a hardened GPU workstation, ready for data science.",
        epilog="Run `python runner.py COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    provision = sub.add_parser("provision", help="create (or find) a workstation and configure it",
                               epilog=EXAMPLES["provision"], formatter_class=formatter)
    _add_target_options(provision, ec2_default=True)
    cloud = provision.add_argument_group("EC2 (when neither --local nor --host is given)")
    cloud.add_argument("--instance-type", default="g4dn.xlarge", help="default: g4dn.xlarge (one T4 GPU)")
    cloud.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1)")
    cloud.add_argument("--ami", default="", help="image ID (default: the latest Ubuntu 24.04, from AWS's public SSM parameter)")
    cloud.add_argument("--disk-gb", type=int, default=100, help="root disk in GB, encrypted gp3 (default: 100)")
    cloud.add_argument("--spot", action="store_true", help="a spot instance: cheaper, but AWS can interrupt it")
    cloud.add_argument("--allow-cidr", help="who may SSH in (default: this machine's public address /32)")
    cloud.add_argument("--connect", metavar="HOST:PORT",
                       help="reach the instance here instead of its public address (a port-forward, a private address)")
    cloud.add_argument("--dry-run", action="store_true", help="only list what would be created")
    cloud.add_argument("--yes", action="store_true", help="do not ask before opening SSH to the whole internet")

    configure = sub.add_parser("configure", help="re-apply site.yml to an existing workstation",
                               epilog=EXAMPLES["configure"], formatter_class=formatter)
    _add_target_options(configure, ec2_default=True)
    configure.add_argument("--region", help="AWS region of an EC2 workstation (given by --name)")
    configure.add_argument("--tags", help="only these Ansible tags, e.g. base_time")
    configure.add_argument("--check", action="store_true", help="show what would change, change nothing")

    login = sub.add_parser("ssh", help="log in to a workstation", epilog=EXAMPLES["ssh"], formatter_class=formatter)
    login.add_argument("--name", default="local", help="workstation name (default: local)")
    login.add_argument("remote", nargs=argparse.REMAINDER, help="command to run instead of a shell (after --)")

    tunnel_parser = sub.add_parser("tunnel", help="open JupyterLab through an SSH tunnel (until Ctrl-C)",
                                   epilog=EXAMPLES["tunnel"], formatter_class=formatter)
    tunnel_parser.add_argument("--name", default="local", help="workstation name (default: local)")
    tunnel_parser.add_argument("--user", help="your account on the workstation (default: the one `ssh gpubox-NAME` uses)")
    tunnel_parser.add_argument("--local-port", type=int, help="local port (default: the same as on the workstation, if free)")

    status = sub.add_parser("status", help="the workstations, as AWS sees them now", epilog=EXAMPLES["status"],
                            formatter_class=formatter)
    status.add_argument("--name", help="only this workstation")
    status.add_argument("--region", help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or us-east-1)")
    for verb, text in (("stop", "stop a workstation (the disk and your data stay)"), ("start", "start a stopped workstation")):
        command = sub.add_parser(verb, help=text, epilog=EXAMPLES[verb], formatter_class=formatter)
        command.add_argument("--name", required=True, help="workstation name")
        command.add_argument("--region", help="AWS region")

    hold = sub.add_parser("hold", help="keep a workstation up: autostop leaves it running", epilog=EXAMPLES["hold"],
                          formatter_class=formatter)
    hold.add_argument("--name", default="local", help="workstation name (default: local)")
    hold.add_argument("--hours", type=float, help="for this many hours (default: until `release`)")
    release = sub.add_parser("release", help="end your hold", epilog=EXAMPLES["release"], formatter_class=formatter)
    release.add_argument("--name", default="local", help="workstation name (default: local)")

    destroy = sub.add_parser("destroy", help="delete a workstation, everything gpubox created for it, and its SSH entry",
                             epilog=EXAMPLES["destroy"], formatter_class=formatter)
    destroy.add_argument("--local", action="store_true", help="the local container workstation")
    destroy.add_argument("--name", help="workstation name (default: local for --local)")
    destroy.add_argument("--region", help="AWS region")
    destroy.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    doctor = sub.add_parser("doctor", help="check AWS credentials, quota, region and SSH before spending money",
                            epilog=EXAMPLES["doctor"], formatter_class=formatter)
    doctor.add_argument("--region", help="AWS region")
    doctor.add_argument("--instance-type", default="g4dn.xlarge", help="the type you plan to use (default: g4dn.xlarge)")
    doctor.add_argument("--key", type=Path, help="the SSH key you plan to use")
    return parser


def _connection(args: argparse.Namespace) -> ssh.Connection:
    if not args.local and not args.host:
        return _ec2_connection(args)
    if args.local:
        name = args.name or "local"
        print(f"Starting local workstation '{name}' ({args.release} container)...", flush=True)
        return targets.local(name, args.release, args.key)
    name = args.name or targets.derive_name(args.host)
    return targets.host(name, args.host, args.user or "admin", args.port, args.key)


def _configure(args: argparse.Namespace, *, tags: str | None = None, check: bool = False) -> int:
    connection = _connection(args)
    extravars = {**(workstation.local_extravars() if args.local or args.trust_local_cas else {}), **_idle_stop_vars(args)}
    print(f"Configuring {connection.alias} ({connection.user}@{connection.address}:{connection.port}) with site.yml",
          flush=True)
    result = workstation.configure(connection, sys.stdout, extravars=extravars, tags=tags, check=check)
    changes = sum(result.changed.values())
    verb = "would change" if check else "changed"
    print(f"\nDone in {result.seconds:.0f}s: {changes} {verb}. Full log: {result.log_path}")
    if not check:
        print(f"\nLog in with:\n    ssh {connection.alias}\n(or: python runner.py ssh --name {connection.alias.removeprefix('gpubox-')})")
    return 0


def _provision_ec2(args: argparse.Namespace) -> int:
    name = targets.check_name(args.name or workstation.owner_name())
    region = aws.region_name(args.region)
    if args.disk_gb < 30:
        raise GpuboxError(f"--disk-gb {args.disk_gb} is too small for the driver, CUDA and TensorFlow.", "Use at least 30 (default 100).", exit_code=2)
    connect_host, connect_port = _parse_connect(args.connect)
    allow = args.allow_cidr or ("203.0.113.1/32 (your public address, looked up at run time)" if args.dry_run else ec2.caller_cidr())
    # A dry run creates nothing, not even a key.
    key = args.key or ssh.ssh_dir() / "gpubox_ed25519" if args.dry_run else ssh.ensure_key(args.key)
    request = ec2.Request(name=name, region=region, instance_type=args.instance_type, disk_gb=args.disk_gb, spot=args.spot,
                          allow_cidr=allow, ami=args.ami, key=key, owner=workstation.owner_name())
    print(("Would create:" if args.dry_run else "Creating (or finding):"))
    for line in ec2.plan(request):
        print(f"  - {line}")
    if args.dry_run:
        print("Dry run: nothing was created.")
        return 0
    if allow.endswith("/0"):
        print(f"warning: --allow-cidr {allow} lets the whole internet try to log in over SSH.", file=sys.stderr)
        if not args.yes:
            raise GpuboxError("Refusing to open SSH to everyone without confirmation.", "Re-run with --yes, or narrow --allow-cidr.", exit_code=2)
    if args.spot:
        print("note: a spot instance can be interrupted by AWS at two minutes' notice; save your work often.")
    created = ec2.provision(request, sys.stdout)
    address = connect_host or created["public_ip"]
    if not address:
        raise GpuboxError(f"Instance {created['instance_id']} has no public address.", "Reach it some other way and pass --connect HOST:PORT.")
    ec2.save_record(name, {"region": region, "instance_id": created["instance_id"], "connect": args.connect or "",
                           "user": args.user or "ubuntu", "key": str(key)})
    connection = ssh.Connection(alias=targets.alias(name), address=address, port=connect_port or 22, user=args.user or "ubuntu", key=key)
    print(f"\nInstance {created['instance_id']} is {created['state']}; configuring it over SSH ({address}:{connection.port}).", flush=True)
    result = workstation.configure(connection, sys.stdout,
                                   extravars={**(workstation.local_extravars() if args.trust_local_cas else {}), **_idle_stop_vars(args)})
    print(f"\nDone in {result.seconds:.0f}s: {sum(result.changed.values())} changed. Full log: {result.log_path}")
    print(f"\nNext: python runner.py tunnel --name {name}   (JupyterLab in your browser)\n      ssh {connection.alias}")
    return 0


def _ec2_connection(args: argparse.Namespace) -> ssh.Connection:
    """An EC2 workstation provisioned from this machine: reached as recorded, or at its current address."""
    if not args.name:
        raise GpuboxError("Which workstation? Pass --local, --host HOST, or --name of an EC2 workstation.",
                          "See `python runner.py status` for the names.", exit_code=2)
    name = targets.check_name(args.name)
    record = ec2.load_record(name)
    if not record:
        raise GpuboxError(f"This machine did not provision a workstation named '{name}'.",
                          "Provision it with `python runner.py provision --name NAME`, or use --host for any SSH host.")
    host, port = _parse_connect(record.get("connect"))
    if not host:
        host, port = aws.one(args.region or record.get("region"), name).public_ip, 22
    return ssh.Connection(alias=targets.alias(name), address=host, port=port, user=args.user or record.get("user", "ubuntu"),
                          key=Path(record.get("key") or ssh.ensure_key(args.key)))


def _idle_stop_vars(args: argparse.Namespace) -> dict:
    if args.idle_stop is None:
        return {}
    if args.idle_stop < 0:
        raise GpuboxError(f"--idle-stop {args.idle_stop} is negative.", "Give minutes (60 is the default), or 0 to never stop.", exit_code=2)
    return {"autostop_idle_minutes": args.idle_stop}


def hold_command(until: str) -> str:
    """Shell line placing the caller's hold: a new file of theirs (any name in the sticky directory
    may be taken by someone else; autostop attributes holds by owner), then their older ones removed."""
    return (f'hold=$(mktemp {HOLDS_DIR}/"$(id -un)".XXXXXX) && printf "%s\\n" "{until}" > "$hold" && '
            f'find {HOLDS_DIR} -maxdepth 1 -type f -user "$(id -u)" ! -path "$hold" -delete')


def release_command() -> str:
    """Shell line removing every hold of the caller's (the sticky bit leaves others' alone)."""
    return f'find {HOLDS_DIR} -maxdepth 1 -type f -user "$(id -u)" -delete'


def _hold(args: argparse.Namespace) -> int:
    alias = targets.alias(targets.check_name(args.name))
    if not ssh.config_entry_path(alias).exists():
        raise GpuboxError(f"No workstation named '{args.name}' is set up on this machine.", "See `python runner.py status`.")
    if args.command == "hold":
        if args.hours is not None and args.hours <= 0:
            raise GpuboxError(f"--hours {args.hours} is not a duration.", "Give hours, e.g. --hours 8, or leave it out.", exit_code=2)
        until = (datetime.now(timezone.utc) + timedelta(hours=args.hours)).strftime("%Y-%m-%dT%H:%M:%SZ") if args.hours else ""
        remote = hold_command(until)
        said = f"{alias} is held{' until ' + until if until else ' until you release it'}: autostop leaves it running."
    else:
        remote = release_command()
        said = f"Released your hold on {alias}: autostop may stop it once it is idle."
    result = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", alias, remote],
                            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise GpuboxError(f"Could not reach {alias}: {result.stderr.strip()}", "Check `python runner.py status`; is it running?")
    print(said)
    return 0


def _parse_connect(value: str | None) -> tuple[str, int]:
    if not value:
        return "", 0
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise GpuboxError(f"--connect {value} is not HOST:PORT.", "Example: --connect 127.0.0.1:2222", exit_code=2)
    return host, int(port)


def _status(args: argparse.Namespace) -> int:
    found = aws.workstations(args.region, args.name)
    if not found:
        print(f"No gpubox workstations in {aws.region_name(args.region)}.")
        return 0
    now = datetime.now(timezone.utc)
    for item in found:
        price = item.hourly_price()
        hours = item.hours_up(now)
        cost = f", ~${price:.3f}/h, ~${price * hours:.2f} since started" if price is not None else ", price unknown"
        up = f", up {hours:.1f} h" if item.state == "running" else ""
        print(f"{item.name}: {item.state}, {item.instance_type} in {item.zone}, {item.public_ip or 'no public address'}{up}{cost}"
              f" ({item.instance_id})")
        report = workstation.report(targets.alias(item.name)) if item.state == "running" else None
        if report:
            print(f"  {report}")
    return 0


def _stop_start(args: argparse.Namespace) -> int:
    name = targets.check_name(args.name)
    verb = args.command
    print(f"{'Stopping' if verb == 'stop' else 'Starting'} {name}...", flush=True)
    item = (aws.stop if verb == "stop" else aws.start)(args.region, name)
    print(f"{name} is {item.state}.")
    if verb == "stop":
        print("The disk and your data stay; `python runner.py start --name " + name + "` brings it back.")
        return 0
    record = ec2.load_record(name)
    entry = ssh.config_entry_path(targets.alias(name))
    if entry.exists() and not record.get("connect") and item.public_ip:
        # A started instance usually has a new public address: the SSH entry follows it.
        ssh.write_config_entry(ssh.Connection(alias=targets.alias(name), address=item.public_ip, port=22,
                                              user=workstation.owner_name(), key=Path(record.get("key") or ssh.ensure_key())))
        print(f"SSH entry updated: ssh {targets.alias(name)} now reaches {item.public_ip}.")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    checks = aws.doctor(args.region, args.instance_type, args.key)
    for check in checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"       -> {check.fix}")
    failed = [check for check in checks if not check.ok]
    print("\nAll checks passed." if not failed else f"\n{len(failed)} problem(s) to fix before provisioning.")
    return 0 if not failed else 1


def _ssh(args: argparse.Namespace) -> int:
    alias = targets.alias(targets.check_name(args.name))
    if not ssh.config_entry_path(alias).exists():
        raise GpuboxError(f"No workstation named '{args.name}' is set up on this machine.",
                          "Create it with `python runner.py provision --local` (or --host).")
    remote = args.remote[1:] if args.remote[:1] == ["--"] else args.remote
    ssh.require_ssh_client()
    os.execvp("ssh", ["ssh", *ssh.client_config_args(), alias, *remote])
    return 0  # not reached


def _tunnel(args: argparse.Namespace) -> int:
    alias = targets.alias(targets.check_name(args.name))
    if not ssh.config_entry_path(alias).exists():
        raise GpuboxError(f"No workstation named '{args.name}' is set up on this machine.",
                          "Create it with `python runner.py provision --local` (or --host).")
    if args.local_port is not None and not 0 < args.local_port < 65536:
        raise GpuboxError(f"--local-port {args.local_port} is not a TCP port.", "Pass a port between 1024 and 65535.", exit_code=2)
    ssh.require_ssh_client()
    endpoint = tunnel.jupyter_endpoint(alias, args.user)
    local_port = args.local_port or tunnel.pick_local_port(endpoint.remote_port)
    # The token is printed here because the user asked for the tunnel: this is how they open Jupyter.
    print(f"JupyterLab of {endpoint.user} on {alias}, through an SSH tunnel:\n\n"
          f"    http://127.0.0.1:{local_port}/lab?token={endpoint.token}\n\n"
          "Open it in your browser. Keep this running; Ctrl-C closes the tunnel.", flush=True)
    return tunnel.keep_tunnel(alias, endpoint, local_port, sys.stdout)


def _destroy(args: argparse.Namespace) -> int:
    if not args.local:
        return _destroy_ec2(args)
    name = targets.check_name(args.name or "local")
    alias = targets.alias(name)
    print(f"This deletes the local container {alias} with everything stored in it, and its SSH entry.")
    if not args.yes and not _confirmed(name):
        print("Not confirmed; nothing was deleted.")
        return 1
    removed = targets.remove_local(name)
    entry_removed = ssh.remove_config_entry(alias)
    print(f"Deleted {alias}." if removed or entry_removed else f"There was no workstation {alias}; nothing to delete.")
    return 0


def _confirmed(name: str) -> bool:
    """The user types the workstation's name; without a terminal to ask on, --yes is required."""
    if not sys.stdin.isatty():
        raise GpuboxError("Refusing to destroy without confirmation.", "Re-run with --yes to confirm.", exit_code=2)
    return input(f"Type the workstation name ({name}) to confirm: ").strip() == name


def _destroy_ec2(args: argparse.Namespace) -> int:
    if not args.name:
        raise GpuboxError("destroy needs --name (or --local).", "See `python runner.py status` for the names.", exit_code=2)
    name = targets.check_name(args.name)
    region = aws.region_name(args.region)
    alias = targets.alias(name)
    resources = aws.destroy_plan(region, name)
    entry = ssh.config_entry_path(alias)
    if entry.exists():
        resources["SSH config entry"] = [str(entry)]
    if not any(resources.values()):
        print(f"Nothing tagged for workstation '{name}' in {region}; nothing to delete.")
        return 0
    print(f"{'Would delete' if args.dry_run else 'This deletes'} (only resources gpubox tagged for '{name}' in {region}):")
    for kind, items in resources.items():
        for item in items:
            print(f"  - {kind}: {item}")
    if args.dry_run:
        print("Dry run: nothing was deleted.")
        return 0
    if not args.yes and not _confirmed(name):
        print("Not confirmed; nothing was deleted.")
        return 1
    ec2.teardown(name, region, sys.stdout)
    ssh.remove_config_entry(alias)
    ec2.record_path(name).unlink(missing_ok=True)
    print(f"Deleted workstation {name}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "provision":
            return _configure(args) if args.local or args.host else _provision_ec2(args)
        if args.command == "status":
            return _status(args)
        if args.command in ("stop", "start"):
            return _stop_start(args)
        if args.command == "doctor":
            return _doctor(args)
        if args.command in ("hold", "release"):
            return _hold(args)
        if args.command == "configure":
            return _configure(args, tags=args.tags, check=args.check)
        if args.command == "ssh":
            return _ssh(args)
        if args.command == "tunnel":
            return _tunnel(args)
        return _destroy(args)
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
