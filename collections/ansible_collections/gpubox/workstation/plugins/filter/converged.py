"""Filters for skipping a role's body when it can change nothing (see the converged module)."""

from __future__ import annotations


def converged_skip(report: dict, digest: str, full_run: bool) -> bool:
    """Whether a role may skip its body: a whole-role run (no --tags/--skip-tags, which must do
    their topic), a record of a successful body with the same input digest, no pending apply and
    nothing on the host that differs from the record."""
    return bool(full_run and report and report.get("digest") and report.get("digest") == digest
                and not report.get("pending") and not report.get("drift"))


def converged_plan(reports: dict, roles: list[str], digests: list[str], full_run: bool) -> dict[str, bool]:
    """converged_skip for several roles at once: role -> skip."""
    if len(roles) != len(digests):
        raise ValueError("one digest per role: %d roles, %d digests" % (len(roles), len(digests)))
    return {role: converged_skip(reports.get(role, {}), digest, full_run) for role, digest in zip(roles, digests)}


class FilterModule:
    def filters(self):
        return {"converged_skip": converged_skip, "converged_plan": converged_plan}
