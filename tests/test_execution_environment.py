"""execution-environment.yml: `ansible-builder create` makes a build context that carries what the
playbooks need (building the image needs a registry, which this machine lacks)."""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import ansible.release
import ansible_collections
import pytest
import yaml

from conftest import PROJECT, VENV_BIN

# Namespaced names in YAML (module keys, filters, lookups): namespace.collection.plugin.
FQCN = re.compile(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b")
COLLECTION_ROOTS = [Path(path) for path in ansible_collections.__path__] + [PROJECT / "collections" / "ansible_collections"]


def builder() -> str:
    found = shutil.which("ansible-builder", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip("ansible-builder is not installed: pip install -r requirements-dev.txt")
    return found


def collections_used() -> set[str]:
    """Every collection the playbooks, roles and inventories name (the fleet inventory's plugin is
    amazon.aws's), other than ansible.builtin."""
    text = "\n".join(path.read_text() for folder in ("roles", "playbooks", "inventory") for path in (PROJECT / folder).rglob("*.yml"))
    text += (PROJECT / "site.yml").read_text()
    names = {f"{namespace}.{name}" for namespace, name in FQCN.findall(text)}
    installed = {name for name in names if any((root / Path(*name.split("."))).is_dir() for root in COLLECTION_ROOTS)}
    return installed - {"ansible.builtin"}


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ee") / "context"
    result = subprocess.run([builder(), "create", "-f", "execution-environment.yml", "-c", str(folder)],
                            cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def test_definition_is_schema_version_3():
    definition = yaml.safe_load((PROJECT / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    assert definition["dependencies"]["galaxy"] == "collections/requirements.yml"


def test_context_carries_the_collections_the_playbooks_use(context):
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert requirements == yaml.safe_load((PROJECT / "collections" / "requirements.yml").read_text())
    carried = {entry["name"] for entry in requirements["collections"]} | {"gpubox.workstation"}
    used = collections_used()
    assert {"amazon.aws", "gpubox.workstation"} <= used  # the scan finds what is there
    assert used <= carried, used - carried
    galaxy = yaml.safe_load((context / "_build" / "gpubox.workstation" / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("gpubox", "workstation")
    containerfile = (context / "Containerfile").read_text()
    assert "ansible-galaxy collection install --offline -p /usr/share/ansible/collections /build/gpubox.workstation" in containerfile


def test_the_in_repo_collection_installs_from_the_context(context, tmp_path):
    target = tmp_path / "collections"
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_COLLECTIONS_PATH": str(target)}
    result = subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(target),
                             str(context / "_build" / "gpubox.workstation")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = target / "ansible_collections" / "gpubox" / "workstation"
    source = PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation"
    assert sorted(path.name for path in (installed / "plugins" / "filter").glob("*.py")) == \
        sorted(path.name for path in (source / "plugins" / "filter").glob("*.py"))
    assert (installed / "MANIFEST.json").exists()


def test_context_carries_the_python_and_system_packages_and_the_tested_ansible(context):
    python = (context / "_build" / "requirements.txt").read_text()
    assert re.search(r"^boto3==", python, re.M)
    assert re.search(r"^openssh-clients\b", (context / "_build" / "bindep.txt").read_text(), re.M)
    containerfile = (context / "Containerfile").read_text()
    assert f"ansible-core=={ansible.release.__version__}" in containerfile
    runner = re.search(r"^ansible-runner==(\S+)", (PROJECT / "requirements.txt").read_text(), re.M)
    assert runner and f"ansible-runner=={runner.group(1)}" in containerfile
    boto3 = re.search(r"^boto3==(\S+)", (PROJECT / "requirements.txt").read_text(), re.M)
    assert boto3 and f"boto3=={boto3.group(1)}" in python


# The controller-side module IT's EC2 playbooks call imports the gpubox package (from the project
# checkout, which the playbooks put on PYTHONPATH): the image must carry everything that imports.
EC2_MODULE = PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation" / "plugins" / "modules" / "ec2_workstation.py"
PROVIDED = {"ansible", "ansible_collections", "gpubox", "__future__"}


def _gpubox_file(dotted: str) -> Path | None:
    path = PROJECT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imported_outside_the_project(start: Path) -> set[str]:
    """Top-level names of everything `start` imports, following gpubox's own modules (lazy imports
    inside functions included)."""
    seen: set[Path] = set()
    todo, found = [start], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                dotted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                dotted = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in dotted:
                if name.split(".")[0] == "gpubox":
                    todo.extend(file for file in [_gpubox_file(name)] if file)
                else:
                    found.add(name.split(".")[0])
    return found - PROVIDED - set(sys.stdlib_module_names)


def _closure(requirements: list[str]) -> set[str]:
    """Distributions these requirements install, with their own requirements (markers and extras left out)."""
    names, todo = set(), [re.split(r"[<>=!~ ;\[]", line, maxsplit=1)[0] for line in requirements]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if not name or name in names:
            continue
        names.add(name)
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            todo.extend(re.split(r"[<>=!~ ;\[(]", requirement, maxsplit=1)[0] for requirement in importlib.metadata.requires(name) or []
                        if "extra ==" not in requirement)
    return names


def test_the_image_carries_what_the_ec2_module_imports():
    definition = yaml.safe_load((PROJECT / "execution-environment.yml").read_text())
    requirements = [line.strip() for line in (PROJECT / definition["dependencies"]["python"]).read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    carried = _closure([*requirements, definition["dependencies"]["ansible_core"]["package_pip"],
                        definition["dependencies"]["ansible_runner"]["package_pip"]])
    imported = imported_outside_the_project(EC2_MODULE)
    assert {"boto3", "yaml"} <= imported  # the scan follows gpubox's imports, lazy ones too
    distributions = importlib.metadata.packages_distributions()
    missing = {name: distributions.get(name, [name]) for name in imported
               if not any(dist.lower().replace("_", "-") in carried for dist in distributions.get(name, [name]))}
    assert missing == {}, f"add to requirements-ee.txt: {missing}"
