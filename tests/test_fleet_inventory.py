"""IT's fleet view: inventory/aws_ec2.yml (the amazon.aws.aws_ec2 plugin) against moto server.

Three gpubox workstations of two owners in two regions, a stopped one and an untagged bystander:
only the three running ones are listed, in their groups. Nothing here connects to a host: the
plays only render variables on the controller (debug, --list-hosts), and moto's addresses are
real hosts on the internet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import PROJECT, VENV_BIN

INVENTORY = PROJECT / "inventory" / "aws_ec2.yml"
RUNNING = {"alice-1", "alice-2", "bob"}


def _client(endpoint: str, region: str):
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _launch(endpoint: str, region: str, instance_type: str, tags: dict[str, str]) -> dict:
    ec2 = _client(endpoint, region)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    [instance] = ec2.run_instances(
        ImageId=image, InstanceType=instance_type, MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    )["Instances"]
    return instance


def _gpubox_tags(name: str, owner: str) -> dict[str, str]:
    return {"gpubox:managed": "true", "gpubox:name": name, "gpubox:owner": owner, "Name": f"gpubox-{name}"}


@pytest.fixture(scope="module")
def fleet(moto_endpoint) -> dict[str, dict]:
    """The instances by name, as moto describes them."""
    launched = {
        "alice-1": _launch(moto_endpoint, "us-east-1", "g4dn.xlarge", _gpubox_tags("alice-1", "alice")),
        "alice-2": _launch(moto_endpoint, "eu-west-1", "g5.xlarge", _gpubox_tags("alice-2", "alice")),
        "bob": _launch(moto_endpoint, "eu-west-1", "g4dn.xlarge", _gpubox_tags("bob", "bob")),
        "carol": _launch(moto_endpoint, "us-east-1", "g4dn.xlarge", _gpubox_tags("carol", "carol")),
        # Someone else's machine in the same account: same region, similar tags, but not gpubox's.
        "bystander": _launch(moto_endpoint, "us-east-1", "g4dn.xlarge",
                             {"Name": "gpubox-bystander", "gpubox:name": "bystander", "gpubox:owner": "alice"}),
    }
    _client(moto_endpoint, "us-east-1").stop_instances(InstanceIds=[launched["carol"]["InstanceId"]])
    return launched


@pytest.fixture
def env(moto_endpoint, tmp_path) -> dict[str, str]:
    return {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "false",
        "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }


def run(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(VENV_BIN / command[0]), *command[1:]], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def members(listing: dict, group: str) -> set[str]:
    return set(listing.get(group, {}).get("hosts", []))


def rendered(env: dict[str, str], inventory: Path, expression: str, *extra: str) -> dict[str, str]:
    """An expression per host, rendered on the controller (debug never connects)."""
    result = run({**env, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
                 "ansible", "all", "-i", str(inventory), "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": expression}), *extra)
    play = json.loads(result.stdout)["plays"][0]
    return {host: outcome["msg"] for host, outcome in play["tasks"][0]["hosts"].items()}


def test_lists_exactly_the_running_gpubox_instances_in_their_groups(fleet, env):
    listing = json.loads(run(env, "ansible-inventory", "-i", str(INVENTORY), "--list").stdout)
    assert set(listing["_meta"]["hostvars"]) == RUNNING
    assert members(listing, "gpu_workstations") == RUNNING
    assert members(listing, "owner_alice") == {"alice-1", "alice-2"}
    assert members(listing, "owner_bob") == {"bob"}
    assert "owner_carol" not in listing  # stopped: not configurable, not listed
    assert members(listing, "type_g4dn_xlarge") == {"alice-1", "bob"}
    assert members(listing, "type_g5_xlarge") == {"alice-2"}
    assert members(listing, "region_us_east_1") == {"alice-1"}
    assert members(listing, "region_eu_west_1") == {"alice-2", "bob"}
    text = json.dumps(listing)
    for outsider in ("bystander", "carol"):
        assert fleet[outsider]["InstanceId"] not in text
        assert fleet[outsider]["PrivateIpAddress"] not in text
    # Tag values are untrusted text to Ansible: --list marks them so.
    assert listing["_meta"]["hostvars"]["bob"]["gpubox_owner_name"] in ("bob", {"__ansible_unsafe": "bob"})

    graph = run(env, "ansible-inventory", "-i", str(INVENTORY), "--graph", "owner_alice").stdout
    assert sorted(line.strip(" |-") for line in graph.splitlines()[1:]) == ["alice-1", "alice-2"]


def test_limit_by_owner_selects_exactly_that_owners_workstations(fleet, env):
    listed = run(env, "ansible-playbook", "site.yml", "-i", str(INVENTORY), "--limit", "owner_alice", "--list-hosts").stdout
    plays = [block for block in listed.split("play #")[1:]]
    assert len(plays) >= 8  # preflight and every role's play
    for play in plays:
        hosts = {line.strip() for line in play.split("hosts (", 1)[1].splitlines()[1:] if line.strip()}
        assert hosts == {"alice-1", "alice-2"}, play


def test_connects_to_the_public_address_or_the_private_one_as_the_image_user(fleet, env):
    public = rendered(env, INVENTORY, "{{ ansible_host }} {{ ansible_user }}")
    assert public == {name: f"{fleet[name]['PublicIpAddress']} admin" for name in RUNNING}

    image = fleet["bob"]["ImageId"]
    private = rendered(env, INVENTORY, "{{ ansible_host }} {{ ansible_user }}", "-e", "gpubox_private_address=true",
                       "-e", json.dumps({"gpubox_login_users": {image: "ubuntu"}, "gpubox_login_user": "ec2-user"}))
    assert private == {name: f"{fleet[name]['PrivateIpAddress']} {'ubuntu' if fleet[name]['ImageId'] == image else 'ec2-user'}"
                       for name in RUNNING}


def test_the_regions_are_configurable(fleet, env, tmp_path):
    settings = yaml.safe_load(INVENTORY.read_text())
    assert set(settings["regions"]) >= {"us-east-1", "eu-west-1"}
    inventory = tmp_path / "aws_ec2.yml"  # the plugin reads only files named *aws_ec2.yml
    inventory.write_text(yaml.safe_dump({**settings, "regions": ["eu-west-1"]}))
    listing = json.loads(run(env, "ansible-inventory", "-i", str(inventory), "--list").stdout)
    assert set(listing["_meta"]["hostvars"]) == {"alice-2", "bob"}


def test_one_team_list_and_each_owner_gets_sudo_on_their_own_workstations(fleet, env, tmp_path, ed25519_key):
    """The layout IT uses: inventory/aws_ec2.yml next to group_vars/gpu_workstations/users.yml,
    rendered through the ssh_access role's own variables."""
    inventory_dir = tmp_path / "inventory"
    shutil.copytree(PROJECT / "inventory", inventory_dir)
    team = [{"name": "alice", "ssh_keys": [ed25519_key]}, {"name": "bob", "ssh_keys": [ed25519_key]},
            {"name": "it-admin", "ssh_keys": [ed25519_key], "sudo": True}, {"name": "mallory", "state": "absent"}]
    (inventory_dir / "group_vars" / "gpu_workstations" / "users.yml").write_text(yaml.safe_dump({"gpubox_users": team}))
    playbook = tmp_path / "users.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the users of each workstation", "hosts": "gpu_workstations", "gather_facts": False,
        "vars_files": [str(PROJECT / "roles" / "ssh_access" / "vars" / "main.yml")],
        "tasks": [{"name": "Show", "ansible.builtin.debug": {
            "msg": "{{ {'present': ssh_access_present | map(attribute='name') | list, 'sudoers': ssh_access_sudoers} }}"}}],
    }]))
    result = run({**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"},
                 "ansible-playbook", "-i", str(inventory_dir / "aws_ec2.yml"), str(playbook))
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]
    assert set(outcome) == RUNNING
    for host, owner in {"alice-1": "alice", "alice-2": "alice", "bob": "bob"}.items():
        assert outcome[host]["msg"]["present"] == ["alice", "bob", "it-admin"]
        sudo = sorted(line.split()[0] for line in outcome[host]["msg"]["sudoers"].splitlines() if line and not line.startswith("#"))
        assert sudo == sorted([owner, "it-admin"]), host


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory) -> str:
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().strip()
