"""Options several verbs share, each defined once (as SkyPilot's flags.py does): a verb's parser
names the groups it takes, and EC2 options are picked by flag from one table whose defaults are
the spec's own (commands/provision.Cloud), so a default is never typed twice."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from gpubox import containers, contract, userconfig
from gpubox.cloud import images
from gpubox.commands import env
from gpubox.commands.provision import Cloud
from gpubox.examples import EXAMPLES

SPEC = Cloud()  # every EC2 default, read from the spec


def ec2_table(who: str) -> dict[str, dict[str, Any]]:
    """Each EC2 option's argparse settings; `who` is what the option shapes ("the workstation")."""
    return {
        # None until apply_config: the config file's instance_type, else the spec's.
        "--instance-type": {"help": f"{who}'s instance type (default: instance_type from your config file, else "
                                    f"{SPEC.instance_type}, one T4 GPU)"},
        "--ami": {"default": SPEC.ami, "help": f"{who}'s image ID (default: the latest image of --os from its publisher)"},
        "--os": {"default": SPEC.os, "metavar": "|".join(images.OPERATING_SYSTEMS),
                 "help": f"operating system (default: {SPEC.os}; ubuntu-24.04 is not exercised by the test suite)"},
        "--deadman-minutes": {"type": int, "default": SPEC.deadman_minutes, "metavar": "MINUTES",
                              "help": f"{who} powers itself off this long after boot unless configuring finished "
                                      f"(default {SPEC.deadman_minutes})"},
        "--disk-gb": {"type": int, "default": SPEC.disk_gb, "help": f"root disk in GB, encrypted gp3 (default: {SPEC.disk_gb})"},
        "--spot": {"action": "store_true", "help": "a spot instance: cheaper, but AWS can interrupt it"},
        "--allow-cidr": {"action": "append", "metavar": "CIDR",
                         "help": f"who may SSH into {who}; repeatable (office and VPN). A range with more public addresses "
                                 "than a /8 needs --yes (default: allow_cidr from your config file, else this machine's "
                                 "public address /32)"},
        "--connect": {"metavar": "HOST:PORT",
                      "help": f"reach {who} here instead of its public address (a port-forward, a private address)"},
        "--data": {"action": "append", "metavar": "s3://BUCKET[/PREFIX][:rw]",
                   "help": "S3 data the workstation may read (or also write, with :rw) through its instance role; repeatable; "
                           "replaces the access an earlier --data gave (default: data from your config file)"},
    }


def add_ec2(group: Any, *options: str, who: str = "the workstation", **helps: str) -> None:
    """Add these EC2 options (by flag) to a parser or argument group; `helps` overrides a help text
    by the option's attribute name (instance_type="...")."""
    table = ec2_table(who)
    for option in options:
        settings = dict(table[option])
        settings["help"] = helps.get(option.removeprefix("--").replace("-", "_"), settings["help"])
        group.add_argument(option, **settings)


def add_confirm(group: Any, *, done: str = "deleted", yes: str = "do not ask for confirmation") -> None:
    """--dry-run and --yes, for a verb that lists what it would do before it does it."""
    group.add_argument("--dry-run", action="store_true", help=f"only list what would be {done}")
    group.add_argument("--yes", action="store_true", help=yes)


class Parser(argparse.ArgumentParser):
    """argparse, with "did you mean" for a mistyped verb or choice (its subcommands are Parsers too)."""

    def error(self, message: str) -> NoReturn:
        mistyped = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if mistyped:
            close = difflib.get_close_matches(mistyped.group(1), re.findall(r"'([^']*)'", mistyped.group(2)), n=1)
            if close:
                message += f"\n  -> did you mean '{close[0]}'?"
        super().error(message)


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


# Options the user's config file may set (gpubox/userconfig.py), with the default when neither a
# flag nor the file does; None leaves the choice to the code that uses it (region: the environment).
CONFIGURABLE: dict[str, Any] = {"region": None, "instance_type": SPEC.instance_type, "allow_cidr": None, "data": None,
                                "idle_stop": None}


