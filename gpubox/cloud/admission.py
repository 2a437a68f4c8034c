"""provision's one step before anything is created (gpubox/commands/provision.py calls it once):
the request held to the team policy's rules (gpubox/cloud/policy.py) and to the owner's monthly
budget (gpubox/cloud/budget.py), with its tags and the approved plan's reference added."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from gpubox.cloud import budget, policy
from gpubox.errors import GpuboxError


def gate(request: Any, *, idle_stop: int | None, tags: list[str] | None, plan_ref: str = "", dry_run: bool = False) -> Any:
    """The request (an ec2.Request) with its --tag values and the approved plan's reference as tags,
    refused when outside the team policy or when its owner is at or over the month's budget. A dry
    run without credentials says it could not read the policy instead of failing."""
    chosen = policy.parse_tags(tags)
    if plan_ref:
        if not (0 < len(plan_ref) <= 128 and set(plan_ref) <= policy.TAG_KEY_CHARACTERS - {" "}):
            raise GpuboxError(f"--plan-ref {plan_ref} is not a plan reference.",
                              "Copy the reference from the approved plan page (its 'Reference' line).", exit_code=2)
        chosen[policy.PLAN_TAG] = plan_ref
    team = None
    if dry_run:
        team, unread = policy.load_offline()
        if unread:
            print(f"note: {unread} The dry run could not check the team policy; the real run does.", file=sys.stderr)
    asked = policy.Ask(instance_type=request.instance_type, region=request.region, disk_gb=request.disk_gb, spot=request.spot,
                       idle_stop=idle_stop, tags=chosen)
    team = policy.check(asked, team if dry_run else None, read=not dry_run)
    if team is not None:
        budget.check_provision(team, request.region)
    return dataclasses.replace(request, tags=tuple(sorted(chosen.items())))
