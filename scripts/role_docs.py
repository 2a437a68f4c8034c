#!/usr/bin/env python3
"""Write each role's variable table into its README from meta/argument_specs.yml.

The argument spec is the one place a role's inputs are described: Ansible checks values against
it, and this script renders it as the README's table between two markers, so the table cannot
drift from what the role accepts. Defaults come from the spec where it names one, else from
defaults/main.yml (the value the role really starts from).

    python scripts/role_docs.py          # rewrite every role's table
    python scripts/role_docs.py --check  # exit 1 and name each stale README (tests/test_role_docs.py)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- BEGIN variables: generated from meta/argument_specs.yml by scripts/role_docs.py; do not edit -->"
END = "<!-- END variables -->"
# A default longer than this is not repeated in the table: the reader follows the pointer instead.
LONGEST_INLINE_DEFAULT = 60
ENTRY_POINT = "validate"


class StaleError(Exception):
    """A README without the markers, or with a table that differs from its spec."""


def _one_line(text: str | list[str]) -> str:
    if isinstance(text, list):
        text = " ".join(text)
    # A pipe would end the table cell; newlines would end the row.
    return " ".join(str(text).split()).replace("|", "\\|")


def _flow(value: Any) -> str:
    """The value on one line, as a reader would write it in group_vars (no YAML quoting noise)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_flow(item)}" for key, item in value.items()) + "}"
    return str(value)


def render_default(name: str, spec: dict[str, Any], defaults: dict[str, Any]) -> str:
    if "default" in spec:
        value = spec["default"]
    elif name in defaults:
        value = defaults[name]
    elif spec.get("required"):
        return "(required)"
    else:
        return "(none)"
    text = _flow(value).strip()
    if "\n" in text or len(text) > LONGEST_INLINE_DEFAULT:
        if isinstance(value, list):
            return f"{len(value)} entries, see `defaults/main.yml`"
        return "see `defaults/main.yml`"
    return f"`{text}`".replace("|", "\\|")


def render_type(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "str")
    if kind == "list" and "elements" in spec:
        kind = f"list of {spec['elements']}"
    return kind


def render_meaning(spec: dict[str, Any]) -> str:
    parts = [_one_line(spec.get("description", ""))]
    if "choices" in spec:
        parts.append("One of " + ", ".join(f"`{choice}`" for choice in spec["choices"]) + ".")
    suboptions = spec.get("options") or {}
    if suboptions:
        fields = []
        for field, field_spec in suboptions.items():
            detail = render_type(field_spec)
            if field_spec.get("required"):
                detail += ", required"
            elif "default" in field_spec:
                detail += f", default `{_flow(field_spec['default'])}`"
            fields.append(f"`{field}` ({detail}): {_one_line(field_spec.get('description', ''))}")
        parts.append("Each entry: " + " ".join(fields))
    return " ".join(part for part in parts if part)


def render_table(role_dir: Path) -> str:
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options = specs[ENTRY_POINT].get("options") or {}
    defaults_file = role_dir / "defaults" / "main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else None) or {}
    rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, spec in options.items():
        rows.append(
            f"| `{name}` | {render_type(spec)} | {render_default(name, spec, defaults)} | {render_meaning(spec)} |"
        )
    return "\n".join(rows)


def regenerate(role_dir: Path) -> tuple[str, str]:
    """The README as it is and as it should be."""
    readme = role_dir / "README.md"
    current = readme.read_text()
    if BEGIN not in current or END not in current:
        raise StaleError(f"{readme}: no generated variable table; put the lines\n{BEGIN}\n{END}\n"
                         "where the table belongs and run python scripts/role_docs.py")
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return current, f"{head}{BEGIN}\n{render_table(role_dir)}\n{END}{tail}"


def role_dirs(repo: Path = REPO) -> list[Path]:
    return sorted(path.parent.parent for path in (repo / "roles").glob("*/meta/argument_specs.yml"))


def stale_readmes(repo: Path = REPO) -> list[str]:
    problems = []
    for role_dir in role_dirs(repo):
        try:
            current, wanted = regenerate(role_dir)
        except StaleError as error:
            problems.append(str(error))
            continue
        if current != wanted:
            problems.append(f"{role_dir / 'README.md'}: the variable table differs from meta/argument_specs.yml; "
                            "run python scripts/role_docs.py")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a README is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_readmes()
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    for role_dir in role_dirs():
        current, wanted = regenerate(role_dir)
        if current != wanted:
            (role_dir / "README.md").write_text(wanted)
            print(f"wrote {role_dir / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
