"""The tag rule that preflight relies on (playbooks/preflight.yml checks only the roles a --tags run
selects, by gpubox.workstation.converged_selected): every task of a role is tagged with the role's
name or one of its topics (<role>_...), and `always` only on the steps that decide whether the role
runs and on its own input checks. A task tagged otherwise could run in a --tags run whose preflight
did not check that role's inputs."""

from __future__ import annotations

from pathlib import Path

import yaml

from conftest import PROJECT

ROLES = sorted(path.name for path in (PROJECT / "roles").iterdir() if (path / "tasks" / "main.yml").is_file())


def tasks_of(items: list) -> list[dict]:
    found = []
    for item in items or []:
        if isinstance(item, dict):
            found.append(item)
            for section in ("block", "rescue", "always"):
                found.extend(tasks_of(item.get(section)))
    return found


def always_allowed(task: dict, role: str) -> bool:
    """The drift look, the include of the body, and the body's include of the role's own checks."""
    if "gpubox.workstation.converged" in task:
        return True
    include = task.get("ansible.builtin.include_tasks") or {}
    if isinstance(include, dict) and include.get("file") == "body.yml":
        return True
    included = task.get("ansible.builtin.include_role") or {}
    return included.get("name") == role and included.get("tasks_from") == "validate"


def test_every_role_task_is_tagged_by_its_role_and_always_only_where_it_decides():
    assert len(ROLES) == 8, ROLES
    wrong = []
    for role in ROLES:
        for path in sorted((PROJECT / "roles" / role / "tasks").glob("*.yml")):
            for task in tasks_of(yaml.safe_load(path.read_text())):
                tags = task.get("tags") or []
                tags = [tags] if isinstance(tags, str) else tags
                include = task.get("ansible.builtin.include_tasks") or task.get("ansible.builtin.include_role")
                applied = include.get("apply", {}).get("tags", []) if isinstance(include, dict) else []
                for tag in [*tags, *applied]:
                    if tag == "always":
                        if not always_allowed(task, role):
                            wrong.append(f"{path.relative_to(PROJECT)}: '{task.get('name')}' is tagged always")
                    elif tag != role and not tag.startswith(role + "_"):
                        wrong.append(f"{path.relative_to(PROJECT)}: '{task.get('name')}' has tag {tag!r}, not {role} or {role}_*")
    assert wrong == []


def test_the_rule_catches_a_stray_tag():
    stray = {"name": "x", "ansible.builtin.command": "true", "tags": ["always"]}
    assert not always_allowed(stray, "base")
    assert always_allowed({"name": "Look", "gpubox.workstation.converged": {"roles": ["base"]}}, "base")
