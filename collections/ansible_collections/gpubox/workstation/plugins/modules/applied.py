#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Settle an owed apply step (remove its pending marker), or owe one before a change that is not a file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: applied
short_description: Record that an owed apply step (reload, restart) succeeded
description:
  - Removes the marker of an owed apply step, which M(gpubox.workstation.config_files) wrote (with
    O(gpubox.workstation.config_files#module:pending) set) before it changed a file.
  - Run it as a handler that listens to the apply handler's name and is defined after it. Handlers run
    in the order they are defined, and a failed apply stops the host first, so the marker stays and
    the next run applies again.
  - With O(state=owed) it writes the marker instead, for a change that is not a file
    M(gpubox.workstation.config_files) writes, such as a pip upgrade the running services must restart
    onto. Run it right before that change.
version_added: 1.2.0
author: gpubox
options:
  name:
    description: The apply step's name, as given to O(gpubox.workstation.config_files#module:pending).
    type: str
    required: true
  state:
    description: V(settled) removes the marker (after the apply); V(owed) writes it (before the change).
    type: str
    choices: [settled, owed]
    default: settled
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
# roles/hardening/handlers/main.yml: after the handler that applies the file.
- name: Settle the sshd reload
  gpubox.workstation.applied:
    name: hardening-sshd
  listen: Reload sshd

# Before a pip upgrade of what a running service imports.
- name: Owe the service restart before upgrading
  gpubox.workstation.applied:
    name: jupyter-restart
    state: owed
"""

RETURN = r"""
marker:
  description: Path of the marker.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils import pending


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["settled", "owed"], "default": "settled"},
            "pending_dir": {"type": "path", "default": pending.PENDING_DIR},
        },
        supports_check_mode=True,
    )
    name, directory = module.params["name"], module.params["pending_dir"]
    try:
        path = pending.marker(name, directory)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    owed = pending.is_owed(name, directory)
    if module.params["state"] == "owed":
        if not owed and not module.check_mode:
            pending.owe(name, "owed before a change that is not a file", directory)
        module.exit_json(changed=not owed, marker=path)
    if module.check_mode:
        module.exit_json(changed=owed, marker=path)
    module.exit_json(changed=pending.settle(name, directory), marker=path)


if __name__ == "__main__":
    main()