@dataclass(frozen=True)
class Effective:
    value: Any
    source: str


def apply_config(args: argparse.Namespace, config: userconfig.UserConfig) -> dict[str, Effective]:
    """Fill each option the command line left out from the config file, else its default; returns
    where each value came from. --allow-cidr's ranges travel joined by commas (one string)."""
    sources: dict[str, Effective] = {}
    for key, default in CONFIGURABLE.items():
        if not hasattr(args, key):
            continue
        flag = f"--{key.replace('_', '-')}"
        if getattr(args, key) is not None:
            sources[key] = Effective(getattr(args, key), f"command line ({flag})")
        elif config.value(key) is not None:
            sources[key] = Effective(config.value(key), config.source(key))
        else:
            sources[key] = Effective(default, "built-in default")
        setattr(args, key, sources[key].value)
    if isinstance(getattr(args, "allow_cidr", None), list):
        args.allow_cidr = ",".join(args.allow_cidr)
    return sources


class Flags:
    """The shared option groups, as argparse parents, and `verb` to make a verb's parser from them."""

    def __init__(self) -> None:
        self.region = _parent()
        self.region.add_argument("--region",
                                 help=f"AWS region (default: AWS_REGION, AWS_DEFAULT_REGION or {contract.DEFAULT_REGION})")
        self.named = _parent()
        self.named.add_argument("--name", help="workstation name (default: the only one you have, else default_name "
                                               "from ~/.config/gpubox/config.toml)")
        self.owner = _parent()
        self.owner.add_argument("--any-owner", action="store_true", help="act on someone else's workstation (for IT)")
        self.debug = _parent()
        self.debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                help="show tracebacks for unexpected errors")
        self.target = self.fresh_target()
        self.groups = {"region": self.region, "named": self.named, "owner": self.owner, "target": self.target}

    @staticmethod
    def fresh_target(*, host: bool = True) -> argparse.ArgumentParser:
        """Where a workstation is configured: a local container, an SSH host (unless `host` is
        False: image build images only what it launches), or EC2 (neither)."""
        target = _parent()
        where = target.add_mutually_exclusive_group()
        where.add_argument("--local", action="store_true", help="a local podman container as the workstation")
        if host:
            where.add_argument("--host", metavar="HOST", help="an existing machine reachable over SSH")
            target.add_argument("--port", type=int, default=22, help="SSH port of --host (default: 22)")
        else:
            target.set_defaults(host=None, port=22)
        target.add_argument("--name", help="workstation name (default: 'local' for --local, else derived from --host)" if host
                            else "the image series' name (default: default)")
        target.add_argument("--release", choices=containers.RELEASES, default="debian12", help="image of the local container")
        target.add_argument("--user", help="login user with sudo (default: admin; on EC2 the image's own: admin on Debian, "
                                           "ubuntu with --os ubuntu-24.04)")
        target.add_argument("--key", type=Path, help="private key to log in with (default: ~/.ssh/id_ed25519 or a new one)")
        target.add_argument("--idle-stop", type=int, metavar="MINUTES",
                            help="power the workstation off after this many idle minutes (default 60; 0 never)")
        target.add_argument("--trust-local-cas", action="store_true",
                            help="make the workstation trust this machine's extra CAs (/usr/local/share/ca-certificates), "
                                 "for a TLS-inspecting proxy between both and the internet (always on for --local)")
        env.add_framework_option(target)
        return target

    def verb(self, subparsers: Any, verb: str, text: str, handler: Callable[[argparse.Namespace], int],
             *groups: str, examples: str | None = None) -> argparse.ArgumentParser:
        """A verb's parser: its help, its examples (gpubox/examples.py) and the shared groups it takes."""
        made = subparsers.add_parser(verb, help=text, description=text,
                                     epilog=EXAMPLES.get(verb) if examples is None else examples,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     parents=[self.debug, *(self.groups[name] for name in groups)])
        made.set_defaults(func=handler)
        return made
