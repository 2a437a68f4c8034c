"""The dead-man's switch an EC2 workstation carries from its first boot: it powers itself off
N minutes after each boot until gpubox has finished configuring it. A provision that fails or is
killed after launch therefore cannot leave a GPU instance running (and billing) for ever: the
instance is launched with shutdown behaviour `stop`, so powering off stops it and keeps the disk.

"Finished" is a marker file the autostop role (the last role of site.yml) writes once the idle
checker is in place (contract.CONFIGURED_MARKER); from then on autostop is the safety net.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gpubox import contract
from gpubox.cloud.spec import DEFAULTS

DEFAULT_MINUTES = DEFAULTS.deadman_minutes
MIN_MINUTES = 15  # the slowest first boot plus a few minutes of configuring
MAX_MINUTES = 24 * 60
UNIT = "gpubox-deadman"


def user_data(minutes: int) -> str:
    """A shell script cloud-init runs once, as root, at first boot: a systemd timer whose service
    is skipped once the marker exists (so no later step has to remember to cancel it)."""
    condition = f"ConditionPathExists=!{contract.CONFIGURED_MARKER}"
    return f"""#!/bin/sh
# gpubox dead-man's switch: power off {minutes} minutes after boot until gpubox has configured
# this host ({contract.CONFIGURED_MARKER} exists). Shutdown behaviour is stop: the disk stays.
set -eu
cat > /etc/systemd/system/{UNIT}.service <<'UNIT'
[Unit]
Description=gpubox dead-man's switch: power off a workstation gpubox has not finished configuring
{condition}

[Service]
Type=oneshot
ExecStart=/usr/bin/systemctl poweroff
UNIT
cat > /etc/systemd/system/{UNIT}.timer <<'UNIT'
[Unit]
Description=gpubox dead-man's switch ({minutes} minutes after boot)
{condition}

[Timer]
OnBootSec={minutes}min

[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now {UNIT}.timer
"""


def tags(minutes: int) -> dict[str, str]:
    """The switch's delay, on the instance, so `status` can show the deadline without logging in."""
    return {contract.TAG_DEADMAN_MINUTES: str(minutes)}


def deadline(instance_tags: dict[str, str], state: str, launched: datetime | None) -> datetime | None:
    """When the instance powers itself off, if gpubox has not yet marked it configured (EC2's
    LaunchTime is the last start, and the timer counts from each boot)."""
    minutes = instance_tags.get(contract.TAG_DEADMAN_MINUTES, "")
    if state != "running" or not launched or not minutes.isdigit() or instance_tags.get(contract.TAG_CONFIGURED):
        return None
    return launched + timedelta(minutes=int(minutes))
