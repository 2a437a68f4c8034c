# Copyright: gpubox
# Apache-2.0
"""Whether the host is an EC2 instance, and its instance type from the metadata service (IMDSv2)."""

from __future__ import annotations

import urllib.request

from ansible_collections.gpubox.workstation.plugins.module_utils.host import read_text


def on_ec2() -> bool:
    """EC2 says so in DMI (Nitro) or in the Xen hypervisor UUID (older types); nothing is asked
    of the network elsewhere."""
    return (read_text("/sys/class/dmi/id/sys_vendor") == "Amazon EC2"
            or read_text("/sys/class/dmi/id/board_asset_tag").startswith("i-")
            or read_text("/sys/hypervisor/uuid").lower().startswith("ec2"))


def instance_type(base_url: str, timeout: float = 1.0) -> str:
    """EC2 instance type over IMDSv2 (token first); "" when there is no metadata service."""
    if not base_url:
        return ""
    try:
        token_request = urllib.request.Request(
            base_url.rstrip("/") + "/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        # The metadata service must never be reached through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(token_request, timeout=timeout) as response:
            token = response.read().decode()
        type_request = urllib.request.Request(
            base_url.rstrip("/") + "/latest/meta-data/instance-type", headers={"X-aws-ec2-metadata-token": token})
        with opener.open(type_request, timeout=timeout) as response:
            return response.read().decode().strip()
    except (OSError, ValueError):
        return ""
