"""`plan`: the request a data scientist takes to their manager and IT: who asks, for which project
and cost centre, what `provision` would create, what it costs in each region and at worst (with the
budget cap), the team policy's verdict, the controls, and an approval block to sign. From the
bundled prices, gpubox/cloud/launch.py, the roles' settings and the team policy; AWS is asked
only who the requester is and for the team policy (read-only), and the page is made without it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from gpubox import contract, data_access, prices, settings, validate
from gpubox.cloud import cost as region_cost
from gpubox.cloud import data_role, images, launch, policy, snapshots
from gpubox.cloud.spec import DEFAULTS
from gpubox.document import Cost, Document, Row, Section, money
from gpubox.errors import GpuboxError

DAYS_PER_MONTH = 30
SSHD_TEMPLATE = "roles/hardening/templates/etc/ssh/sshd_config.j2"
JUPYTER_UNIT = "roles/jupyter/templates/etc/systemd/system/jupyter@.service.j2"
FORWARDING = ("AllowTcpForwarding", "AllowStreamLocalForwarding", "AllowAgentForwarding", "X11Forwarding", "PermitTunnel")
AUTH = ("PasswordAuthentication", "KbdInteractiveAuthentication", "AuthenticationMethods")


@dataclass(frozen=True)
class Request:
    """What the plan is for: the provision options that shape the page."""

    name: str
    owner: str
    region: str
    instance_type: str = DEFAULTS.instance_type
    ami: str = ""
    disk_gb: int = DEFAULTS.disk_gb
    spot: bool = DEFAULTS.spot
    allow_cidr: str | None = None  # one range or several joined by commas, as the CLI passes them
    os: str = DEFAULTS.os
    image: str = ""  # --image latest|latest:SERIES|ami-...: a baked image (`image build`)
    from_snapshot: str = ""  # --from-snapshot latest|snap-...: the disk destroy kept
    deadman_minutes: int = DEFAULTS.deadman_minutes
    hours_per_day: float = 8.0
    data: tuple[data_access.Grant, ...] = ()  # --data, already checked
    tags: tuple[tuple[str, str], ...] = ()  # --tag KEY=VALUE: cost-center, project ... (gpubox/cloud/policy.py)
    idle_stop: int | None = None  # --idle-stop, for the team policy's cap


# Regions priced on the page when the team policy lists none.
PRICED_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "ap-northeast-1")
PROJECT_TAG, COST_CENTER_TAG = "project", "cost-center"


@dataclass(frozen=True)
class Requester:
    """Who asks: their AWS identity (the owner tag their workstation will carry) and their name and
    e-mail from their config file (requester_name, requester_email in ~/.config/gpubox/config.toml)."""

    arn: str = ""  # "" when AWS could not be asked
    owner: str = ""
    name: str = ""
    email: str = ""
    unknown_why: str = ""  # why the AWS identity is missing


@dataclass(frozen=True)
class Context:
    """What the page is made with besides the request: the requester, the team policy (None: there
    is none, or it could not be read: `policy_note` says which), the date and gpubox's version."""

    requester: Requester
    team: policy.TeamPolicy | None
    policy_note: str
    today: date
    version: str


def provision_facts(project: Path = settings.PROJECT) -> dict[str, Any]:
    """The instance settings every provision launches with (disk type and encryption, IMDS,
    shutdown), from gpubox/cloud/launch.py, the code runner.py and IT's provision.yml both run."""
    del project  # kept for callers: the facts no longer come from a playbook
    return {"volume_type": launch.VOLUME_TYPE, "encrypted": True, "http_tokens": launch.METADATA["HttpTokens"],
            "http_put_response_hop_limit": launch.METADATA["HttpPutResponseHopLimit"],
            "instance_initiated_shutdown_behavior": launch.SHUTDOWN_BEHAVIOUR}


