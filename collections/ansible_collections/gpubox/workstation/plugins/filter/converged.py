"""Filters for skipping a role's body when it can change nothing (see the converged module)."""

from __future__ import annotations

import re


def converged_whole_role(role: str, run_tags: list[str], skip_tags: list[str]) -> bool:
    """Whether this run runs the whole role: no --tags (a tagged run must do its topic) and no
    --skip-tags of the role or one of its topics (role_topic). Only such a run may skip the body,
    and only its body may be recorded."""
    topic = re.compile(r"^%s(_|$)" % re.escape(role))
    return list(run_tags) == ["all"] and not any(topic.match(tag) for tag in skip_tags)


def converged_selected(role: str, run_tags: list[str], skip_tags: list[str]) -> bool:
    """Whether this run can run any of the role's tasks: every role task carries the role's name as a
    tag (the playbooks tag each role) and its topic tags start with it, so a --tags list that names
    neither leaves the role out, as does --skip-tags with the role's name."""
    if role in skip_tags:
        return False
    if "all" in run_tags or "tagged" in run_tags:
        return True
    topic = re.compile(r"^%s(_|$)" % re.escape(role))
    return any(topic.match(tag) for tag in run_tags)


def converged_skip(report: dict, digest: str, role: str, run_tags: list[str], skip_tags: list[str]) -> bool:
    """Whether a role may skip its body: a whole-role run, a record of a successful body with the
    same input digest, no pending apply and nothing on the host that differs from the record."""
    return bool(converged_whole_role(role, run_tags, skip_tags) and report and report.get("digest")
                and report.get("digest") == digest and not report.get("pending") and not report.get("drift"))


def converged_plan(reports: dict, roles: list[str], digests: list[str], run_tags: list[str], skip_tags: list[str]) -> dict[str, bool]:
    """converged_skip for several roles at once: role -> skip."""
    if len(roles) != len(digests):
        raise ValueError("one digest per role: %d roles, %d digests" % (len(roles), len(digests)))
    return {role: converged_skip(reports.get(role, {}), digest, role, run_tags, skip_tags) for role, digest in zip(roles, digests)}


class FilterModule:
    def filters(self):
        return {"converged_skip": converged_skip, "converged_plan": converged_plan, "converged_whole_role": converged_whole_role}
