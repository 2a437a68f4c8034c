"""The team policy's verbs and options: `cost` (month-to-date spend against the budget), `budget
raise|show` (a manager or IT lifts an owner's budget for one month, recorded with who and why), and
the request options provision and plan share (--tag, --plan-ref)."""

from __future__ import annotations

import argparse


def add_request_options(group: argparse._ActionsContainer, *, plan_ref: bool = True) -> None:
    """--tag (the team policy's required tags) and, for provision, --plan-ref."""
    group.add_argument("--tag", action="append", metavar="KEY=VALUE",
                       help="a tag for the workstation and its disks, e.g. cost-center=CC-1234 or project=churn "
                            "(repeatable; the team policy may require some: docs/policy.md)")
    if plan_ref:
        group.add_argument("--plan-ref", default="", metavar="REFERENCE",
                           help="the approved plan page's reference, kept as the gpubox:plan tag")