def hours(request: Request, config: settings.Settings) -> tuple[float, float]:
    """Hours a day the instance runs: expected (the use given plus the idle time before autostop)
    and at worst (as far as autostop lets it run)."""
    if not 0 <= request.hours_per_day <= 24:
        raise GpuboxError(f"--hours-per-day {request.hours_per_day} is not between 0 and 24.", "Example: --hours-per-day 8",
                          exit_code=2)
    idle_minutes = int(config.get("autostop_idle_minutes"))
    max_hours = float(config.get("autostop_max_hours"))
    # After the last use of the day the host runs idle until autostop powers it off.
    expected = min(24.0, request.hours_per_day + idle_minutes / 60) if idle_minutes else request.hours_per_day
    # Worst case: a job or a hold keeps it busy; only the uptime cap (one start a day) bounds that.
    worst = 24.0 if not idle_minutes or not max_hours else min(24.0, max(expected, max_hours))
    return expected, worst


def disk_month(request: Request, region: str | None = None) -> float:
    return round(request.disk_gb * region_cost.gb_month(region or request.region), 2)


def snapshot_month(request: Request) -> float:
    """The most the final snapshot `destroy` keeps costs a month: snapshots.monthly_cost, the
    figure destroy itself prints."""
    return round(snapshots.monthly_cost(request.disk_gb, request.region), 2)


def cost(request: Request, config: settings.Settings, region: str | None = None) -> Cost | None:
    """The month's figures in the request's region (or `region`): list prices times the region's
    factor; None when gpubox has no price for the instance type (the page says "unknown")."""
    where = region or request.region
    expected, worst = hours(request, config)
    hourly = region_cost.hourly(request.instance_type, where, request.spot)
    if hourly is None:
        return None
    return Cost(hourly=hourly, expected_hours_per_day=expected, worst_hours_per_day=worst,
                disk_month=disk_month(request, where), days=DAYS_PER_MONTH)


def open_ranges(request: Request) -> list[str]:
    """The --allow-cidr ranges provision asks --yes for (validate.too_open: more public addresses than a /8)."""
    if not request.allow_cidr:
        return []
    return [str(network) for network in validate.cidrs(request.allow_cidr) if validate.too_open(network)]


def warnings(request: Request) -> list[Row]:
    rows = [Row("Open SSH range", f"WARNING: --allow-cidr {wide} admits more public addresses than a /8: the whole internet "
                                  "(or most of it) can try to log in over SSH. provision refuses it without --yes; narrow it "
                                  "to the office or VPN range.")
            for wide in open_ranges(request)]
    if region_cost.hourly(request.instance_type, request.region, request.spot) is None:
        rows.append(Row("Unknown price", f"WARNING: gpubox has no price for {request.instance_type} (gpubox/prices.py): its "
                                         "hourly price and monthly cost read unknown and the worst case cannot be priced; "
                                         "look it up on AWS's EC2 pricing page before approving."))
    return rows


def _image(request: Request) -> str:
    """The image provision starts from, chosen as provision chooses it (commands/provision.plan_ec2)."""
    if request.from_snapshot:
        chosen = (f"an image of snapshot {request.from_snapshot}" if request.from_snapshot != "latest"
                  else f"an image of the newest snapshot of {request.name} (what destroy kept)")
        chosen += ", made when provision runs (`snapshots prune` removes it)"
    elif request.image:
        chosen = f"the baked image {request.image} (`python runner.py image build`), looked up when provision runs"
    elif request.ami:
        chosen = request.ami
    else:
        system = images.check_os(request.os)
        chosen = (f"the {images.describe(request.os)} image of its publisher (AWS account {system.owner}, "
                  f"name {system.name_pattern}){'' if system.tested else ', not exercised by the test suite'}")
    return (f"{chosen}; powers itself off after {request.deadman_minutes} min unless configuring finished "
            "(the dead-man's switch)")


