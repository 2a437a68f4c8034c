"""The AWX job templates (playbooks/awx.yml): each runs a playbook of this repository that takes
every survey answer as an extra var, and provision and destroy work from survey answers alone
(against moto server; no AWX server is available here, and nothing connects to a moto address)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT, VENV_BIN
from test_fleet_inventory import INVENTORY, _client, env  # noqa: F401  (env is a fixture)

SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
NEEDED = {"provision", "configure", "users", "stop", "destroy"}


def templates() -> list[dict]:
    [play] = yaml.safe_load((PROJECT / "playbooks" / "awx.yml").read_text())
    return play["vars"]["gpubox_awx_job_templates"]


def playbook_text(playbook: str) -> str:
    """The playbook and the vars files its plays load."""
    path = PROJECT / playbook
    text = path.read_text()
    for play in yaml.safe_load(text):
        for vars_file in play.get("vars_files", []):
            text += (path.parent / vars_file).read_text()
    return text


def test_the_templates_a_team_needs_exist():
    assert {template["name"] for template in templates()} == NEEDED


@pytest.mark.parametrize("template", templates(), ids=lambda template: template["name"])
def test_each_survey_answer_is_an_input_of_the_playbook_it_runs(template):
    text = playbook_text(template["playbook"])
    names = [question["variable"] for question in template["survey"]]
    assert len(names) == len(set(names))
    for question in template["survey"]:
        assert re.search(rf"\b{question['variable']}\b", text), question["variable"]
        assert question["type"] in SURVEY_TYPES
        assert question["question_name"] and isinstance(question["required"], bool)
        if question["type"] == "multiplechoice":
            assert question["default"] in question["choices"]
        if "min" in question and "max" in question:
            assert question["min"] <= question["max"]


def test_the_provision_surveys_defaults_are_gpubox_own():
    """AWX's survey passes its defaults as extra vars: they must be what runner.py launches by default."""
    from gpubox import contract  # noqa: PLC0415
    from gpubox.commands.provision import Cloud  # noqa: PLC0415

    [provision] = [entry for entry in templates() if entry["name"] == "provision"]
    defaults = {question["variable"]: question.get("default") for question in provision["survey"]}
    cloud = Cloud()
    assert (defaults["gpubox_instance_type"], defaults["gpubox_disk_gb"], defaults["gpubox_spot"]) == \
        (cloud.instance_type, cloud.disk_gb, str(cloud.spot).lower())
    assert defaults["gpubox_region"] == contract.DEFAULT_REGION


def answers(template: str, **given: object) -> dict[str, object]:
    """What AWX passes as extra vars: the survey's defaults, overridden by the answers given."""
    [found] = [entry for entry in templates() if entry["name"] == template]
    values = {question["variable"]: question["default"] for question in found["survey"] if "default" in question}
    values.update(given)
    missing = {question["variable"] for question in found["survey"] if question["required"]} - set(values)
    assert not missing, missing
    return values


def playbook(env: dict[str, str], path: str, extra: dict[str, object], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    extra_file = tmp_path / f"extra-{len(list(tmp_path.iterdir()))}.json"
    extra_file.write_text(json.dumps(extra))
    return subprocess.run([str(VENV_BIN / "ansible-playbook"), path, "-e", f"@{extra_file}"], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=600, check=False, stdin=subprocess.DEVNULL)


def test_provision_and_destroy_from_survey_answers_and_the_fleet_sees_it(moto_endpoint, env, tmp_path, ed25519_key):
    image = _client(moto_endpoint, "eu-west-1").describe_images()["Images"][0]["ImageId"]
    provision = answers("provision", gpubox_name="dana-1", gpubox_owner_name="dana", gpubox_public_key=ed25519_key,
                        gpubox_allow_cidr="198.51.100.7/32", gpubox_region="eu-west-1")
    # The survey has no image question: the latest Ubuntu comes from an SSM parameter moto lacks.
    result = playbook(env, "playbooks/provision.yml", {**provision, "gpubox_ami": image}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    listing = subprocess.run([str(VENV_BIN / "ansible-inventory"), "-i", str(INVENTORY), "--list"], cwd=PROJECT, env=env,
                             capture_output=True, text=True, timeout=300, check=True)
    assert json.loads(listing.stdout)["owner_dana"]["hosts"] == ["dana-1"]

    result = playbook(env, "playbooks/teardown.yml", answers("destroy", gpubox_name="dana-1", gpubox_region="eu-west-1"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    ec2 = _client(moto_endpoint, "eu-west-1")
    left = [instance for reservation in ec2.describe_instances(
        Filters=[{"Name": "tag:gpubox:name", "Values": ["dana-1"]}])["Reservations"] for instance in reservation["Instances"]]
    assert {instance["State"]["Name"] for instance in left} == {"terminated"}


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory) -> str:
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().strip()


def test_no_playbook_prompts():
    """A controller job cannot answer a prompt: inputs are extra vars (surveys) only."""
    files = [PROJECT / "site.yml", *(PROJECT / "playbooks").glob("*.yml"), *(PROJECT / "roles").rglob("*.yml")]
    prompting = [str(path.relative_to(PROJECT)) for path in files
                 if re.search(r"^\s*(- )?(vars_prompt|ansible\.builtin\.pause|pause):", path.read_text(), re.M)]
    assert prompting == []
