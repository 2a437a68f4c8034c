"""runner.py and the workstation agree: every value in gpubox/contract.py equals its twin in the
roles and playbooks, read from their YAML (and rendered where it is built from other variables).
A change on one side without the other fails here."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from conftest import PROJECT
from gpubox import contract
from gpubox.cloud import images, launch

ROLES = PROJECT / "roles"
PLAYBOOKS = PROJECT / "playbooks"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def role_variables(role: str) -> dict[str, Any]:
    """A role's defaults with its vars on top, as Ansible layers them."""
    merged: dict[str, Any] = {}
    for layer in ("defaults", "vars"):
        path = ROLES / role / layer / "main.yml"
        if path.exists():
            merged.update(load(path) or {})
    return merged


def render(value: str, variables: dict[str, Any]) -> str:
    """A templated value with its role's own variables filled in (what the role writes on the host)."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(value).render(variables)


def ec2_variables() -> dict[str, Any]:
    return load(PLAYBOOKS / "vars" / "ec2.yml")


def test_name_pattern():
    pattern = ec2_variables()["gpubox_name_pattern"]
    assert pattern == contract.NAME_PATTERN.pattern
    # The same names pass on both sides (Ansible's `match` test is re.match).
    for name in ("alice", "a", "gpu-1", "x" * 31, "Alice", "1gpu", "a_b", "x" * 32, "", "bob\n", "al*", "a?"):
        assert bool(re.match(pattern, name)) == bool(contract.NAME_PATTERN.match(name)), name


def test_the_playbooks_name_rule_refuses_a_wildcard_and_a_trailing_newline():
    """Through Ansible's own `match` test, as provision.yml and teardown.yml apply it."""
    from ansible.plugins.test.core import TestModule  # noqa: PLC0415  (ansible-core, only for this test)

    match = TestModule().tests()["match"]
    pattern = ec2_variables()["gpubox_name_pattern"]
    assert match("alice-gpu", pattern) and match("x" * 31, pattern)
    for refused in ("bob\n", "al*", "a?", "x" * 32, "Alice"):
        assert not match(refused, pattern), refused


@pytest.mark.parametrize("playbook", ["provision.yml", "teardown.yml"])
def test_ec2_playbooks_take_the_contract_from_one_file(playbook):
    [play] = load(PLAYBOOKS / playbook)
    assert play["vars_files"] == ["vars/ec2.yml"]
    # Comments may name the tags; values may not repeat them (or the region, or the pattern).
    body = yaml.safe_dump(play)
    for literal in (contract.TAG_MANAGED, contract.TAG_NAME, contract.DEFAULT_REGION, contract.NAME_PATTERN.pattern):
        assert literal not in body, literal


# launch.Spec fields IT's door does not take as such: made from provision --from-snapshot (not an option of the module).
FROM_SNAPSHOT_ONLY = {"snapshot_id", "data_disks"}
OPTION_OF_FIELD = {"ami": "image", "request_tags": "tags"}


def test_provision_playbook_passes_every_launch_input():
    """Each input of a launch (gpubox/cloud/launch.py's Spec) is an option of the module IT's
    provision.yml calls, and provision.yml passes it: a new launch option cannot stay runner.py's only."""
    from ansible_collections.gpubox.workstation.plugins.modules import ec2_workstation  # noqa: PLC0415

    wanted = {OPTION_OF_FIELD.get(field.name, field.name) for field in dataclasses.fields(launch.Spec)} - FROM_SNAPSHOT_ONLY
    assert wanted <= set(ec2_workstation.argument_spec())
    [play] = load(PLAYBOOKS / "provision.yml")
    [call] = [task["gpubox.workstation.ec2_workstation"] for task in play["tasks"] if "gpubox.workstation.ec2_workstation" in task]
    assert wanted | {"data"} <= set(call), sorted(wanted | {"data"} - set(call))


def test_report_path():
    assert role_variables("tensorflow")["tensorflow_report_path"] == contract.REPORT_PATH
    spec = load(ROLES / "tensorflow" / "meta" / "argument_specs.yml")["argument_specs"]["validate"]["options"]
    assert spec["tensorflow_report_path"]["default"] == contract.REPORT_PATH