def _disk(request: Request, facts: dict[str, Any]) -> str:
    kept = (f"`destroy` first keeps a final snapshot of it (at most {money(snapshot_month(request))} a month, until it is "
            "pruned), then deletes the disk; `destroy --no-snapshot` keeps nothing")
    if request.from_snapshot:
        return (f"made from snapshot {request.from_snapshot} (with any data disk the same destroy kept): at least "
                f"{request.disk_gb} GB {facts['volume_type']}, encrypted as its snapshot is; {kept}")
    return f"{request.disk_gb} GB {facts['volume_type']}, {'encrypted' if facts['encrypted'] else 'NOT encrypted'}; {kept}"


def _created(request: Request, facts: dict[str, Any]) -> Section:
    resource = contract.alias(request.name)
    table = prices.TABLE.get(request.instance_type)
    allow = (", ".join(str(network) for network in validate.cidrs(request.allow_cidr)) if request.allow_cidr
             else "this machine's public address /32 (looked up when provision runs)")
    wide = open_ranges(request)
    rows = [
        Row("Instance", f"{resource}: {request.instance_type}{' (spot)' if request.spot else ''}"),
        Row("GPU", table.gpu if table else "unknown"),
        Row("Region", request.region),
        Row("Disk", _disk(request, facts)),
        Row("Network", f"security group {resource}: SSH ({launch.SSH_PORT}/tcp) from {allow} only; no other port open"
                       + (f" (WARNING: {', '.join(wide)} is open to the whole internet)" if wide else "")),
        Row("Image", _image(request)),
        # What gpubox/cloud/launch.py sets, at launch and again on every provision of an existing instance.
        Row("Instance metadata", f"IMDSv2 only (http_tokens: {launch.METADATA['HttpTokens']}), hop limit "
                                 f"{launch.METADATA['HttpPutResponseHopLimit']} (containers on the host cannot reach it)"),
        Row("On shutdown", f"{facts['instance_initiated_shutdown_behavior']} (the disk and data stay)"),
        Row("Key pair", f"{resource}: the data scientist's ed25519 public key"),
        Row("Tags", f"{contract.TAG_MANAGED}={contract.MANAGED_VALUE}, {contract.TAG_NAME}={request.name}, "
                    f"{contract.TAG_OWNER}=the requester's AWS identity"
                    + "".join(f", {key}={value}" for key, value in request.tags)
                    + f", {policy.PLAN_TAG}=this page's reference (provision --plan-ref)"),
        Row("Owner", f"{request.owner} (the data scientist's account on the workstation)"),
        *_data_rows(request),
    ]
    return Section("What will be created", rows)


def _data_rows(request: Request) -> list[Row]:
    """The data-access role and each statement of its policy, exactly as provision --data makes them."""
    if not request.data:
        return [Row("Data access", "none: no instance role, no AWS credentials on the workstation (no --data given)")]
    role = data_role.role_name(request.name, request.region)
    rows = [Row("Data access", f"IAM role and instance profile {data_role.PATH}{role}, assumed by EC2 only; credentials reach "
                               "the workstation through IMDSv2 only and are never written to a file; the policy allows exactly:")]
    return rows + [Row("Data access policy", line) for line in data_access.statement_lines(request.data)]


def _rate(amount: float) -> str:
    """A per-GB price as exact as it is ($0.08, but $0.0893 rather than a rounded $0.09)."""
    return money(amount) if round(amount, 2) == amount else f"${amount:.4f}"


