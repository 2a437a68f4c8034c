#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""One gpubox EC2 workstation, through the same Python code as `runner.py` (gpubox/cloud/: launch,
teardown, ownership, data_role, deadman, images, snapshots)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_workstation
short_description: Create, start, stop or destroy one gpubox EC2 workstation as runner.py does
description:
  - Runs on the controller with the caller's AWS credentials and calls the gpubox Python package, the code
    C(python runner.py provision), C(stop) and C(destroy) run, so IT's playbooks and AWX job templates get the same
    owner checks, client token, dead-man's switch, default image, data-access role and final snapshots.
  - The package is imported from the Python the module runs with. C(playbooks/provision.yml), C(teardown.yml) and
    C(stop.yml) put the repository they live in on E(PYTHONPATH) (in AWX, the project checkout), so the module runs
    the gpubox code of the same commit as the playbook; the execution environment carries the package's own
    requirements (C(requirements-ee.txt)).
  - The workstation is everything tagged C(gpubox:managed=true) and C(gpubox:name=<name>) in the region. Its owner is the
    caller's stable AWS identity (C(gpubox:owner), the UserId of C(aws sts get-caller-identity)). A name any part of which
    belongs to another owner is refused before anything is changed, unless O(any_owner) is set (IT; AWS's IAM policies
    decide who may).
  - V(running) finds the caller's workstation of this name, starting it if stopped, or creates it. It imports the key pair,
    makes the security group admit SSH from O(allow_cidr) only, and launches with a client token (two racing runs make one
    instance), IMDSv2 only with a hop limit of 1, an encrypted gp3 disk, shutdown behaviour C(stop) and the dead-man's
    switch in its user data (it powers itself off O(deadman_minutes) after each boot until gpubox has configured it).
    With O(data) it first makes the data-access role and attaches its instance profile.
  - V(present) creates the workstation like V(running) when there is none; an existing one is left as it is.
  - V(stopped) stops it (the disk and data stay).
  - V(absent) destroys it as C(runner.py destroy) does. By default (O(snapshot)) it stops the instance, takes a final
    snapshot of every disk tagged with the workstation, owner, volume, device, date and instance, and waits until each is
    completed (a snapshot an earlier destroy started since the last stop is reused); a failed snapshot stops it before
    anything is deleted. Then it cancels the spot requests behind the instance, terminates it and deletes the security
    group, the key pair and the data-access role.
  - An O(instance_type) or O(disk_gb) that differs from an existing instance is refused with the fix, never ignored.
  - Before it launches or starts anything, the request is held to the team policy (E(GPUBOX_POLICY_FILE), else the SSM
    parameter C(/gpubox/team-policy)) exactly as C(runner.py provision) holds it (instance types, regions, disk size,
    hourly price, required tags); a request outside it fails naming each rule, in check mode too. The owner's monthly
    budget is not checked here (the owner of an IT launch is IT's identity); the budget job stops over-budget instances
    on every door.
  - In check mode nothing is changed; the result says what would be (RV(actions)), after the same checks.
version_added: 1.3.0
author: gpubox
options:
  name:
    description: The workstation's name (1-31 lower-case letters, digits or C(-), starting with a letter).
    type: str
    required: true
  state:
    description: What the workstation should be.
    type: str
    choices: [present, running, stopped, absent]
    default: running
  region:
    description: The AWS region. Default E(AWS_REGION), E(AWS_DEFAULT_REGION), else C(us-east-1).
    type: str
  instance_type:
    description: The EC2 instance type of a new workstation; checked against an existing one. Default gpubox's, C(g4dn.xlarge).
    type: str
  disk_gb:
    description: The root disk's size in GB of a new workstation; checked against an existing one. Default gpubox's, C(100).
    type: int
  spot:
    description: Launch a persistent spot instance that stops (not terminates) when AWS reclaims it.
    type: bool
    default: false
  allow_cidr:
    description: The one address range (IPv4 or IPv6 CIDR) the security group admits SSH from. Required for V(present) and V(running).
    type: str
  allow_whole_internet:
    description: Confirm an O(allow_cidr) of the whole internet (C(0.0.0.0/0), C(::/0)); without it that range is refused.
    type: bool
    default: false
  public_key:
    description: The owner's SSH public key, the line of a C(.pub) file; only this public half goes to AWS. Required for V(present) and V(running).
    type: str
  login_name:
    description: The owner's account on the workstation, tagged C(gpubox:user) (the fleet inventory's C(owner_<name>) group). Required for V(present) and V(running).
    type: str
  image:
    description: An image ID (C(ami-...)) to boot instead of the latest image of O(os) from its publisher.
    type: str
  os:
    description: The operating system whose publisher's latest image boots. Default gpubox's, C(debian-13).
    type: str
    choices: [debian-13, ubuntu-24.04]
  deadman_minutes:
    description: Minutes after each boot at which a workstation gpubox has not finished configuring powers itself off. Default gpubox's, C(120).
    type: int
  data:
    description:
      - S3 data the workstation may reach through its instance role, each C(s3://BUCKET[/PREFIX]) (read-only) or
        C(s3://BUCKET[/PREFIX]:rw), as C(runner.py provision --data). The role is made under IT's permissions boundary
        after the owner checks; its policy is replaced by exactly these grants.
    type: list
    elements: str
    default: []
  tags:
    description:
      - Tags of the team's own (cost-center, project ...) on the instance and its disks, set in the launch call itself where
        IAM's C(aws:RequestTag) conditions see them, as C(runner.py provision --tag KEY=VALUE). Keys starting C(aws:) or
        C(gpubox:) are refused.
    type: dict
    default: {}
  instance_profile:
    description: An existing instance profile to attach instead of making a data-access role (not with O(data)).
    type: str
    default: ""
  snapshot:
    description: With V(absent), keep a final snapshot of every disk first (V(false) deletes the disks for good).
    type: bool
    default: true
  any_owner:
    description:
      - With V(stopped) and V(absent), act on a workstation another owner provisioned (IT). AWS's IAM policies still decide
        whether the caller may. V(present) and V(running) never take over another owner's name.
    type: bool
    default: false
  wait:
    description: With V(stopped), wait until the instance is stopped.
    type: bool
    default: true
attributes:
  check_mode:
    description: Nothing is changed; RV(actions) lists what would be.
    support: full
  diff_mode:
    description: Not supported.
    support: none
requirements:
  - the gpubox Python package (this repository) and boto3, in the Python the module runs with
notes:
  - "Runs on the controller: C(connection: local) with C(ansible_python_interpreter: '{{ ansible_playbook_python }}')."
  - Messages and fixes are gpubox's own; a failure carries the fix in C(fix).
seealso:
  - name: docs/awx.md
    description: The AWX job templates that run the playbooks calling this module.
    link: https://example.invalid/gpubox/docs/awx.md
"""

EXAMPLES = r"""
- name: Provision (or find and start) alice's workstation
  gpubox.workstation.ec2_workstation:
    name: alice
    region: eu-west-1
    login_name: alice
    public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
    allow_cidr: 203.0.113.7/32
    data: [s3://team-data/churn]
  register: workstation

- name: Stop it (the disk stays)
  gpubox.workstation.ec2_workstation:
    name: alice
    region: eu-west-1
    state: stopped

- name: Destroy it, keeping a completed snapshot of every disk
  gpubox.workstation.ec2_workstation:
    name: alice
    region: eu-west-1
    state: absent
    any_owner: true
"""

RETURN = r"""
actions:
  description: What was done, or in check mode what would be done, one line each.
  returned: always
  type: list
  elements: str
  sample: ["import key pair gpubox-alice", "launch g4dn.xlarge from ami-0de13000000000001 (debian-13-amd64-20261101-2000)"]
instance:
  description: The workstation's instance after the run (empty when there is none).
  returned: always
  type: dict
  sample: {"instance_id": "i-0123456789abcdef0", "state": "running", "instance_type": "g4dn.xlarge", "public_ip": "198.51.100.7",
           "owner": "AIDAEXAMPLE", "login_name": "alice", "deadman_minutes": "120"}
owner:
  description: The caller's stable AWS identity, what gpubox tags as C(gpubox:owner).
  returned: always
  type: str
  sample: AIDAEXAMPLE
region:
  description: The region acted in.
  returned: always
  type: str
  sample: eu-west-1
snapshots:
  description: With V(absent), the final snapshots kept (completed), one per disk.
  returned: always
  type: list
  elements: dict
  sample: [{"snapshot_id": "snap-0123456789abcdef0", "volume_id": "vol-0123456789abcdef0", "device": "/dev/xvda", "size_gb": 100,
            "state": "completed"}]
deleted:
  description: With V(absent), what was deleted, by kind.
  returned: always
  type: dict
  sample: {"instances": ["i-0123456789abcdef0"], "security groups": ["sg-0123"], "key pairs": ["gpubox-alice"]}
messages:
  description: gpubox's progress lines (capacity retries, snapshot progress) and notes.
  returned: always
  type: list
  elements: str
fix:
  description: On failure, what to do about it.
  returned: failure
  type: str
"""

import dataclasses
import io
import re
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from gpubox import data_access, validate
    from gpubox.cloud import aws, data_role, deadman, images, launch, ownership, policy, snapshots, teardown
    from gpubox.commands.provision import Cloud
    from gpubox.errors import GpuboxError
except ImportError:
    GPUBOX_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    GPUBOX_IMPORT_ERROR = None

# The key types OpenSSH writes in a .pub line (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, sk-ssh-ed25519@openssh.com).
KEY_PREFIXES = ("ssh-", "ecdsa-sha2-", "sk-")
# gpubox's fixes name runner.py's options; to a playbook's user the same choice is a module option.
OPTION_WORDS = {"--any-owner": "--any-owner (in the playbooks: gpubox_any_owner=true, for teardown.yml and stop.yml)",
                "--no-snapshot": "--no-snapshot (here: snapshot: false; teardown.yml's gpubox_final_snapshot=false)",
                "(pass --tag ": "(here: tags; provision.yml's gpubox_request_tags: "}
# A login name the ssh_access role accepts (a Debian account name).
LOGIN_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")


def argument_spec() -> dict[str, Any]:
    return {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "running", "stopped", "absent"], "default": "running"},
        "region": {"type": "str"},
        "instance_type": {"type": "str"},
        "disk_gb": {"type": "int"},
        "spot": {"type": "bool", "default": False},
        "allow_cidr": {"type": "str"},
        "allow_whole_internet": {"type": "bool", "default": False},
        "public_key": {"type": "str"},
        "login_name": {"type": "str"},
        "image": {"type": "str"},
        "os": {"type": "str", "choices": ["debian-13", "ubuntu-24.04"]},
        "deadman_minutes": {"type": "int"},
        "data": {"type": "list", "elements": "str", "default": []},
        "tags": {"type": "dict", "default": {}},
        "instance_profile": {"type": "str", "default": ""},
        "snapshot": {"type": "bool", "default": True},
        "any_owner": {"type": "bool", "default": False},
        "wait": {"type": "bool", "default": True},
    }


def describe(item: aws.Workstation | None) -> dict[str, str]:
    if item is None:
        return {}
    return {"instance_id": item.instance_id, "state": item.state, "instance_type": item.instance_type, "public_ip": item.public_ip,
            "owner": item.owner, "login_name": item.tags.get("gpubox:user", ""),
            "deadman_minutes": item.tags.get("gpubox:deadman-minutes", "")}


def checked_spec(params: dict[str, Any], region: str, defaults: Cloud) -> launch.Spec:
    """Every launch input, checked by gpubox's own rules before anything is asked of AWS."""
    name = validate.name(params["name"], "name")
    instance_type = validate.instance_type(params["instance_type"] or defaults.instance_type)
    disk_gb = validate.disk_gb(params["disk_gb"] if params["disk_gb"] is not None else defaults.disk_gb)
    minutes = params["deadman_minutes"] if params["deadman_minutes"] is not None else defaults.deadman_minutes
    validate.minutes(minutes, "deadman_minutes", low=deadman.MIN_MINUTES, high=deadman.MAX_MINUTES)
    os_name = params["os"] or defaults.os
    images.check_os(os_name)
    if params["image"]:
        validate.ami(params["image"])
    network = validate.cidr(params["allow_cidr"], "allow_cidr")
    if validate.whole_internet(network) and not params["allow_whole_internet"]:
        raise GpuboxError(f"allow_cidr {params['allow_cidr']} is {network}: the whole internet could try to log in over SSH. Nothing was changed.",
                          "Narrow allow_cidr to the office or VPN range, or set allow_whole_internet: true to confirm.", exit_code=2)
    public_key = " ".join(params["public_key"].split())
    if not public_key.startswith(KEY_PREFIXES) or len(public_key.split()) < 2:
        raise GpuboxError("public_key is not an SSH public key line (e.g. 'ssh-ed25519 AAAA... alice@laptop'). Nothing was changed.",
                          "Pass the content of the owner's .pub file, not the private key or a path.", exit_code=2)
    if not LOGIN_NAME.match(params["login_name"]):
        raise GpuboxError(f"login_name {params['login_name']!r} is not an account name. Nothing was changed.",
                          "Give the owner's account on the workstation (their gpubox_users entry), e.g. login_name: alice.", exit_code=2)
    if params["data"] and params["instance_profile"]:
        raise GpuboxError("data and instance_profile both set the instance's role.", "Pass one of them.", exit_code=2)
    request_tags = policy.parse_tags([f"{key}={value}" for key, value in params["tags"].items()])
    return launch.Spec(name=name, region=region, instance_type=instance_type, disk_gb=disk_gb, spot=params["spot"],
                       allow_cidr=str(network), ami=params["image"] or "", os=os_name, public_key=public_key,
                       login_name=params["login_name"], deadman_minutes=minutes, instance_profile=params["instance_profile"],
                       request_tags=tuple(sorted(request_tags.items())))


def _group_differs(group: dict[str, Any], cidr: str) -> bool:
    """Anything but exactly SSH from that one range (what launch.ensure_security_group leaves)."""
    permissions = group.get("IpPermissions", [])
    if len(permissions) != 1:
        return True
    [permission] = permissions
    sources = {item["CidrIp"] for item in permission.get("IpRanges", [])} | {item["CidrIpv6"] for item in permission.get("Ipv6Ranges", [])}
    return not (permission.get("IpProtocol") == "tcp" and permission.get("FromPort") == launch.SSH_PORT
                and permission.get("ToPort") == launch.SSH_PORT and sources == {cidr} and not permission.get("UserIdGroupPairs"))


def refuse_different(spec: launch.Spec, item: aws.Workstation, params: dict[str, Any]) -> None:
    """An option that the existing instance does not have is refused, never silently ignored."""
    if params["instance_type"] and params["instance_type"] != item.instance_type:
        raise GpuboxError(f"Workstation '{spec.name}' ({item.instance_id}) is a {item.instance_type}, not a {params['instance_type']}. "
                          "Nothing was changed.",
                          f"Leave instance_type out (or set it to {item.instance_type}); to change the type, stop the instance and "
                          "change it in the EC2 console, or destroy it (a snapshot is kept) and provision again.", exit_code=2)
    if params["disk_gb"] is not None:
        roots = [disk for disk in snapshots.disks(spec.region, [item]) if disk.root]
        if roots and roots[0].size_gb != params["disk_gb"]:
            raise GpuboxError(f"Workstation '{spec.name}' ({item.instance_id}) has a {roots[0].size_gb} GB disk, not {params['disk_gb']} GB. "
                              "Nothing was changed.",
                              f"Leave disk_gb out (or set it to {roots[0].size_gb}); a disk is grown in the EC2 console (modify volume).",
                              exit_code=2)


def planned(spec: launch.Spec, ec2: launch.Ec2, item: aws.Workstation | None, image: images.Image | None,
            grants: tuple[Any, ...], start: bool) -> list[str]:
    """What a run would change, read from AWS (nothing changed): the check mode's answer, and the
    real run's `changed` for the parts launch.provision does not report."""
    if item is not None and not start:
        return []  # present: an existing workstation is left as it is
    resource = f"gpubox-{spec.name}"
    actions = []
    keys = ec2.key_pairs(resource)
    if not keys:
        actions.append(f"import key pair {resource}")
    elif keys[0].get("PublicKey") and keys[0]["PublicKey"].split()[:2] != spec.public_key.split()[:2]:
        actions.append(f"replace key pair {resource} with the given public key")
    groups = ec2.groups(resource)
    if not groups:
        actions.append(f"create security group {resource}: SSH (22/tcp) from {spec.allow_cidr} only")
    elif _group_differs(groups[0], spec.allow_cidr):
        actions.append(f"set security group {groups[0]['GroupId']} to SSH (22/tcp) from {spec.allow_cidr} only")
    if grants:
        current = data_role.grants(spec.region, spec.name)
        if current is None or set(current) != set(grants):
            actions.append(f"{'create' if current is None else 'update'} data-access role {data_role.role_name(spec.name, spec.region)}: "
                           + ", ".join(str(grant) for grant in grants))
    if item is None:
        actions.append(f"launch {spec.instance_type}{' (spot)' if spec.spot else ''} from {image.image_id if image else spec.ami} "
                       f"({image.name if image else ''}) with a {spec.disk_gb} GB encrypted disk and a dead-man's switch of "
                       f"{spec.deadman_minutes} min")
    elif item.state in ("stopping", "stopped"):
        actions.append(f"start {item.instance_id}")
    return actions


def ensure_launched(params: dict[str, Any], region: str, check_mode: bool, out: io.StringIO) -> dict[str, Any]:
    spec = checked_spec(params, region, Cloud())
    grants = data_access.parse_all(params["data"])
    me = ownership.caller(region)
    ec2 = launch.Ec2(region)
    launch.check_name_is_free_for(spec, me, ec2)
    found = aws.workstations(region, spec.name)
    item = found[0] if found else None
    if item is not None:
        refuse_different(spec, item, params)
    if item is None or (params["state"] == "running" and item.state != "running"):
        # runner.py's gate (cloud/admission.py) on what the run would launch or start.
        policy.check(policy.Ask(instance_type=item.instance_type if item else spec.instance_type, region=region,
                                disk_gb=spec.disk_gb, spot=spec.spot, idle_stop=None, tags=dict(spec.request_tags)))
    # The image is looked up before anything is made: a wrong one leaves nothing behind.
    image = None if item else (images.by_id(region, spec.ami) if spec.ami else images.latest(region, spec.os))
    if image:
        spec = dataclasses.replace(spec, ami=image.image_id)
    actions = planned(spec, ec2, item, image, grants, params["state"] == "running")
    if check_mode or (item is not None and params["state"] == "present"):
        return {"changed": bool(actions), "actions": actions, "owner": me.owner, "instance": describe(item)}
    if grants:
        spec = dataclasses.replace(spec, instance_profile=data_role.ensure(spec.name, region, me.owner, grants))
    launched = launch.provision(spec, me, out, lambda _instance_id: None)
    if launched.changed and item is not None and item.state == "running":
        actions.append(f"restore IMDSv2-only metadata or the instance profile on {launched.instance_id}")
    return {"changed": bool(actions) or launched.changed, "actions": actions, "owner": me.owner,
            "instance": describe(aws.one(region, spec.name))}


def ensure_stopped(params: dict[str, Any], region: str, check_mode: bool, out: io.StringIO) -> dict[str, Any]:
    name = validate.name(params["name"], "name")
    me = ownership.caller(region)
    found = aws.workstations(region, name)
    if not found:
        return {"changed": False, "actions": [], "owner": me.owner, "instance": {}}
    item = found[0]
    ownership.require_mine("instance", name, item.owner, me, region, any_owner=params["any_owner"])
    if item.state == "stopped" or (item.state == "stopping" and not params["wait"]):
        return {"changed": False, "actions": [], "owner": me.owner, "instance": describe(item)}
    actions = [f"stop {item.instance_id}"] if item.state != "stopping" else []
    if check_mode:
        return {"changed": bool(actions), "actions": actions, "owner": me.owner, "instance": describe(item)}
    print(f"Stopping {name} ({item.instance_id}); its disk and data stay.", file=out)
    if item.state == "pending":  # EC2 refuses to stop an instance that is still starting
        snapshots.wait_running(region, item.instance_id)
    if params["wait"]:
        item = aws.stop(region, name)
    else:
        ec2 = launch.Ec2(region)
        ec2.call("stop_instances", InstanceIds=[item.instance_id])
    return {"changed": bool(actions), "actions": actions, "owner": me.owner, "instance": describe(aws.workstations(region, name)[0])}


def ensure_absent(params: dict[str, Any], region: str, check_mode: bool, out: io.StringIO) -> dict[str, Any]:
    name = validate.name(params["name"], "name")
    me = ownership.caller(region)
    found = teardown.find(region, name, me, any_owner=params["any_owner"])
    instance = describe(found.instances[0]) if found.instances else {}
    if not any(found.resources.values()):
        return {"changed": False, "actions": [], "owner": me.owner, "instance": {}}
    actions = ([f"keep a final snapshot of {disk.volume_id} ({disk.size_gb} GB, {disk.device or '?'} of {disk.instance_id})"
                for disk in found.disks] if params["snapshot"] else [])
    actions += [f"delete {kind}: {item}" for kind, items in found.resources.items() for item in items]
    if check_mode:
        return {"changed": True, "actions": actions, "owner": me.owner, "instance": instance}
    done = teardown.destroy(found, out, snapshot=params["snapshot"])
    for note in done.notes:
        print(note, file=out)
    kept = [{"snapshot_id": snap.snapshot_id, "volume_id": snap.volume_id, "device": snap.device, "size_gb": snap.size_gb,
             "state": snapshots.state(region, snap.snapshot_id).get("State", snap.state)} for snap in done.kept]
    return {"changed": True, "actions": actions, "owner": me.owner, "instance": instance, "snapshots": kept, "deleted": done.deleted}


STATES = {"present": ensure_launched, "running": ensure_launched, "stopped": ensure_stopped, "absent": ensure_absent}


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "present", ("allow_cidr", "public_key", "login_name")),
                                        ("state", "running", ("allow_cidr", "public_key", "login_name"))],
                           mutually_exclusive=[("image", "os")])
    if GPUBOX_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("gpubox (this repository's Python package)"), exception=GPUBOX_IMPORT_ERROR,
                         fix="Run the playbooks of the gpubox repository (they put it on PYTHONPATH), or `pip install` the "
                             "repository into the Python that runs the module (ansible_python_interpreter).")
    out = io.StringIO()
    params = module.params
    try:
        region = validate.region(params["region"] or aws.region_name(None))
        result = STATES[params["state"]](params, region, module.check_mode, out)
    except GpuboxError as problem:  # gpubox's own failures: its message and fix (anything else keeps its traceback)
        message, fix = problem.message, problem.fix
        for option, words in OPTION_WORDS.items():
            message, fix = message.replace(option, words), fix.replace(option, words)
        module.fail_json(msg=message, fix=fix, messages=out.getvalue().splitlines())
    module.exit_json(**{"snapshots": [], "deleted": {}, **result, "region": region, "messages": out.getvalue().splitlines()})


if __name__ == "__main__":
    main()
