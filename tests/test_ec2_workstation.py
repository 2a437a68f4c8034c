"""IT's door runs runner.py's code: playbooks/provision.yml, teardown.yml (and so AWX's templates)
call gpubox.workstation.ec2_workstation, which imports the gpubox package. Real `ansible-playbook`
runs against moto server (seeded with the publishers' images, two IAM users as two owners);
nothing connects to an address moto hands out."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT, VENV_BIN, run_env
from gpubox import contract
from gpubox.cloud import deadman, images, launch, snapshots
from gpubox.commands import lifecycle
from gpubox.commands.provision import Cloud
from test_snapshots import Faulty, provisioned, state_of, tagged_snapshots, volume_exists, volumes_of
from test_team_aws import IMAGES, REGION, Team, client, live, moto_images, snapshot, team  # noqa: F401  (fixtures)

MODULE = "gpubox.workstation.ec2_workstation"


def playbook(team: Team, path: str, extra: dict[str, object], *args: str, endpoint: str = "",
             wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """ansible-playbook as the team's current person, with the extra vars as AWX passes them (a JSON file)."""
    extra_file = Path(team.env["HOME"]) / f"extra-{uuid.uuid4().hex}.json"
    extra_file.write_text(json.dumps(extra))
    env = {**run_env(Path(team.env["HOME"])), **team.env, **({"AWS_ENDPOINT_URL": endpoint} if endpoint else {})}
    command = [str(VENV_BIN / "ansible-playbook"), path, "-e", f"@{extra_file}", *args]
    if not wait:
        return subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)
    return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False,
                          stdin=subprocess.DEVNULL)


def provision_vars(team: Team, name: str, **more: object) -> dict[str, object]:
    return {"gpubox_name": name, "gpubox_owner_name": "dana", "gpubox_public_key": team.key().with_suffix(".pub").read_text().strip(),
            "gpubox_allow_cidr": "198.51.100.7/32", "gpubox_region": REGION, **more}


