#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Whether each role's body can change anything on this host, in one round trip."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: converged
short_description: Record what a role's body left on the host, and tell whether the host still matches
description:
  - Tells, in one round trip and without changing anything, for each role of O(roles) (V(check)) the input digest
    recorded when its body last succeeded, the pending apply markers of the role, and what on the
    host differs from that record (files, directory listings, packages, units, processes of
    revoked users, the running kernel, the controller's address). A role whose record exists, whose
    digest equals its inputs' digest (the lookup P(gpubox.workstation.role_digest#lookup)), with no
    pending apply and no difference, can change nothing, so it skips its body.
  - V(begin) removes the role's record and ledger as its body starts, so a body that fails or is
    killed leaves no record and the next run runs it again.
  - V(record) writes the record after the body and its handlers succeeded, with the digest and the
    state of everything watched, including every file that M(gpubox.workstation.config_files) managed
    with O(gpubox.workstation.config_files#module:ledger) set to this role during the body.
  - Records are JSON files, root-owned 0600, under O(state_dir).
version_added: 1.3.0
author: gpubox
options:
  state:
    description: What to do.
    type: str
    choices: [check, begin, record]
    default: check
  roles:
    description: The roles to check (V(check)), or the one role to begin or record.
    type: list
    elements: str
    required: true
  digest:
    description: The role's input digest (V(record)).
    type: str
    default: ""
  files:
    description: Paths (or glob patterns) whose type, owner, mode and content are watched (V(record)).
    type: list
    elements: str
    default: []
  dirs:
    description: Directories (or glob patterns) whose listing is watched (V(record)).
    type: list
    elements: str
    default: []
  packages:
    description: Packages whose dpkg selection and state are watched (V(record)).
    type: list
    elements: str
    default: []
  units:
    description: systemd units whose active and enablement state are watched (V(record)).
    type: list
    elements: str
    default: []
  no_processes:
    description: Accounts that must have no running process (revoked users) (V(record)).
    type: list
    elements: str
    default: []
  context:
    description: Host facts the role's output depends on (V(record)).
    type: list
    elements: str
    choices: [kernel, controller_address]
    default: [kernel]
  state_dir:
    description: Where records live (tests point it elsewhere).
    type: path
    default: /var/lib/gpubox/converged
  pending_dir:
    description: Where the markers of owed applies live (tests point it elsewhere).
    type: path
    default: /var/lib/gpubox/pending
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Look at what changed since each role last converged
  gpubox.workstation.converged:
    roles: [base, hardening]
  register: gpubox_converged

- name: Record what the hardening body left
  gpubox.workstation.converged:
    state: record
    roles: [hardening]
    digest: "{{ lookup('gpubox.workstation.role_digest', 'hardening') }}"
    packages: "{{ hardening_packages }}"
    units: "{{ hardening_services }}"
"""

RETURN = r"""
roles:
  description: Per role (V(check)) the recorded digest ("" without a record), the pending applies and the differences found.
  returned: always
  type: dict
  sample: {hardening: {digest: 3f1c..., pending: [], drift: ["file /etc/ssh/sshd_config"]}}
gpu_count:
  description: NVIDIA GPUs on the PCI bus (V(check)), for roles that read the count when the driver role skips.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils import converged
from ansible_collections.gpubox.workstation.plugins.module_utils.pci import gpu_count


def check(params: dict) -> dict:
    context = converged.host_context()
    report = {}
    for role in params["roles"]:
        recorded = converged.read_record(role, params["state_dir"])
        owed = converged.owed_applies(role, params["pending_dir"])
        if recorded is None:
            report[role] = {"digest": "", "pending": owed, "drift": ["no record of a successful run"]}
            continue
        now = converged.observe(recorded.get("watch", {}), context)
        report[role] = {"digest": recorded.get("digest", ""), "pending": owed,
                        "drift": converged.differences(recorded.get("state", {}), now)}
    return {"changed": False, "roles": report, "gpu_count": gpu_count()}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["check", "begin", "record"], "default": "check"},
            "roles": {"type": "list", "elements": "str", "required": True},
            "digest": {"type": "str", "default": ""},
            "files": {"type": "list", "elements": "str", "default": []},
            "dirs": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "no_processes": {"type": "list", "elements": "str", "default": []},
            "context": {"type": "list", "elements": "str", "choices": ["kernel", "controller_address"], "default": ["kernel"]},
            "state_dir": {"type": "path", "default": converged.STATE_DIR},
            "pending_dir": {"type": "path", "default": "/var/lib/gpubox/pending"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        for role in params["roles"]:
            converged.record_path(role, params["state_dir"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if params["state"] == "check":
        module.exit_json(**check(params))
    if len(params["roles"]) != 1:
        module.fail_json(msg="begin and record take exactly one role, not %s" % params["roles"])
    role = params["roles"][0]
    # Bookkeeping, not configuration: never reported as a change, never written in check mode.
    if module.check_mode:
        module.exit_json(changed=False, roles={})
    if params["state"] == "begin":
        converged.forget(role, params["state_dir"])
        module.exit_json(changed=False, roles={})
    if not params["digest"]:
        module.fail_json(msg="record needs the role's digest")
    watch = {key: params[key] for key in ("files", "dirs", "packages", "units", "no_processes", "context")}
    watch["files"] = sorted(set(watch["files"]) | set(converged.read_ledger(role, params["state_dir"])))
    state = converged.observe(watch, converged.host_context())
    path = converged.write_record(role, {"digest": params["digest"], "watch": watch, "state": state}, params["state_dir"])
    module.exit_json(changed=False, roles={role: {"digest": params["digest"], "record": path}})


if __name__ == "__main__":
    main()