def test_autostop_status_and_holds():
    variables = role_variables("autostop")
    assert variables["autostop_configured_marker"] == contract.CONFIGURED_MARKER
    assert variables["autostop_holds_dir"] == contract.HOLDS_DIR
    assert variables["autostop_idle_limits_dir"] == contract.IDLE_LIMITS_DIR
    assert render(variables["autostop_config"]["idle_limits_dir"], variables) == contract.IDLE_LIMITS_DIR
    assert render(variables["autostop_config"]["holds_dir"], variables) == contract.HOLDS_DIR
    assert render(variables["autostop_config"]["status_file"], variables) == contract.AUTOSTOP_STATUS_PATH


def test_jupyter_token_and_settings():
    jupyter = role_variables("jupyter")
    assert jupyter["jupyter_token_file"] == contract.JUPYTER_TOKEN_FILE
    assert jupyter["jupyter_config_dir"] == contract.JUPYTER_SETTINGS_DIR
    # The autostop checker asks each user's Jupyter with the same token, found the same way.
    checker = role_variables("autostop")["autostop_config"]
    assert checker["jupyter_token_file"] == contract.JUPYTER_TOKEN_FILE
    assert checker["jupyter_config_dir"] == contract.JUPYTER_SETTINGS_DIR
    # Each user's settings file is <dir>/<user>.env, and the tunnel's port is written under this name.
    unit = (ROLES / "jupyter" / "templates" / "etc" / "systemd" / "system" / "jupyter@.service.j2").read_text()
    assert "EnvironmentFile={{ jupyter_config_dir }}/%i.env" in unit
    filters = (PROJECT / "collections" / "ansible_collections" / "gpubox" / "workstation" / "plugins" / "filter" / "jupyter.py")
    assert f"{contract.JUPYTER_PORT_SETTING}={{service['port']}}" in filters.read_text()
    # Each user's server socket, where the unit puts it, the tunnel forwards to and the checker asks.
    assert f"/run/{jupyter['jupyter_runtime_directory']}" == contract.JUPYTER_RUNTIME_ROOT
    assert jupyter["jupyter_socket_name"] == contract.JUPYTER_SOCKET_NAME
    assert "--ServerApp.sock=/run/{{ jupyter_runtime_directory }}/%i/{{ jupyter_socket_name }}" in unit
    checker_code = (ROLES / "autostop" / "files" / "gpubox_autostop.py").read_text()
    assert (f'JUPYTER_RUNTIME_ROOT, JUPYTER_SOCKET_NAME = "{contract.JUPYTER_RUNTIME_ROOT}", '
            f'"{contract.JUPYTER_SOCKET_NAME}"') in checker_code


