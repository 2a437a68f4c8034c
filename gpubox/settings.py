"""The roles' settings as Ansible would resolve them for a workstation, read from the files
themselves so documents generated from them cannot drift from what the roles apply.

Precedence (lowest first, as Ansible orders these sources): roles/*/defaults/main.yml, an
inventory's group_vars/all, the project's group_vars/all, an inventory's
group_vars/gpu_workstations, then extra vars (what runner.py passes, e.g. --idle-stop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

PROJECT = Path(__file__).resolve().parent.parent
ROLES = ("base", "hardening", "ssh_access", "nvidia_driver", "tensorflow", "pytorch", "jupyter", "autostop")
GROUP = "gpu_workstations"


def _load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def group_vars(directory: Path, group: str) -> dict[str, Any]:
    """group_vars/<group>.yml(.yaml) or every file in group_vars/<group>/, as Ansible reads them."""
    merged: dict[str, Any] = {}
    base = directory / "group_vars"
    for path in (base / f"{group}.yml", base / f"{group}.yaml"):
        merged.update(_load_yaml(path))
    folder = base / group
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yml", ".yaml"):
                merged.update(_load_yaml(path))
    return merged


@dataclass(frozen=True)
class Settings:
    values: dict[str, Any]
    sources: list[str] = field(default_factory=list)

    def get(self, name: str) -> Any:
        """A variable with its simple templates ("{{ other | default('x') }}") resolved."""
        return self._resolve(self.values.get(name), depth=0)

    def _resolve(self, value: Any, depth: int) -> Any:
        if isinstance(value, list):
            return [self._resolve(item, depth) for item in value]
        if isinstance(value, dict):
            return {key: self._resolve(item, depth) for key, item in value.items()}
        if isinstance(value, str) and "{{" in value and depth < 5:
            try:
                return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value).render(self.values)
            except jinja2.TemplateError:
                return value  # an Ansible-only expression: shown as written
        return value


def load(inventory: Path | None = None, extra: dict[str, Any] | None = None, project: Path = PROJECT) -> Settings:
    merged: dict[str, Any] = {}
    sources = []
    for role in ROLES:
        merged.update(_load_yaml(project / "roles" / role / "defaults" / "main.yml"))
    sources.append("roles/*/defaults/main.yml")
    inventory_dir = (inventory if inventory.is_dir() else inventory.parent) if inventory else None
    layers = [(inventory_dir, "all"), (project, "all"), (inventory_dir, GROUP)]
    for directory, group in layers:
        if directory is None:
            continue
        found = group_vars(directory, group)
        merged.update(found)
        if found:
            shown = directory / "group_vars" / group
            sources.append(str(shown.relative_to(project)) if shown.is_relative_to(project) else str(shown))
    if extra:
        merged.update(extra)
        sources.append("runner.py options (" + ", ".join(sorted(extra)) + ")")
    return Settings(merged, sources)


def template_settings(relative: str, names: tuple[str, ...], project: Path = PROJECT) -> dict[str, str]:
    """Fixed 'Name value' lines of a role template (e.g. sshd's forwarding rules)."""
    text = (project / relative).read_text()
    found = {}
    for name in names:
        match = re.search(rf"^{re.escape(name)} (\S+)\s*$", text, re.MULTILINE)
        if match:
            found[name] = match.group(1)
    return found
