"""group_vars/ takes effect however a run starts: site.yml, a single playbook, or runner.py.

Each way runs against a real test host with a different value of base_timezone set only in
a copy of the project's group_vars/, and the host must end up with that time zone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

COPIED = ["ansible.cfg", "collections", "site.yml", "playbooks", "roles", "group_vars", "inventory", "gpubox", "runner.py", "images"]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    for name in COPIED:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, copy / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    return copy


def set_timezone(project: Path, zone: str) -> None:
    (project / "group_vars" / "all" / "zz_test.yml").write_text(f"---\nbase_timezone: {zone}\n")


def host_timezone(host) -> str:
    result = host.exec("readlink", "/etc/localtime")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split("zoneinfo/", 1)[1]


def test_site_group_vars_do_not_repeat_role_defaults():
    """A default repeated in group_vars/all beats the inventory's all.yml for no gain."""
    defaults = {}
    for path in PROJECT.glob("roles/*/defaults/main.yml"):
        defaults.update(yaml.safe_load(path.read_text()) or {})
    for path in (PROJECT / "group_vars" / "all").glob("*.yml"):
        settings = yaml.safe_load(path.read_text()) or {}
        repeated = sorted(name for name, value in settings.items() if name in defaults and defaults[name] == value)
        assert repeated == [], f"{path.name} repeats role defaults: {repeated}"


def test_playbook_group_vars_directory_is_the_shared_one():
    link = PROJECT / "playbooks" / "group_vars"
    assert link.is_symlink() and link.resolve() == (PROJECT / "group_vars").resolve()


@pytest.mark.parametrize(
    ("entry", "zone"),
    [("site.yml", "Europe/Berlin"), ("playbooks/base.yml", "America/Chicago"), ("runner.py", "Asia/Tokyo")],
)
def test_group_vars_reach_the_host(entry, zone, project_copy, debian12_host, tmp_path):
    set_timezone(project_copy, zone)
    assert host_timezone(debian12_host) != zone
    if entry == "runner.py":
        home = tmp_path / "home"
        home.mkdir()
        command = [
            sys.executable, "runner.py", "configure", "--host", "127.0.0.1", "--port", str(debian12_host.port),
            "--user", "admin", "--key", str(debian12_host.key), "--name", "gvtest", "--tags", "base_time",
        ]
        env = run_env(home)
    else:
        inventory = debian12_host.inventory(tmp_path / "hosts.yml")
        command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), entry, "--tags", "base_time"]
        env = run_env()
    result = subprocess.run(command, cwd=project_copy, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert host_timezone(debian12_host) == zone