def _cost_section(request: Request, config: settings.Settings, figures: Cost | None) -> Section:
    idle = int(config.get("autostop_idle_minutes"))
    max_hours = float(config.get("autostop_max_hours"))
    expected_hours, worst_hours = hours(request, config)
    kind = "spot, indicative" if request.spot else "on-demand"
    if not idle:
        worst_why = "autostop is off (autostop_idle_minutes: 0): nothing stops it but a person"
    elif not max_hours:
        worst_why = "a busy job or a hold keeps it up around the clock (autostop_max_hours: 0, no cap)"
    else:
        worst_why = f"autostop_max_hours caps each start at {max_hours:g} h (one start a day)"
    expected_how = (f"{expected_hours:g} h a day ({request.hours_per_day:g} h of use + {idle} idle minutes before autostop) "
                    f"x {DAYS_PER_MONTH} days + disk")
    worst_how = f"{worst_hours:g} h a day x {DAYS_PER_MONTH} days + disk; {worst_why}"
    if figures is None:
        rows = [Row("Hourly price", f"unknown: gpubox has no price for {request.instance_type} ({kind})"),
                Row("Expected per month", f"unknown: {expected_how}, at an unknown hourly price"),
                Row("Worst case per month", f"cannot be priced: {worst_how}, at an unknown hourly price")]
    else:
        rows = [Row("Hourly price", f"${figures.hourly:.3f} per hour ({kind}, {request.instance_type})"),
                Row("Expected per month", f"{money(figures.expected)}: {expected_how}"),
                Row("Worst case per month", f"{money(figures.worst)}: {worst_how}")]
    rows += [
        Row("Disk per month", f"{money(disk_month(request))} ({request.disk_gb} GB x "
                              f"{_rate(region_cost.gb_month(request.region))} per GB-month, also while stopped)"),
        Row("After destroy per month", f"at most {money(snapshot_month(request))}: the final snapshot `destroy` keeps "
                                       f"({request.disk_gb} GB x {_rate(region_cost.snapshot_gb_month(request.region))} per "
                                       "GB-month, AWS bills the blocks in use) until `python runner.py snapshots prune` "
                                       "deletes it"),
    ]
    note = (f"Assumptions: a {DAYS_PER_MONTH}-day month; list prices of {prices.PRICE_REGION} as of {prices.PRICES_AS_OF} "
            "bundled with gpubox, times each region's factor (gpubox/cloud/cost.py; spot prices change hourly); "
            "no data transfer, taxes or snapshots other than the one destroy keeps.")
    return Section("Cost", rows, note)


