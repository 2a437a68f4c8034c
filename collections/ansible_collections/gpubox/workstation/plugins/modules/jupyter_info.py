#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts about JupyterLab for the jupyter role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: jupyter_info
short_description: Look at the users, the virtualenvs and the JupyterLab services of a host
description:
  - For each user, its uid and home (nothing inside a home is looked at; the role's make_token.py
    checks the token as the user); what is installed in the
    JupyterLab and kernel virtualenvs and whether all users can read them (so a no-change run does
    no pip work); which C(jupyter@) instances are enabled or running (so revoked ones are found).
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  users:
    description: The data scientists who should have a JupyterLab.
    type: list
    elements: str
    default: []
  venv:
    description: The JupyterLab virtualenv.
    type: path
    required: true
  kernel_venvs:
    description: The virtualenvs the kernels run in (one per framework the workstation offers).
    type: list
    elements: path
    default: []
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at the users, the virtualenvs and the Jupyter services
  gpubox.workstation.jupyter_info:
    users: [alice]
    venv: /opt/gpubox/jupyter
    kernel_venvs: [/opt/gpubox/venv, /opt/gpubox/pytorch]
  register: jupyter_probe
"""

RETURN = r"""
users:
  description: User -> C(exists), C(uid) and C(home).
  returned: always
  type: dict
jupyter:
  description: Normalised name -> version in the JupyterLab virtualenv, null without one.
  returned: always
  type: dict
kernels:
  description: Kernel virtualenv -> (normalised name -> version in it), null for one without a working Python.
  returned: always
  type: dict
readable:
  description: Whether all users can read the V(jupyter) virtualenv, and C(kernels) (virtualenv -> bool) each kernel virtualenv.
  returned: always
  type: dict
enabled:
  description: Users whose C(jupyter@) instance is enabled.
  returned: always
  type: list
  elements: str
active:
  description: Users whose C(jupyter@) instance is running.
  returned: always
  type: list
  elements: str
"""

import glob
import os
import pwd

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.host import run
from ansible_collections.gpubox.workstation.plugins.module_utils.venv import distributions, readable_by_all


def user_state(name: str) -> dict:
    # Nothing in the home is looked at: root does not follow paths a user controls, and whether a
    # token is valid is make_token.py's to judge, as the user, on every run.
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"exists": False, "uid": None, "home": ""}
    return {"exists": True, "uid": entry.pw_uid, "home": entry.pw_dir}


def instances() -> tuple[list[str], list[str]]:
    enabled = sorted(os.path.basename(path)[len("jupyter@"):-len(".service")]
                     for path in glob.glob("/etc/systemd/system/*.wants/jupyter@*.service"))
    listed = run("systemctl", "list-units", "--all", "--plain", "--no-legend", "jupyter@*.service")[1]
    active = sorted(line.split()[0][len("jupyter@"):-len(".service")]
                    for line in listed.splitlines() if line.split()[2:3] == ["active"])
    return enabled, active


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "users": {"type": "list", "elements": "str", "default": []},
            "venv": {"type": "path", "required": True},
            "kernel_venvs": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    enabled, active = instances()
    module.exit_json(
        changed=False,
        users={name: user_state(name) for name in params["users"]},
        jupyter=distributions(params["venv"]),
        kernels={venv: distributions(venv) for venv in params["kernel_venvs"]},
        readable={"jupyter": readable_by_all(params["venv"]),
                  "kernels": {venv: readable_by_all(venv) for venv in params["kernel_venvs"]}},
        enabled=enabled,
        active=active,
    )


if __name__ == "__main__":
    main()
