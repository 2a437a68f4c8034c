"""`plan`: what `provision` would create, what it costs, and the controls on it, for a manager and
IT, from the bundled prices, playbooks/provision.yml and the roles' settings (no AWS call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gpubox import contract, data_access, prices, settings
from gpubox.cloud import data_role, deadman, images, launch
from gpubox.document import Cost, Document, Row, Section, money
from gpubox.errors import GpuboxError

DAYS_PER_MONTH = 30
SSHD_TEMPLATE = "roles/hardening/templates/etc/ssh/sshd_config.j2"
JUPYTER_UNIT = "roles/jupyter/templates/etc/systemd/system/jupyter@.service.j2"
PROVISION = "playbooks/provision.yml"
FORWARDING = ("AllowTcpForwarding", "AllowStreamLocalForwarding", "AllowAgentForwarding", "X11Forwarding", "PermitTunnel")
AUTH = ("PasswordAuthentication", "KbdInteractiveAuthentication", "AuthenticationMethods")


@dataclass(frozen=True)
class Request:
    """What the plan is for: the provision options that shape the page."""

    name: str
    owner: str
    region: str
    instance_type: str = "g4dn.xlarge"
    ami: str = ""
    disk_gb: int = 100
    spot: bool = False
    allow_cidr: str | None = None
    hours_per_day: float = 8.0
    data: tuple[data_access.Grant, ...] = ()  # --data, already checked


def _find(data: Any, key: str) -> Any:
    """The first value of `key` anywhere in a parsed playbook."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        data = list(data.values())
    if isinstance(data, list):
        for item in data:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def provision_facts(project: Path = settings.PROJECT) -> dict[str, Any]:
    """The instance settings provision.yml fixes (disk type and encryption, IMDS, shutdown, image)."""
    playbook = yaml.safe_load((project / PROVISION).read_text())
    return {key: _find(playbook, key) for key in ("volume_type", "encrypted", "http_tokens", "http_put_response_hop_limit",
                                                  "instance_initiated_shutdown_behavior", "gpubox_ami_parameter")}


def cost(request: Request, config: settings.Settings) -> Cost:
    hourly = prices.hourly(request.instance_type, request.spot)
    if hourly is None:
        raise GpuboxError(f"No bundled price for {request.instance_type}.",
                          f"Known types: {', '.join(sorted(prices.TABLE))} (gpubox/prices.py).", exit_code=2)
    if not 0 <= request.hours_per_day <= 24:
        raise GpuboxError(f"--hours-per-day {request.hours_per_day} is not between 0 and 24.", "Example: --hours-per-day 8",
                          exit_code=2)
    idle_minutes = int(config.get("autostop_idle_minutes"))
    max_hours = float(config.get("autostop_max_hours"))
    # After the last use of the day the host runs idle until autostop powers it off.
    expected = min(24.0, request.hours_per_day + idle_minutes / 60) if idle_minutes else request.hours_per_day
    # Worst case: a job or a hold keeps it busy; only the uptime cap (one start a day) bounds that.
    worst = 24.0 if not idle_minutes or not max_hours else min(24.0, max(expected, max_hours))
    return Cost(hourly=hourly, expected_hours_per_day=expected, worst_hours_per_day=worst,
                disk_month=round(request.disk_gb * prices.GP3_GB_MONTH, 2), days=DAYS_PER_MONTH)


