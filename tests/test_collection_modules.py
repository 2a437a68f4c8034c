"""Every module of gpubox.workstation is documented: ansible-doc renders it, and the facts modules
declare check mode. No role ships a probe script any more."""

from __future__ import annotations

import importlib
import re
import subprocess

import pytest
import yaml

from conftest import PROJECT, VENV_BIN, run_env

MODULES_DIR = PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation" / "plugins" / "modules"
MODULES = sorted(path.stem for path in MODULES_DIR.glob("*.py") if path.stem != "__init__")


def documentation(name: str) -> dict:
    module = importlib.import_module(f"ansible_collections.gpubox.workstation.plugins.modules.{name}")
    for block in ("EXAMPLES", "RETURN"):
        assert yaml.safe_load(getattr(module, block)), f"{name} has an empty {block}"
    return yaml.safe_load(module.DOCUMENTATION)


def test_every_role_has_its_facts_module():
    assert {f"{role}_info" for role in ("base", "hardening", "ssh_access", "nvidia_driver", "tensorflow", "jupyter")} <= set(MODULES)


def ansible_doc(*args: str) -> str:
    result = subprocess.run([str(VENV_BIN / "ansible-doc"), *args], cwd=PROJECT, env=run_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "[WARNING]" not in result.stderr, result.stderr
    return " ".join(result.stdout.split())


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_the_module(name):
    doc = documentation(name)
    assert doc["module"] == name
    page = ansible_doc(f"gpubox.workstation.{name}")
    assert f"MODULE gpubox.workstation.{name}" in page
    assert " ".join(doc["description"][0].split()[:8]) in page
    # The snippet view is where ansible-doc prints the short description.
    assert f"- name: {doc['short_description']}" in ansible_doc("-s", f"gpubox.workstation.{name}")


@pytest.mark.parametrize("name", [name for name in MODULES if name.endswith("_info")])
def test_facts_modules_support_check_mode(name):
    assert "gpubox.workstation.facts" in documentation(name)["extends_documentation_fragment"]
    assert re.search(r"check_mode:`? description: [^`]* support: full", ansible_doc(f"gpubox.workstation.{name}"))
    source = (MODULES_DIR / f"{name}.py").read_text()
    assert "supports_check_mode=True" in source and "changed=False" in source


def test_no_role_ships_a_probe_script():
    assert sorted(PROJECT.glob("roles/*/files/probe_*")) == []