def controls(config: settings.Settings, project: Path = settings.PROJECT) -> Section:
    """One line per control, each from the setting that drives it."""
    sshd = settings.template_settings(SSHD_TEMPLATE, FORWARDING + AUTH, project)
    unit = (project / JUPYTER_UNIT).read_text()
    # The unit says where each server listens: a Unix socket of the user's (no TCP port at all).
    listen = ("a Unix socket only its user can reach (no TCP port)" if "--ServerApp.sock=" in unit
              else "the address in jupyter@.service")
    joined = ", ".join
    idle = int(config.get("autostop_idle_minutes"))
    max_hours = float(config.get("autostop_max_hours"))
    users = [user for user in config.get("gpubox_users") or [] if user.get("state", "present") == "present"]
    sudoers = [user["name"] for user in users if user.get("sudo")]
    blacklist = config.get("hardening_auto_updates_blacklist") or []
    rows = [
        Row("SSH login", f"keys only (PasswordAuthentication {sshd.get('PasswordAuthentication')}, "
                         f"AuthenticationMethods {sshd.get('AuthenticationMethods')}), root login "
                         f"{'with a key' if config.get('hardening_ssh_permit_root_login') else 'refused'}, "
                         f"groups {joined(config.get('hardening_ssh_allow_groups'))} only, "
                         f"{config.get('hardening_ssh_max_auth_tries')} tries, port {config.get('hardening_ssh_port')}"),
        Row("SSH key exchange", joined(config.get("hardening_ssh_kex_algorithms"))),
        Row("SSH ciphers", joined(config.get("hardening_ssh_ciphers"))),
        Row("SSH MACs", joined(config.get("hardening_ssh_macs"))),
        Row("SSH user keys", f"{joined(config.get('hardening_ssh_pubkey_algorithms'))}; "
                             f"RSA at least {config.get('hardening_ssh_required_rsa_size')} bits"),
        Row("SSH forwarding", joined(f"{name} {value}" for name, value in sshd.items() if name in FORWARDING)
            + " (local forwarding only, for the Jupyter tunnel)"),
        Row("Firewall", "nftables, inbound default drop; SSH port "
                        f"{config.get('hardening_ssh_port')} open"
                        + (f", also TCP {joined(map(str, config.get('hardening_firewall_allowed_tcp_ports')))}"
                           if config.get("hardening_firewall_allowed_tcp_ports") else "")
                        + (f", also UDP {joined(map(str, config.get('hardening_firewall_allowed_udp_ports')))}"
                           if config.get("hardening_firewall_allowed_udp_ports") else "")
                        if config.get("hardening_firewall") else "not managed (hardening_firewall: false)"),
        Row("Brute force", f"fail2ban: ban {config.get('hardening_fail2ban_bantime')} after "
                           f"{config.get('hardening_fail2ban_maxretry')} failures in {config.get('hardening_fail2ban_findtime')}"
            if config.get("hardening_fail2ban") else "fail2ban off"),
        Row("Updates", ("unattended security upgrades daily"
                        + (f", except {joined(blacklist)} (held for the GPU stack)" if blacklist else "")
                        + (f"; reboots at {config.get('hardening_auto_updates_reboot_time')} when needed"
                           if config.get("hardening_auto_updates_reboot") else "; no automatic reboot"))
            if config.get("hardening_auto_updates") else "no automatic updates (hardening_auto_updates: false)"),
        Row("Users and sudo", f"the owner (the data scientist provisioning it, with sudo) and gpubox_users: "
                              f"{joined(user['name'] for user in users) or 'none listed'}"
                              f"{'; sudo for ' + joined(sudoers) if sudoers else ''}; group "
                              f"{config.get('ssh_access_group')}, homes mode {config.get('ssh_access_home_mode')}, "
                              f"RSA keys at least {config.get('ssh_access_min_rsa_bits')} bits"),
        Row("Sessions", f"idle shells end after {config.get('hardening_shell_timeout')} s, umask {config.get('hardening_umask')}"),
        Row("Jupyter", f"one JupyterLab per user on {listen}, token-protected; "
                       "reached through an SSH tunnel (`python runner.py tunnel`), never exposed"
            if config.get("jupyter_manage") else "not installed (jupyter_manage: false)"),
        Row("Idle stop", (f"powers off after {idle} idle minutes (warning {config.get('autostop_warn_minutes')} min ahead)"
                          + (f", and after {max_hours:g} h of uptime" if max_hours else "; no uptime cap"))
            if idle else "off (autostop_idle_minutes: 0)"),
        Row("Data", "notebooks and data stay on the workstation's disk (on EC2 the encrypted volume above), in each user's home; nothing is "
                    "copied elsewhere; the disk survives stops; `destroy` keeps a final snapshot of it (unless --no-snapshot) "
                    "and then deletes the disk"),
    ]
    return Section("Controls", rows, "SSH algorithms: of each list, those the installed OpenSSH supports are used, in this "
                                     "order. Generated from " + "; ".join(config.sources) + ", and the roles' templates.")


def reference(request: Request, context: Context) -> str:
    """The page's reference: the name, the date and a digest of what is asked and by whom, so an
    approved page and the workstation's gpubox:plan tag (provision --plan-ref) name the same request."""
    asked = {"name": request.name, "region": request.region, "instance_type": request.instance_type, "disk_gb": request.disk_gb,
             "spot": request.spot, "tags": list(request.tags), "owner": context.requester.owner or request.owner,
             "date": context.today.isoformat()}
    # The options that choose the image and the disk's start, when given: the approved page names them.
    chosen = {"os": request.os if request.os != DEFAULTS.os else "", "ami": request.ami, "image": request.image,
              "from_snapshot": request.from_snapshot, "allow_cidr": request.allow_cidr or "",
              "deadman_minutes": request.deadman_minutes if request.deadman_minutes != DEFAULTS.deadman_minutes else ""}
    asked.update({key: value for key, value in chosen.items() if value})
    digest = hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:8]
    return f"plan-{request.name}-{context.today:%Y%m%d}-{digest}"


