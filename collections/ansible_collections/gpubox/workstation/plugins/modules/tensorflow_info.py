#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Read-only facts about Python, the TensorFlow virtualenv and the GPUs for the tensorflow role."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tensorflow_info
short_description: Look at Python, a framework's virtualenv and the GPUs of a host
description:
  - Reports the system Python (the virtualenv is built from it), whether ensurepip is there, the
    virtualenv's Python, installed distributions and readability by all users (so a no-change run
    does no pip work), the number of NVIDIA GPUs on the PCI bus, the loaded driver version and the
    inputs the last smoke test ran with.
  - Changes nothing.
version_added: 1.1.0
author: gpubox
options:
  venv:
    description: The TensorFlow virtualenv.
    type: path
    required: true
  report_path:
    description: The smoke test's report (JSON); its C(inputs) are returned as RV(report_inputs).
    type: path
    required: true
  report_key:
    description:
      - "The report's key whose C(inputs) are returned: empty for TensorFlow's (the report's top
        level), V(pytorch) for PyTorch's part (the pytorch role uses this module too)."
    type: str
    default: ""
extends_documentation_fragment: [gpubox.workstation.facts]
"""

EXAMPLES = r"""
- name: Look at Python, the virtualenv and the GPUs
  gpubox.workstation.tensorflow_info:
    venv: /opt/gpubox/tensorflow
    report_path: /etc/gpubox/report.json
  register: tensorflow_probe
"""

RETURN = r"""
python:
  description: Major.minor of the system Python.
  returned: always
  type: str
ensurepip:
  description: Whether the system Python has ensurepip (Debian ships it in python3-venv).
  returned: always
  type: bool
venv:
  description: The virtualenv.
  returned: always
  type: dict
  contains:
    exists: {description: Whether its Python runs., type: bool, returned: always}
    python: {description: Major.minor it was built with., type: str, returned: always}
    distributions: {description: Normalised name -> version., type: dict, returned: always}
    readable: {description: Whether every user can read and run it., type: bool, returned: always}
gpu_count:
  description: How many NVIDIA GPUs the PCI bus has.
  returned: always
  type: int
driver_version:
  description: Version of the loaded NVIDIA driver, empty when none is loaded.
  returned: always
  type: str
report_inputs:
  description: The C(inputs) of the last smoke test report (under O(report_key)), empty when there is none.
  returned: always
  type: dict
report:
  description: "The whole last report (versions, devices, timings; no secrets), empty when there is none;
    each framework role keeps the other's part when it rewrites the file."
  returned: always
  type: dict
"""

import json
import os
import platform

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpubox.workstation.plugins.module_utils.host import read_text
from ansible_collections.gpubox.workstation.plugins.module_utils.pci import gpu_count, loaded_driver_version
from ansible_collections.gpubox.workstation.plugins.module_utils.venv import distributions, python, readable_by_all


def venv_state(venv: str) -> dict:
    if not python(venv):
        return {"exists": False, "python": "", "distributions": {}, "readable": True}
    config = dict(line.split(" = ", 1) for line in read_text(os.path.join(venv, "pyvenv.cfg")).splitlines() if " = " in line)
    installed = distributions(venv)
    version = config.get("version", config.get("version_info", ""))
    return {"exists": installed is not None, "python": ".".join(version.split(".")[:2]),
            "distributions": installed or {}, "readable": readable_by_all(venv)}


def previous_report(report_path: str) -> dict:
    try:
        report = json.loads(read_text(report_path) or "{}")
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def previous_inputs(report: dict, key: str) -> dict:
    part = report.get(key, {}) if key else report
    return part.get("inputs", {}) if isinstance(part, dict) else {}


def has_ensurepip() -> bool:
    try:
        import ensurepip  # noqa: F401  pylint: disable=unused-import  (Debian splits it into python3-venv)
    except ImportError:
        return False
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "venv": {"type": "path", "required": True},
            "report_path": {"type": "path", "required": True},
            "report_key": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    report = previous_report(module.params["report_path"])
    module.exit_json(
        changed=False,
        python=".".join(platform.python_version_tuple()[:2]),
        ensurepip=has_ensurepip(),
        venv=venv_state(module.params["venv"]),
        gpu_count=gpu_count(),
        driver_version=loaded_driver_version(),
        report_inputs=previous_inputs(report, module.params["report_key"]),
        report=report,
    )


if __name__ == "__main__":
    main()