@pytest.mark.parametrize(("role", "variable"), [("autostop", contract.IDLE_MINUTES_VAR), ("base", contract.CA_CERTIFICATES_DIR_VAR)])
def test_variables_runner_sets_are_role_inputs(role, variable):
    assert variable in role_variables(role)
    assert variable in load(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["validate"]["options"]



@pytest.mark.parametrize("role", ["ssh_access", "jupyter"])
def test_the_owner_runner_sets_is_read_by_the_roles_that_make_accounts(role):
    text = "\n".join(path.read_text() for path in (ROLES / role).rglob("*.yml"))
    assert re.search(rf"\b{contract.OWNER_VAR}\b", text)


def test_the_fleet_inventory_finds_what_runner_tags():
    """inventory/aws_ec2.yml: the managed filter is runner.py's, hosts are named and grouped by its tags."""
    inventory = load(PROJECT / "inventory" / "aws_ec2.yml")
    tag_filters = {key: value for key, value in inventory["filters"].items() if key.startswith("tag:")}
    assert tag_filters == {entry["Name"]: entry["Values"][0] for entry in contract.managed_filters()}
    assert inventory["hostnames"][0] == f"tag:{contract.TAG_NAME}"
    assert f"'{contract.TAG_MANAGED}') == '{contract.MANAGED_VALUE}'" in inventory["groups"]["gpu_workstations"]
    assert f"'{contract.TAG_OWNER}'" in inventory["compose"]["gpubox_owner_name"]
    [owner_group] = [group for group in inventory["keyed_groups"] if group["prefix"] == "owner"]
    assert f"'{contract.TAG_OWNER}'" in owner_group["key"]


def test_the_fleet_logs_in_as_the_default_images_account():
    """inventory/group_vars/aws_ec2.yml: without a per-AMI entry, the account of the image runner.py launches by default."""
    settings = load(PROJECT / "inventory" / "group_vars" / "aws_ec2.yml")
    assert settings["gpubox_login_user"] == images.OPERATING_SYSTEMS[images.DEFAULT_OS].login_user


# Each EC2 default lives in gpubox/cloud/spec.py; a playbook, the AWX survey or another Python
# module that writes one again must write the same value (YAML) or not at all (Python).
SPEC_VARIABLES = {"gpubox_instance_type": "instance_type", "gpubox_disk_gb": "disk_gb", "gpubox_deadman_minutes": "deadman_minutes",
                  "gpubox_os": "os", "gpubox_spot": "spot", "gpubox_ssh_port": "ssh_port"}


def _spec_copies(data: Any) -> list[tuple[str, Any]]:
    """(variable, value) of every literal default of a spec option in parsed YAML: a play's or
    vars file's `gpubox_x: value`, and an AWX survey question's `{variable: gpubox_x, default: value}`."""
    found: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        if data.get("variable") in SPEC_VARIABLES and "default" in data:
            found.append((data["variable"], data["default"]))
        for key, value in data.items():
            if key in SPEC_VARIABLES and not (isinstance(value, str) and "{{" in value):
                found.append((key, value))
            found += _spec_copies(value)
    elif isinstance(data, list):
        for item in data:
            found += _spec_copies(item)
    return found


def test_every_playbook_copy_of_an_ec2_default_is_the_spec_s():
    from gpubox.cloud.spec import DEFAULTS
    copies = [(path.relative_to(PROJECT), variable, value) for path in sorted(PLAYBOOKS.rglob("*.yml"))
              for variable, value in _spec_copies(load(path))]
    assert copies, "the walk found none: playbooks/awx.yml's survey has the instance type and disk defaults"
    differing = [(path, variable, value) for path, variable, value in copies
                 if str(value).lower() != str(getattr(DEFAULTS, SPEC_VARIABLES[variable])).lower()]
    assert differing == [], f"gpubox/cloud/spec.py DEFAULTS is {DEFAULTS}"


def test_a_playbook_that_differs_from_the_spec_is_caught():
    from gpubox.cloud.spec import DEFAULTS
    play = yaml.safe_load("- hosts: localhost\n  vars:\n    gpubox_instance_type: g5.xlarge\n    gpubox_disk_gb: '{{ x }}'\n"
                          "  survey: [{variable: gpubox_deadman_minutes, default: 60}]\n")
    assert sorted(_spec_copies(play)) == [("gpubox_deadman_minutes", 60), ("gpubox_instance_type", "g5.xlarge")]
    assert DEFAULTS.instance_type != "g5.xlarge" and DEFAULTS.deadman_minutes != 60


def _python_copies(path: Path) -> list[str]:
    """Where a module writes a spec default as a literal: the instance type, OS or image owner and
    pattern as a string anywhere (dict keys, such as the price table's, are data, not defaults),
    and the disk size, dead-man minutes or SSH port as the default of a name that says so."""
    import ast

    from gpubox.cloud.spec import DEFAULTS
    strings = {DEFAULTS.instance_type, DEFAULTS.image.owner, DEFAULTS.image.name_pattern}
    numbers = {"disk_gb": DEFAULTS.disk_gb, "minutes": DEFAULTS.deadman_minutes, "ssh_port": DEFAULTS.ssh_port}
    tree = ast.parse(path.read_text())
    keys = {id(key) for node in ast.walk(tree) if isinstance(node, ast.Dict) for key in node.keys if key is not None}
    found = [f"{path.name}:{node.lineno} {node.value!r}" for node in ast.walk(tree)
             if isinstance(node, ast.Constant) and node.value in strings and id(node) not in keys]
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.AST]] = []
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            pairs.append((node.target.id, node.value))
        elif isinstance(node, ast.Assign):
            pairs += [(target.id, node.value) for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            pairs += [(str(node.args[0].value), keyword.value) for keyword in node.keywords if keyword.arg == "default"]
        for name, value in pairs:
            for hint, number in numbers.items():
                wanted = hint.replace("_", "-") if name.startswith("--") else hint
                if wanted in name.lower() and isinstance(value, ast.Constant) and value.value == number:
                    found.append(f"{path.name}:{node.lineno} {name} = {number}")
    return found


def test_each_ec2_default_is_written_once_in_python():
    spec = PROJECT / "gpubox" / "cloud" / "spec.py"
    assert _python_copies(spec), "the scan must see the defaults where they are written"
    copies = [copy for path in sorted((PROJECT / "gpubox").rglob("*.py")) if path != spec for copy in _python_copies(path)]
    assert copies == [], "write these as gpubox.cloud.spec.DEFAULTS.<option>"