def counted() -> dict[str, int]:
    """gpubox's tagged key pairs, security groups and live instances in the region."""
    managed = [{"Name": f"tag:{contract.TAG_MANAGED}", "Values": ["true"]}]
    return {"keys": len(client().describe_key_pairs(Filters=managed)["KeyPairs"]),
            "groups": len(client().describe_security_groups(Filters=managed)["SecurityGroups"]),
            "instances": sum(len(item["Instances"]) for item in client().describe_instances(
                Filters=[*managed, {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"])}


def test_a_second_principal_is_refused_a_name_the_first_owns_and_nothing_of_it_changes(team):
    alice = team.be("alice")
    first = playbook(team, "playbooks/provision.yml", provision_vars(team, "taken"))
    assert first.returncode == 0, first.stdout + first.stderr
    lifecycle.stop(None, "taken", io.StringIO())  # her stopped instance must stay stopped
    before = snapshot("taken")
    assert before["keys"] and before["groups"] and before["instances"][0][1] == "stopped"

    bob = team.be("bob")  # his own key, another address, another type
    refused = playbook(team, "playbooks/provision.yml",
                       provision_vars(team, "taken", gpubox_allow_cidr="203.0.113.9/32", gpubox_instance_type="g5.xlarge"))
    assert refused.returncode != 0
    assert f"belongs to {alice}, not to you ({bob}). Nothing was changed." in " ".join(refused.stdout.split()), refused.stdout
    assert snapshot("taken") == before
    # Nor in check mode, nor through the destroy template.
    checked = playbook(team, "playbooks/provision.yml", provision_vars(team, "taken"), "--check")
    assert checked.returncode != 0 and f"belongs to {alice}" in checked.stdout, checked.stdout
    destroyed = playbook(team, "playbooks/teardown.yml", {"gpubox_name": "taken", "gpubox_region": REGION})
    assert destroyed.returncode != 0 and f"belongs to {alice}" in destroyed.stdout, destroyed.stdout
    assert "gpubox_any_owner=true" in " ".join(destroyed.stdout.split()), destroyed.stdout
    assert snapshot("taken") == before and tagged_snapshots("taken") == []


def test_its_provision_launches_as_runner_does_and_check_mode_changes_nothing(team):
    it = team.be("it-admin")
    before = counted()
    dry = playbook(team, "playbooks/provision.yml", provision_vars(team, "itbox"), "--check")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    newest_debian = max((image for image in IMAGES if image["owner_id"] == images.OPERATING_SYSTEMS["debian-13"].owner),
                        key=lambda image: image["creation_date"])
    assert f"launch g4dn.xlarge from {newest_debian['ami_id']}" in " ".join(dry.stdout.split()), dry.stdout
    assert counted() == before and live("itbox") == []

    done = playbook(team, "playbooks/provision.yml", provision_vars(team, "itbox"))
    assert done.returncode == 0, done.stdout + done.stderr
    [instance] = live("itbox")
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert instance["ImageId"] == newest_debian["ami_id"]  # the default image: the publisher's latest Debian 13
    assert instance["InstanceType"] == Cloud().instance_type
    [group] = client().describe_security_groups(GroupNames=[contract.alias("itbox")])["SecurityGroups"]
    spec = launch.Spec(name="itbox", region=REGION, instance_type="", disk_gb=0, spot=False, allow_cidr="", ami="", os="",
                       public_key="", login_name="", deadman_minutes=0)
    assert instance["ClientToken"] == launch.client_token(spec, group["GroupId"], "")
    user_data = client().describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == deadman.user_data(deadman.DEFAULT_MINUTES)
    assert (tags[contract.TAG_OWNER], tags[contract.TAG_USER], tags[contract.TAG_DEADMAN_MINUTES]) == (it, "dana", str(deadman.DEFAULT_MINUTES))
    assert instance["MetadataOptions"]["HttpTokens"] == "required" and instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1

    again = playbook(team, "playbooks/provision.yml", provision_vars(team, "itbox"))
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
    assert [item["InstanceId"] for item in live("itbox")] == [instance["InstanceId"]]
    dry_teardown = playbook(team, "playbooks/teardown.yml", {"gpubox_name": "itbox", "gpubox_region": REGION}, "--check")
    assert dry_teardown.returncode == 0, dry_teardown.stdout + dry_teardown.stderr
    words = " ".join(dry_teardown.stdout.split())
    assert "would delete instances: " + instance["InstanceId"] in words and "kept no snapshot" in words, words
    assert live("itbox")[0]["State"]["Name"] == "running" and tagged_snapshots("itbox") == []
    # An option the instance does not have is refused with the fix, never ignored.
    other = playbook(team, "playbooks/provision.yml", provision_vars(team, "itbox", gpubox_instance_type="g5.xlarge"))
    assert other.returncode != 0 and "is a g4dn.xlarge, not a g5.xlarge" in " ".join(other.stdout.split()), other.stdout
    assert live("itbox")[0]["InstanceType"] == "g4dn.xlarge"


def test_its_provision_is_held_to_the_team_policy_as_runner_is(team, tmp_path):
    """The team policy's gate (cloud/admission.py's rules) runs on IT's door too, in check mode and
    for real, before anything is created; within the policy the same run launches."""
    team.be("it-admin")
    rules = tmp_path / "team-policy.yml"
    rules.write_text("version: 1\ncontact: IT cloud team <it-cloud@example.com>\ninstance_types: [g4dn.xlarge]\n"
                     "max_disk_gb: 200\nrequired_tags:\n  cost-center: []\n")
    team.env["GPUBOX_POLICY_FILE"] = str(rules)
    try:
        before = counted()
        for args in (("--check",), ()):
            refused = playbook(team, "playbooks/provision.yml",
                               provision_vars(team, "ruled", gpubox_instance_type="g5.xlarge", gpubox_disk_gb=500), *args)
            words = " ".join(refused.stdout.split())
            assert refused.returncode != 0, words
            for rule in ("[rule: instance_types]", "[rule: max_disk_gb]", "[rule: required_tags.cost-center]",
                         "gpubox_request_tags: cost-center=VALUE"):
                assert rule in words, (rule, words)
            assert "ask IT cloud team <it-cloud@example.com>" in words, words
            assert counted() == before and live("ruled") == []
        allowed = playbook(team, "playbooks/provision.yml", provision_vars(team, "ruled", gpubox_request_tags={"cost-center": "CC-1"}))
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr
        [instance] = live("ruled")
        assert {tag["Key"]: tag["Value"] for tag in instance["Tags"]}["cost-center"] == "CC-1"
    finally:
        del team.env["GPUBOX_POLICY_FILE"]


def expected_tags(name: str, owner: str, volume: str, instance_id: str) -> dict[str, str]:
    return {contract.TAG_MANAGED: contract.MANAGED_VALUE, contract.TAG_NAME: name, contract.TAG_OWNER: owner,
            snapshots.TAG_VOLUME: volume, snapshots.TAG_DEVICE: "/dev/xvda", snapshots.TAG_INSTANCE: instance_id}


def test_teardown_takes_tags_and_waits_for_the_snapshot_as_destroy_does(team):
    kim = team.be("kim")
    by_runner, by_playbook = provisioned(team, "viarunner"), provisioned(team, "viaplay")
    lifecycle.destroy_ec2(lifecycle.plan_destroy("viarunner", None), io.StringIO())
    [runner_snap] = tagged_snapshots("viarunner")

    proxy = Faulty(team.endpoint)  # reports every snapshot as pending until told otherwise
    try:
        proxy.snapshot_state = "pending"
        running = playbook(team, "playbooks/teardown.yml", {"gpubox_name": "viaplay", "gpubox_region": REGION},
                           endpoint=proxy.endpoint, wait=False)
        deadline = time.monotonic() + 120
        while not tagged_snapshots("viaplay") and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(snapshots.POLL_SECONDS + 2)  # at least one more look at a snapshot still pending
        [volume] = volumes_of(by_playbook)
        assert running.poll() is None, running.communicate()[0]
        assert state_of(by_playbook["InstanceId"]) == "stopped" and volume_exists(volume)
        proxy.snapshot_state = ""
        output = running.communicate(timeout=300)[0]
    finally:
        proxy.close()
    assert running.returncode == 0, output
    assert state_of(by_playbook["InstanceId"]) == "terminated"
    [play_snap] = tagged_snapshots("viaplay")
    assert play_snap["State"] == "completed" and play_snap["SnapshotId"] in output

    for snap, name, instance in ((runner_snap, "viarunner", by_runner), (play_snap, "viaplay", by_playbook)):
        tags = {tag["Key"]: tag["Value"] for tag in snap["Tags"]}
        [volume] = volumes_of(instance)
        assert {key: value for key, value in tags.items() if key not in ("Name", snapshots.TAG_DATE)} == \
            expected_tags(name, kim, volume, instance["InstanceId"])
        assert tags["Name"].startswith(f"{contract.alias(name)} /dev/xvda ") and tags[snapshots.TAG_DATE].endswith("Z")
        assert snap["Description"] == f"gpubox final snapshot of {name} ({volume}, /dev/xvda)"


def test_the_module_is_documented_with_gpubox_own_defaults():
    from ansible_collections.gpubox.workstation.plugins.modules import ec2_workstation  # noqa: PLC0415

    doc = yaml.safe_load(ec2_workstation.DOCUMENTATION)
    options = doc["options"]
    assert set(options) == set(ec2_workstation.argument_spec())
    assert options["os"]["choices"] == ec2_workstation.argument_spec()["os"]["choices"] == list(images.OPERATING_SYSTEMS)
    defaults = Cloud()
    for option, value in (("instance_type", defaults.instance_type), ("disk_gb", defaults.disk_gb), ("os", defaults.os),
                          ("deadman_minutes", deadman.DEFAULT_MINUTES)):
        assert f"Default gpubox's, C({value})" in options[option]["description"], option
    assert defaults.deadman_minutes == deadman.DEFAULT_MINUTES


def test_without_the_gpubox_package_the_module_names_the_fix(tmp_path):
    """The module runs in the Python of the controller; where gpubox is not importable it says how to fix that."""
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [{"name": "Without PYTHONPATH", MODULE: {"name": "alice", "state": "stopped"}}]}]))
    env = {**run_env(tmp_path), "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "PYTHONPATH": "", "HOME": str(tmp_path)}
    result = subprocess.run([str(VENV_BIN / "ansible-playbook"), str(tmp_path / "play.yml")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode != 0 and "gpubox (this repository's Python package)" in result.stdout, result.stdout + result.stderr
