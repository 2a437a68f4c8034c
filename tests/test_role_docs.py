"""Each role's README variable table is generated from its meta/argument_specs.yml (scripts/role_docs.py)."""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLES = sorted(path.parent.parent.name for path in (REPO / "roles").glob("*/meta/argument_specs.yml"))


def _load_generator():
    spec = importlib.util.spec_from_file_location("role_docs", REPO / "scripts" / "role_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role_docs = _load_generator()


def _copy_roles(tmp_path: Path) -> Path:
    for role in ROLES:
        for part in ("README.md", "meta", "defaults"):
            source = REPO / "roles" / role / part
            target = tmp_path / "roles" / role / part
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, target)
    return tmp_path


def test_every_role_readme_table_is_current():
    assert ROLES, "no role with meta/argument_specs.yml found"
    assert role_docs.stale_readmes(REPO) == []


@pytest.mark.parametrize("role", ROLES)
def test_the_table_names_exactly_the_spec_inputs(role):
    readme = (REPO / "roles" / role / "README.md").read_text()
    table = readme.split(role_docs.BEGIN, 1)[1].split(role_docs.END, 1)[0]
    documented = re.findall(r"^\| `([a-z0-9_]+)` \|", table, flags=re.MULTILINE)
    spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    assert documented == list(spec["argument_specs"]["validate"]["options"])


def test_a_changed_description_makes_the_readme_stale_until_regenerated(tmp_path):
    repo = _copy_roles(tmp_path)
    spec_file = repo / "roles" / "autostop" / "meta" / "argument_specs.yml"
    spec_file.write_text(spec_file.read_text().replace(
        "description: Minutes of warning before the action.",
        "description: Minutes of warning before the power-off."))
    problems = role_docs.stale_readmes(repo)
    assert len(problems) == 1 and "roles/autostop/README.md" in problems[0]

    current, wanted = role_docs.regenerate(repo / "roles" / "autostop")
    (repo / "roles" / "autostop" / "README.md").write_text(wanted)
    assert "Minutes of warning before the power-off." in wanted
    assert role_docs.stale_readmes(repo) == []


def test_a_new_default_in_defaults_main_reaches_the_table(tmp_path):
    # hardening's spec names no defaults: the table's default column comes from defaults/main.yml.
    repo = _copy_roles(tmp_path)
    defaults = repo / "roles" / "hardening" / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("hardening_ssh_max_auth_tries: 3", "hardening_ssh_max_auth_tries: 4"))
    assert role_docs.stale_readmes(repo)
    _, wanted = role_docs.regenerate(repo / "roles" / "hardening")
    assert "| `hardening_ssh_max_auth_tries` | int | `4` |" in wanted


def test_a_readme_without_markers_is_named_with_the_fix(tmp_path):
    repo = _copy_roles(tmp_path)
    readme = repo / "roles" / "base" / "README.md"
    readme.write_text(readme.read_text().replace(role_docs.BEGIN, ""))
    (problem,) = role_docs.stale_readmes(repo)
    assert "roles/base/README.md" in problem and "scripts/role_docs.py" in problem
