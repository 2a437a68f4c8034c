"""The roles' own input rules, applied to what the CLI passes before anything is created.

site.yml's preflight asserts each role's inputs (roles/<role>/tasks/validate.yml) once the host
is reached: for a new EC2 workstation that is after the GPU instance is launched and billing. The
CLI evaluates the same assertions here, with Ansible's own templating, on the values the run would
have (role defaults < the project's group_vars < the CLI's extra vars), so `provision --dry-run
--idle-stop 3` is refused exactly as the real run would be, and before it creates anything.
"""

from __future__ import annotations

import re
from typing import Any

from gpubox import settings
from gpubox.errors import GpuboxError

RULES = "tasks/validate.yml"


def _trusted(value: Any, trust: Any) -> Any:
    """Values read from the project's YAML are templates Ansible would render (it trusts them too)."""
    if isinstance(value, str) and "{{" in value:
        return trust(value)
    if isinstance(value, list):
        return [_trusted(item, trust) for item in value]
    if isinstance(value, dict):
        return {key: _trusted(item, trust) for key, item in value.items()}
    return value


def _rules(role: str) -> list[str]:
    """The condition of every assert in the role's validate.yml."""
    path = settings.PROJECT / "roles" / role / RULES
    if not path.exists():
        return []
    import yaml  # noqa: PLC0415

    found = []
    for task in yaml.safe_load(path.read_text()) or []:
        check = task.get("ansible.builtin.assert") or {}
        conditions = check.get("that", [])
        found += [str(condition) for condition in ([conditions] if isinstance(conditions, str) else conditions)]
    return found


def check(extra: dict[str, Any], flags: dict[str, str]) -> None:
    """Refuse (exit 2, naming the rule) an extra var that breaks an assertion of its role;
    `flags`: the CLI option that set each variable (autostop_idle_minutes: --idle-stop)."""
    if not extra:
        return
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415  (imported late: `--help` needs no Ansible)
    from ansible.template import Templar, trust_as_template  # noqa: PLC0415

    values = _trusted(settings.load(extra=extra).values, trust_as_template)
    templar = Templar(loader=DataLoader(), variables=values)
    for role in sorted({name.split("_")[0] for name in extra}):
        for condition in _rules(role):
            named = [name for name in extra if re.search(rf"\b{re.escape(name)}\b", condition)]
            if not named:
                continue  # a rule on the role's settings alone: the project's own configuration, not this command
            try:
                kept = templar.evaluate_conditional(trust_as_template(condition))
            except Exception as exc:  # noqa: BLE001  (Ansible's template errors are many classes)
                raise GpuboxError(f"The {role} role's rule `{condition}` could not be evaluated ({type(exc).__name__}).",
                                  f"Check roles/{role}/{RULES} and the project's group_vars.", exit_code=2) from exc
            if kept:
                continue
            given = ", ".join(f"{flags.get(name, name)} {extra[name]}" for name in named)
            involved = sorted(set(re.findall(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b", condition)) & set(values))
            shown = ", ".join(f"{name}={templar.template(values[name])}" for name in involved)
            raise GpuboxError(f"{given} breaks the {role} role's rule `{condition}` (roles/{role}/{RULES}; here {shown}). "
                              "Nothing was created.",
                              f"Give {' and '.join(flags.get(name, name) for name in named)} a value that keeps the rule: "
                              "site.yml's preflight refuses this one the same way, after the instance is launched.", exit_code=2)