def _tag(request: Request, key: str) -> str:
    return dict(request.tags).get(key, "")


def _tag_row(request: Request, context: Context, key: str, label: str) -> Row:
    value = _tag(request, key)
    required = context.team is not None and key in context.team.required_tags
    if value:
        return Row(label, value)
    return Row(label, f"MISSING: the team policy requires it (pass --tag {key}=VALUE)" if required else f"not given (--tag {key}=VALUE)")


def provision_command(request: Request, ref: str) -> str:
    options = [f"--name {request.name}", f"--region {request.region}", f"--instance-type {request.instance_type}",
               f"--disk-gb {request.disk_gb}"]
    if request.spot:
        options.append("--spot")
    # What chooses the image and the disk's start, as given to plan (the spec's defaults left out).
    options += [f"--{flag} {value}" for flag, value in (("os", request.os if request.os != DEFAULTS.os else ""),
                                                        ("ami", request.ami), ("image", request.image),
                                                        ("from-snapshot", request.from_snapshot)) if value]
    if request.deadman_minutes != DEFAULTS.deadman_minutes:
        options.append(f"--deadman-minutes {request.deadman_minutes}")
    if request.allow_cidr:
        options += [f"--allow-cidr {network}" for network in validate.cidrs(request.allow_cidr)]
    if request.idle_stop is not None:
        options.append(f"--idle-stop {request.idle_stop}")
    options += [*(f"--tag {key}={value}" for key, value in request.tags), f"--plan-ref {ref}"]
    return "python runner.py provision " + " ".join(options)


def request_section(request: Request, context: Context) -> Section:
    who = context.requester
    named = f"{who.name or 'name not set'} <{who.email or 'e-mail not set'}>"
    identity = (f"{who.arn} (owner {who.owner})" if who.arn
                else f"unknown: {who.unknown_why or 'AWS was not asked'} (provision tags the workstation with it)")
    ref = reference(request, context)
    rows = [Row("Requester", named), Row("AWS identity", identity), _tag_row(request, context, PROJECT_TAG, "Project"),
            _tag_row(request, context, COST_CENTER_TAG, "Cost centre"), Row("Date", context.today.isoformat()),
            Row("gpubox version", context.version), Row("Reference", ref),
            Row("Once approved", f"`{provision_command(request, ref)}`")]
    note = ("" if who.name and who.email else
            "Name and e-mail come from ~/.config/gpubox/config.toml (requester_name = \"...\", requester_email = \"...\").")
    return Section("Request", rows, note)


def policy_section(request: Request, context: Context) -> Section:
    team = context.team
    if team is None:
        return Section("Team policy", [Row("Verdict", context.policy_note or "no team policy: nothing is refused on its account "
                                                                             "(docs/policy.md)")])
    broken = policy.breaches(team, policy.Ask(instance_type=request.instance_type, region=request.region, disk_gb=request.disk_gb,
                                              spot=request.spot, idle_stop=request.idle_stop, tags=dict(request.tags)))
    checked = [name for name, value in (("instance types", team.instance_types), ("regions", team.regions),
                                        ("hourly price", team.max_hourly_usd), ("disk size", team.max_disk_gb),
                                        ("required tags", team.required_tags), ("idle stop", team.idle_stop_max_minutes))
               if value]
    rows = [Row("Policy", f"{team.source}; owned by {team.contact}")]
    if broken:
        rows.append(Row("Verdict", f"BREAKS {len(broken)} rule(s): provision will refuse it unless {team.contact} grants an exception"))
        rows += [Row(f"Rule {breach.rule}", breach.message) for breach in broken]
    else:
        rows.append(Row("Verdict", f"passes every rule ({', '.join(checked) or 'none set'}): provision will accept it"))
    return Section("Team policy", rows)


