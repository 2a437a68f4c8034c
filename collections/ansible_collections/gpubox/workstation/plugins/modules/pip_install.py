#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Install pinned requirements into a virtualenv with uv where it runs, else with pip."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pip_install
short_description: Install requirements into a virtualenv, with uv where it runs and pip otherwise
description:
  - Installs pinned requirements into an existing virtualenv with uv or pip, O(requirements) into
    the one of O(python), under umask 022 (every user's kernels and servers run from these environments),
    from the root directory.
  - >-
    With O(installer=auto) it installs with uv (1.5 to 4 times faster than pip on gpubox's
    framework environments, docs/performance.md), pinned to O(uv_version) in a root-owned virtualenv
    of its own (O(tools_dir)), installed there first when missing, broken or another version. uv
    reads no pip.conf, so it runs with the system CA store (C(--system-certs), the base role's
    corporate CAs), no cache (no gigabytes left in root's home), no configuration file
    (C(--no-config)) and none of root's C(UV_*) variables, so nothing above a directory someone else
    can write points root at another index, and compiles bytecode as pip does (the environments are root's: users' kernels
    cannot write their own C(__pycache__)).
  - >-
    Where uv cannot be installed or fails (no wheel for the platform, a proxy only pip.conf knows),
    pip does the install, reading C(/etc/pip.conf); the run shows a warning saying why, and the
    result says which installer did it.
  - Always changes the host, so run it only where a probe found a requirement unsatisfied.
version_added: 1.4.0
author: gpubox
options:
  python:
    description: The virtualenv's Python (C(VENV/bin/python)); the virtualenv must exist.
    type: path
    required: true
  requirements:
    description: Requirement specifiers, as pip takes them (C(tensorflow==2.20.0)).
    type: list
    elements: str
    required: true
  installer:
    description: V(auto) installs with uv and falls back to pip; V(pip) uses pip only.
    type: str
    choices: [auto, pip]
    default: auto
  uv_version:
    description: The uv release to install and use.
    type: str
    default: "0.13.9"
  tools_dir:
    description: uv's own virtualenv, root-owned.
    type: path
    default: /opt/gpubox/tools
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Install TensorFlow
  gpubox.workstation.pip_install:
    python: /opt/gpubox/venv/bin/python
    requirements: [tensorflow-cpu==2.20.0, s3fs==2026.9.0]
    installer: "{{ tensorflow_installer }}"
  when: tensorflow_pip_needed
"""

RETURN = r"""
installer:
  description: Which installer did the install, V(uv) or V(pip).
  returned: success
  type: str
notes:
  description: Why uv did not do it, where it did not (the tail of its error); also shown as warnings.
  returned: always
  type: list
  elements: str
"""

import os
import subprocess

from ansible.module_utils.basic import AnsibleModule

QUIET_PIP = ["--disable-pip-version-check", "--no-input", "--quiet"]
ERROR_TAIL = 1500


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command's result; a program that is not there (or cannot run) is a failed result too."""
    try:
        return subprocess.run(argv, cwd="/", capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, env=env)
    except OSError as error:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: {error.strerror}")


def _tail(result: subprocess.CompletedProcess) -> str:
    return (result.stderr.strip() or result.stdout.strip() or f"exit status {result.returncode}")[-ERROR_TAIL:]


def _uv_version(uv: str) -> str:
    if not os.access(uv, os.X_OK):
        return ""
    found = _run([uv, "--version"])
    return found.stdout.split()[1] if found.returncode == 0 and len(found.stdout.split()) > 1 else ""


def ensure_uv(tools_dir: str, version: str, notes: list[str]) -> str | None:
    """uv at the pinned version in its own virtualenv, (re)installed when missing, broken or
    another version; None where it cannot be."""
    uv = os.path.join(tools_dir, "bin", "uv")
    if _uv_version(uv) == version:
        return uv
    python = os.path.join(tools_dir, "bin", "python")
    if _run([python, "-c", "pass"]).returncode != 0:  # missing, or its Python gone with an upgrade
        made = _run(["/usr/bin/python3", "-m", "venv", "--clear", tools_dir])
        if made.returncode != 0:
            notes.append(f"uv: could not make {tools_dir}: {_tail(made)}")
            return None
    installed = _run([python, "-m", "pip", "install", *QUIET_PIP, "--force-reinstall", f"uv=={version}"])
    if installed.returncode != 0:
        notes.append(f"uv {version} could not be installed: {_tail(installed)}")
        return None
    if _uv_version(uv) != version:
        notes.append(f"uv {version} was installed in {tools_dir} but does not run as uv {version}")
        return None
    return uv


def install(python: str, requirements: list[str], installer: str, uv_version: str, tools_dir: str) -> tuple[str, list[str], str]:
    """(installer that did it or "", notes, pip's error where nothing could)."""
    notes: list[str] = []
    uv = ensure_uv(tools_dir, uv_version, notes) if installer == "auto" else None
    if uv:
        # No UV_* variable of root's environment either (--no-config leaves UV_CONFIG_FILE, UV_INDEX...).
        clean = {key: value for key, value in os.environ.items() if not key.startswith("UV_")}
        done = _run([uv, "pip", "install", "--no-config", "--python", python, "--system-certs", "--no-cache", "--compile-bytecode",
                     "--quiet", *requirements], env=clean)
        if done.returncode == 0:
            return "uv", notes, ""
        notes.append(f"uv failed, pip installs instead: {_tail(done)}")
    done = _run([python, "-m", "pip", "install", *QUIET_PIP, *requirements])
    return ("pip", notes, "") if done.returncode == 0 else ("", notes, _tail(done))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "python": {"type": "path", "required": True},
            "requirements": {"type": "list", "elements": "str", "required": True},
            "installer": {"type": "str", "choices": ["auto", "pip"], "default": "auto"},
            "uv_version": {"type": "str", "default": "0.13.9"},
            "tools_dir": {"type": "path", "default": "/opt/gpubox/tools"},
        },
        supports_check_mode=False,
    )
    params = module.params
    if not os.access(params["python"], os.X_OK):
        module.fail_json(msg=f"{params['python']} is not a virtualenv's Python: create the virtualenv first.")
    os.umask(0o022)
    used, notes, error = install(params["python"], params["requirements"], params["installer"], params["uv_version"],
                                 params["tools_dir"])
    for note in notes:
        module.warn(note)
    if not used:
        module.fail_json(msg=f"pip could not install {' '.join(params['requirements'])}: {error}", notes=notes)
    module.exit_json(changed=True, installer=used, notes=notes)


if __name__ == "__main__":
    main()
