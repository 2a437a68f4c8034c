"""`plan` and `report`: the one-page document for a manager and IT, before launch (from settings
and bundled prices, no AWS call) and after (evidence read from the workstation over SSH)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


from gpubox import contract, evidence, paths, plan, render, settings, targets, userconfig, which, workstation
from gpubox.cloud import aws, ownership, policy, records
from gpubox.commands import provision, session
from gpubox.document import Document, Row, Section, money
from gpubox.errors import GpuboxError

FORMATS = ("html", "md")


@dataclass(frozen=True)
class Written:
    path: Path
    document: Document


def _check_format(kind: str) -> str:
    if kind not in FORMATS:
        raise GpuboxError(f"--format {kind} is not known.", "Use --format html or --format md.", exit_code=2)
    return kind


def write(document: Document, kind: str, output: Path | None, default_stem: str) -> Written:
    path = output or Path.cwd() / f"{default_stem}.{kind}"
    path.write_text(render.render(document, _check_format(kind)), encoding="utf-8")
    return Written(path, document)


def make_plan(request: plan.Request, *, idle_stop: int | None = None, inventory: Path | None = None) -> Document:
    """The plan of an EC2 workstation, checked by provision's own rules; AWS is asked only who the
    requester is and for the team policy (plan_context)."""
    targets.check_name(request.name)
    if request.disk_gb < provision.MIN_DISK_GB:
        raise GpuboxError(f"--disk-gb {request.disk_gb} is too small for the driver, CUDA and TensorFlow.",
                          f"Use at least {provision.MIN_DISK_GB} (default 100).", exit_code=2)
    # The same checks as a dry run of provision (--os, --ami, --deadman-minutes, --from-snapshot,
    # --allow-cidr ...); an open SSH range is a warning on the page (yes=True), not a refusal.
    cloud = provision.Cloud(instance_type=request.instance_type, ami=request.ami, disk_gb=request.disk_gb, spot=request.spot,
                            allow_cidr=request.allow_cidr, yes=True, os=request.os, deadman_minutes=request.deadman_minutes,
                            from_snapshot=request.from_snapshot or None, image=request.image)
    provision.check_cloud(provision.Target(name=request.name, region=request.region, idle_stop=idle_stop), cloud)
    provision.check_start(cloud)
    if inventory is not None and not inventory.exists():
        raise GpuboxError(f"Inventory {inventory} does not exist.", "Pass the inventory file or directory IT uses.", exit_code=2)
    config = settings.load(inventory, provision.idle_stop_vars(idle_stop))
    return plan.build(request, config, context=plan_context(request.region))


def plan_request(name: str | None, region: str | None, *, tag: list[str] | None = None, **options) -> plan.Request:
    owner = workstation.owner_name()
    return plan.Request(name=which.new_name(name), owner=owner, region=aws.region_name(region),
                        tags=tuple(sorted(policy.parse_tags(tag).items())), **options)


def requester_profile() -> tuple[str, str]:
    """The requester's name and e-mail from ~/.config/gpubox/config.toml (requester_name,
    requester_email; "" where not set)."""
    config = userconfig.load()
    return config.value("requester_name") or "", config.value("requester_email") or ""


def gpubox_version() -> str:
    """pyproject.toml's version and, in a git checkout, the commit."""
    version = tomllib.loads((paths.PROJECT_DIR / "pyproject.toml").read_text())["project"]["version"]
    try:
        commit = subprocess.run(["git", "-C", str(paths.PROJECT_DIR), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        commit = ""
    return f"{version} ({commit})" if commit else version


def _without_addresses(message: str) -> str:
    """An AWS failure for the page, which links to nothing (an endpoint's URL is said, not given)."""
    return re.sub(r'"?https?://[^\s"]+"?', "its endpoint", message)


def plan_context(region: str) -> plan.Context:
    """Who asks (AWS, if it answers; the profile), the team policy, today, gpubox's version."""
    name, email = requester_profile()
    try:
        me = ownership.caller(region)
        requester = plan.Requester(arn=me.arn, owner=me.owner, name=name, email=email)
    except GpuboxError as problem:
        requester = plan.Requester(name=name, email=email, unknown_why=_without_addresses(problem.message))
    team, unread = policy.load_offline()
    note = f"not checked: {_without_addresses(unread)} (provision checks it before anything is created)" if unread else ""
    return plan.Context(requester, team, note, datetime.now(timezone.utc).date(), gpubox_version())


def cost_so_far(name: str, region: str | None) -> Row:
    record = records.load_record(name)
    if not record:
        return Row("Cost so far", "not an EC2 workstation provisioned from this machine (a local container or your own host): "
                                  "no AWS cost to show")
    try:
        found = aws.one(region or record.get("region"), name)
    except GpuboxError as exc:
        return Row("Cost so far", f"could not ask AWS: {exc.message}")
    price = found.hourly_price()
    if price is None:
        return Row("Cost so far", f"{found.instance_type} is {found.state}; no bundled price for it")
    hours = found.hours_up()
    return Row("Cost so far", f"{found.instance_type} {found.state}, up {hours:.1f} h since its last start: about "
                              f"{money(price * hours)} at ${price:.3f}/h (on-demand list price)")


def make_report(name: str, *, region: str | None = None, inventory: Path | None = None) -> Document:
    """Evidence from the running workstation `name` (its SSH entry), read-only."""
    alias = session.require_entry(name)
    config = settings.load(inventory)
    found = evidence.collect(alias, str(config.get("ssh_access_group")))
    if found is None:
        raise GpuboxError(f"Could not read {alias} over SSH.", f"Is it running? Try `ssh {alias} true`, or `python runner.py start --name {name}`.")
    status = evidence.autostop_status(found)
    configured = {"kexalgorithms": config.get("hardening_ssh_kex_algorithms"), "ciphers": config.get("hardening_ssh_ciphers"),
                  "macs": config.get("hardening_ssh_macs"), "pubkeyacceptedalgorithms": config.get("hardening_ssh_pubkey_algorithms")}
    sections = evidence.sections(found, configured, workstation.autostop_line(status) if status else None)
    sections.append(Section("Cost", [cost_so_far(name, region)]))
    configured_controls = plan.controls(config)
    sections.append(Section("Controls as configured", configured_controls.rows, configured_controls.note))
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Document(
        title=f"gpubox report: workstation {name}",
        summary=f"Evidence read from {alias} over SSH on {when}, read-only; compare it with the controls gpubox configures "
                "(last section).",
        sections=sections,
        footer=[f"Generated by `python runner.py report --name {name}`. Nothing secret is shown: public-key fingerprints "
                f"only, no tokens. Paths: {contract.REPORT_PATH}, {contract.AUTOSTOP_STATUS_PATH}."],
    )