def budget_rows(request: Request, context: Context, figures: Cost | None) -> list[Row]:
    team = context.team
    if team is None:
        return [Row("Budget cap", "none: there is no team policy with a budget")]
    limit = team.budget.for_owner(context.requester.owner) if context.requester.owner else team.budget.monthly_usd
    if limit is None:
        return [Row("Budget cap", "none: the team policy sets no monthly budget")]
    capped = "cannot be priced, at most " + money(limit) if figures is None else money(min(figures.worst, limit))
    return [Row("Worst case with the budget", f"{capped}: the budget job stops the requester's workstations at "
                                              f"{money(limit)} a month (all of them together; warnings at "
                                              f"{', '.join(f'{p} %' for p in team.budget.warn_at_percent)})")]


def region_section(request: Request, config: settings.Settings, context: Context) -> Section:
    regions = list(context.team.regions) if context.team and context.team.regions else list(PRICED_REGIONS)
    if request.region not in regions:
        regions.append(request.region)
    rows = []
    for region in regions:
        figures = cost(request, config, region)
        marks = [*(["this request"] if region == request.region else []),
                 *(["priced as us-east-1: no factor known"] if not region_cost.region_known(region) else [])]
        priced = (f"unknown: no price for {request.instance_type}; disk {money(disk_month(request, region))} a month"
                  if figures is None else f"${figures.hourly:.3f} per hour; expected {money(figures.expected)}, worst case "
                                          f"{money(figures.worst)} a month")
        rows.append(Row(region, f"{priced}{' (' + '; '.join(marks) + ')' if marks else ''}"))
    allowed = "the team policy's regions" if context.team and context.team.regions else "common regions"
    return Section("Region prices", rows, f"{request.instance_type}{' spot' if request.spot else ''} in {allowed}, the same hours "
                                          "and disk as above.")


def approval_section(request: Request, context: Context) -> Section:
    blank = "name ______________________   signature ______________________   date ____________"
    return Section("Approval", [Row("Manager", blank), Row("IT", blank),
                                Row("Decision", "[ ] approved   [ ] approved with changes: ______________________   [ ] declined")],
                   f"Approved, this page is the record: provision with --plan-ref {reference(request, context)} and the "
                   f"workstation carries it as the tag {policy.PLAN_TAG}.")


def build(request: Request, config: settings.Settings, project: Path = settings.PROJECT, context: Context | None = None) -> Document:
    context = context or Context(Requester(unknown_why="not asked"), None, "", date.today(), "unknown")
    figures = cost(request, config)
    facts = provision_facts(project)
    cost_part = _cost_section(request, config, figures)
    cost_part = Section(cost_part.title, cost_part.rows + budget_rows(request, context, figures), cost_part.note)
    verdict = policy_section(request, context)
    priced = (f"about {money(figures.expected)} a month at {request.hours_per_day:g} h a day, at most {money(figures.worst)}"
              if figures is not None else f"price unknown (gpubox has no price for {request.instance_type}), so the worst case "
                                          "cannot be priced")
    warned = warnings(request)
    summary = (f"A {request.instance_type} GPU workstation for {context.requester.name or request.owner} in {request.region}: "
               f"{priced}. Team policy: {next(row.value for row in verdict.rows if row.label == 'Verdict').split(':')[0]}."
               + (f" {len(warned)} warning(s), listed first." if warned else ""))
    asked = "AWS was asked only who the requester is and for the team policy" if context.requester.arn else "AWS was not contacted"
    return Document(
        title=f"gpubox plan: workstation {request.name}",
        summary=summary,
        sections=[*([Section("Warnings", warned)] if warned else []), request_section(request, context), verdict,
                  _created(request, facts), cost_part,
                  region_section(request, config, context), controls(config, project), approval_section(request, context)],
        cost=figures,
        footer=[f"Generated by `python runner.py plan`; nothing was created and {asked}."],
    )
