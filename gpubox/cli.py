"""`python runner.py ...`: parses arguments and prints results; the work happens elsewhere."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from gpubox import containers, ssh, targets, tunnel, workstation
from gpubox.errors import GpuboxError

EXAMPLES = {
    "provision": "examples:\n  python runner.py provision --local\n"
                 "  python runner.py provision --host 203.0.113.10 --user ubuntu --key ~/.ssh/id_ed25519 --name alice",
    "configure": "examples:\n  python runner.py configure --local\n  python runner.py configure --local --tags base --check",
    "ssh": "examples:\n  python runner.py ssh\n  python runner.py ssh --name alice -- nvidia-smi",
    "tunnel": "examples:\n  python runner.py tunnel\n  python runner.py tunnel --name alice --local-port 8888",
    "destroy": "examples:\n  python runner.py destroy --local\n  python runner.py destroy --local --name demo --yes",
}


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", action="store_true", help="a local podman container as the workstation")
    where.add_argument("--host", metavar="HOST", help="an existing machine reachable over SSH")
    parser.add_argument("--name", help="workstation name (default: 'local' for --local, else derived from --host)")
    parser.add_argument("--release", choices=containers.RELEASES, default="debian12", help="image of the local container")
    parser.add_argument("--user", default="admin", help="login user with sudo on --host (default: admin)")
    parser.add_argument("--port", type=int, default=22, help="SSH port of --host (default: 22)")
    parser.add_argument("--key", type=Path, help="private key to log in with (default: ~/.ssh/id_ed25519 or a new one)")


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
    _add_target_options(provision)

    configure = sub.add_parser("configure", help="re-apply site.yml to an existing workstation",
                               epilog=EXAMPLES["configure"], formatter_class=formatter)
    _add_target_options(configure)
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

    destroy = sub.add_parser("destroy", help="delete a local workstation and its SSH entry",
                             epilog=EXAMPLES["destroy"], formatter_class=formatter)
    destroy.add_argument("--local", action="store_true", required=True, help="the local container workstation")
    destroy.add_argument("--name", default="local", help="workstation name (default: local)")
    destroy.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _connection(args: argparse.Namespace) -> ssh.Connection:
    if args.local:
        name = args.name or "local"
        print(f"Starting local workstation '{name}' ({args.release} container)...", flush=True)
        return targets.local(name, args.release, args.key)
    name = args.name or targets.derive_name(args.host)
    return targets.host(name, args.host, args.user, args.port, args.key)


def _configure(args: argparse.Namespace, *, tags: str | None = None, check: bool = False) -> int:
    connection = _connection(args)
    extravars = workstation.local_extravars() if args.local else {}
    print(f"Configuring {connection.alias} ({connection.user}@{connection.address}:{connection.port}) with site.yml",
          flush=True)
    result = workstation.configure(connection, sys.stdout, extravars=extravars, tags=tags, check=check)
    changes = sum(result.changed.values())
    verb = "would change" if check else "changed"
    print(f"\nDone in {result.seconds:.0f}s: {changes} {verb}. Full log: {result.log_path}")
    if not check:
        print(f"\nLog in with:\n    ssh {connection.alias}\n(or: python runner.py ssh --name {connection.alias.removeprefix('gpubox-')})")
    return 0


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
    name = targets.check_name(args.name)
    alias = targets.alias(name)
    print(f"This deletes the local container {alias} with everything stored in it, and its SSH entry.")
    if not args.yes:
        if not sys.stdin.isatty():
            raise GpuboxError("Refusing to destroy without confirmation.", "Re-run with --yes to confirm.", exit_code=2)
        if input(f"Type the workstation name ({name}) to confirm: ").strip() != name:
            print("Not confirmed; nothing was deleted.")
            return 1
    removed = targets.remove_local(name)
    entry_removed = ssh.remove_config_entry(alias)
    print(f"Deleted {alias}." if removed or entry_removed else f"There was no workstation {alias}; nothing to delete.")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "provision":
            return _configure(args)
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