def _created(request: Request, facts: dict[str, Any]) -> Section:
    resource = contract.alias(request.name)
    table = prices.TABLE.get(request.instance_type)
    allow = request.allow_cidr or "this machine's public address /32 (looked up when provision runs)"
    default = images.OPERATING_SYSTEMS[images.DEFAULT_OS]
    image = request.ami or (f"the {images.describe(images.DEFAULT_OS)} image of its publisher (AWS account {default.owner}, "
                            f"name {default.name_pattern}); powers itself off after {deadman.DEFAULT_MINUTES} min unless configuring finished")
    disk = f"{request.disk_gb} GB {facts['volume_type']}, {'encrypted' if facts['encrypted'] else 'NOT encrypted'}"
    rows = [
        Row("Instance", f"{resource}: {request.instance_type}{' (spot)' if request.spot else ''}"),
        Row("GPU", table.gpu if table else "unknown"),
        Row("Region", request.region),
        Row("Disk", f"{disk}, deleted with the instance by `destroy`"),
        Row("Network", f"security group {resource}: SSH (22/tcp) from {allow} only; no other port open"),
        Row("Image", image),
        # What gpubox/cloud/launch.py sets, at launch and again on every provision of an existing instance.
        Row("Instance metadata", f"IMDSv2 only (http_tokens: {launch.METADATA['HttpTokens']}), hop limit "
                                 f"{launch.METADATA['HttpPutResponseHopLimit']} (containers on the host cannot reach it)"),
        Row("On shutdown", f"{facts['instance_initiated_shutdown_behavior']} (the disk and data stay)"),
        Row("Key pair", f"{resource}: the data scientist's ed25519 public key"),
        Row("Tags", f"{contract.TAG_MANAGED}={contract.MANAGED_VALUE}, {contract.TAG_NAME}={request.name}, "
                    f"{contract.TAG_OWNER}={request.owner}"),
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


def _cost_section(request: Request, config: settings.Settings, figures: Cost) -> Section:
    idle = int(config.get("autostop_idle_minutes"))
    max_hours = float(config.get("autostop_max_hours"))
    kind = "spot, indicative" if request.spot else "on-demand"
    if not idle:
        worst_why = "autostop is off (autostop_idle_minutes: 0): nothing stops it but a person"
    elif not max_hours:
        worst_why = "a busy job or a hold keeps it up around the clock (autostop_max_hours: 0, no cap)"
    else:
        worst_why = f"autostop_max_hours caps each start at {max_hours:g} h (one start a day)"
    rows = [
        Row("Hourly price", f"${figures.hourly:.3f} per hour ({kind}, {request.instance_type})"),
        Row("Expected per month", f"{money(figures.expected)}: {figures.expected_hours_per_day:g} h a day "
                                  f"({request.hours_per_day:g} h of use + {idle} idle minutes before autostop) "
                                  f"x {figures.days} days + disk"),
        Row("Worst case per month", f"{money(figures.worst)}: {figures.worst_hours_per_day:g} h a day x {figures.days} days "
                                    f"+ disk; {worst_why}"),
        Row("Disk per month", f"{money(figures.disk_month)} ({request.disk_gb} GB x {money(prices.GP3_GB_MONTH)} per GB-month, "
                              "also while stopped)"),
    ]
    note = (f"Assumptions: a {figures.days}-day month; list prices of {prices.PRICE_REGION} as of {prices.PRICES_AS_OF} "
            "bundled with gpubox (other regions differ by a few percent; spot prices change hourly); "
            "no data transfer, snapshots or taxes.")
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
                    "copied elsewhere; the disk survives stops and is deleted by `destroy`"),
    ]
    return Section("Controls", rows, "SSH algorithms: of each list, those the installed OpenSSH supports are used, in this "
                                     "order. Generated from " + "; ".join(config.sources) + ", and the roles' templates.")


def build(request: Request, config: settings.Settings, project: Path = settings.PROJECT) -> Document:
    figures = cost(request, config)
    facts = provision_facts(project)
    summary = (f"A {request.instance_type} GPU workstation for {request.owner} in {request.region}: about "
               f"{money(figures.expected)} a month at {request.hours_per_day:g} h a day, at most {money(figures.worst)}.")
    return Document(
        title=f"gpubox plan: workstation {request.name}",
        summary=summary,
        sections=[_created(request, facts), _cost_section(request, config, figures), controls(config, project)],
        cost=figures,
        footer=["Generated by `python runner.py plan`; nothing was created and AWS was not contacted."],
    )
