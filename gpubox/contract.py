"""What runner.py and the workstation agree on: paths on the host, AWS tags, names, variables.

Each value here has a twin on the Ansible side, named next to it; tests/test_contract.py loads
the roles' defaults/vars and the EC2 playbooks and fails when the two sides drift apart. Change
both together.
"""

from __future__ import annotations

import re

# AWS region when neither --region nor AWS_REGION/AWS_DEFAULT_REGION says one (also for IT's
# playbooks: the gpubox.workstation.ec2_workstation module runs this package).
DEFAULT_REGION = "us-east-1"

# Workstation names: they become a Linux host name, an SSH alias and AWS resource names
# (playbooks/vars/ec2.yml: gpubox_name_pattern). \Z, not $: `$` also matches before a final
# newline, in Python and in Jinja's `match` test alike; Python applies it with fullmatch.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}\Z")
# The SSH alias, the local container and the AWS key pair, security group and instance Name.
RESOURCE_PREFIX = "gpubox-"

# Tags on everything gpubox creates in AWS; nothing without the first two is ever looked at.
TAG_MANAGED = "gpubox:managed"
TAG_NAME = "gpubox:name"
TAG_OWNER = "gpubox:owner"
# The owner is an AWS identity (ARN); the instance also names the account its owner logs in as.
TAG_USER = "gpubox:user"
MANAGED_VALUE = "true"
# A baked image (`image build`, gpubox/bake.py) names its series here; what it proves is tagged
# gpubox:<key> for each key of gpubox.bake.metadata (version, roles, base, tensorflow, driver, audit...).
TAG_IMAGE = "gpubox:image"
# The dead-man's switch's delay in minutes (gpubox/cloud/deadman.py), and the tag runner.py adds once
# site.yml has configured the instance (from then on autostop, not the switch, stops it).
TAG_DEADMAN_MINUTES = "gpubox:deadman-minutes"
TAG_CONFIGURED = "gpubox:configured"
# Written by the last role once the host is configured; the dead-man's switch stands down when it
# exists (roles/autostop/vars: autostop_configured_marker).
CONFIGURED_MARKER = "/var/lib/gpubox/configured"

# The TensorFlow smoke test's result (roles/tensorflow/defaults: tensorflow_report_path).
REPORT_PATH = "/etc/gpubox/report.json"
# The idle checker's last verdict (roles/autostop/vars: autostop_config.status_file).
AUTOSTOP_STATUS_PATH = "/var/lib/gpubox/autostop/status.json"
# Each audit tool's last run in figures, any account may read them (roles/hardening/files/audit-summary):
# <tool>.json with finished, result and finding_lines; the findings themselves stay in the journal.
AUDIT_SUMMARY_DIR = "/var/lib/gpubox/audit"
# One file per user who keeps the host up, named after the user; empty, or the UTC expiry
# (roles/autostop/vars: autostop_holds_dir).
HOLDS_DIR = "/var/lib/gpubox/holds"
# A data scientist's own idle limit (`runner.py autostop`): a file of theirs holding MINUTES or off;
# the root checker holds it to IT's bounds (autostop_max_idle_minutes, autostop_allow_off).
IDLE_LIMITS_DIR = "/var/lib/gpubox/idle-limits"
# Each user's Jupyter token, relative to their home (roles/jupyter/vars: jupyter_token_file).
JUPYTER_TOKEN_FILE = ".local/share/gpubox/jupyter-token"
# <user>.env in here holds the user's Jupyter settings (roles/jupyter/vars: jupyter_config_dir),
# among them the port, under this name (roles/jupyter/templates: jupyter@.service).
JUPYTER_SETTINGS_DIR = "/etc/gpubox/jupyter"
# The local port `runner.py tunnel` prefers for the user (the server itself listens on no port).
JUPYTER_PORT_SETTING = "GPUBOX_JUPYTER_PORT"
# Each user's JupyterLab listens on <root>/<user>/<socket name>, in a directory systemd makes for
# that user alone, 0700 (roles/jupyter/vars: jupyter_runtime_directory under /run, jupyter_socket_name).
JUPYTER_RUNTIME_ROOT = "/run/gpubox/jupyter"
JUPYTER_SOCKET_NAME = "jupyter.sock"

# Role variables runner.py sets as extra vars (each documented in its role's defaults).
IDLE_MINUTES_VAR = "autostop_idle_minutes"
CA_CERTIFICATES_DIR_VAR = "base_ca_certificates_dir"
# The data scientist runner.py provisions for, added to gpubox_users by ssh_access and jupyter.
OWNER_VAR = "gpubox_owner"


def alias(name: str) -> str:
    """gpubox-NAME: the SSH alias (`ssh gpubox-NAME`), the local container, the AWS resources' Name."""
    return f"{RESOURCE_PREFIX}{name}"


def tag_filter(key: str, value: str) -> dict[str, object]:
    """An EC2 Describe* filter on one tag."""
    return {"Name": f"tag:{key}", "Values": [value]}


def managed_filters(name: str | None = None) -> list[dict[str, object]]:
    """Filters matching only what gpubox tagged (for one workstation when a name is given)."""
    filters = [tag_filter(TAG_MANAGED, MANAGED_VALUE)]
    return filters + [tag_filter(TAG_NAME, name)] if name else filters


def hold_file(user_expression: str) -> str:
    """The hold file of a user, for a remote shell (the user part is left for the shell to expand)."""
    return f"{HOLDS_DIR}/{user_expression}"


def jupyter_settings_file(user_expression: str) -> str:
    return f"{JUPYTER_SETTINGS_DIR}/{user_expression}.env"


def jupyter_socket_dir(user_expression: str) -> str:
    """The directory of a user's Jupyter socket (only they and root can enter it)."""
    return f"{JUPYTER_RUNTIME_ROOT}/{user_expression}"


def jupyter_socket(user_expression: str) -> str:
    """The Unix socket a user's JupyterLab listens on; `ssh -L PORT:<this>` reaches it as that user."""
    return f"{jupyter_socket_dir(user_expression)}/{JUPYTER_SOCKET_NAME}"
