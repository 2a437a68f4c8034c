#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Many small configuration files in one module run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Write or remove many small configuration files in one task
description:
  - Each file is compared with what is on the host; only differing files are written, atomically
    (a temporary file in the same directory, then renamed), after an optional validation command.
  - Owner, group and mode are enforced on every present file.
  - Missing parent directories are created (root-owned, mode 0755).
  - One module run for all files keeps no-change runs fast; RV(changed_paths) tells handlers which files changed.
  - With O(pending), a file about to change first records its apply step as owed (a marker under
    O(pending_dir), synced to disk before the file is written). While the marker exists the task
    reports changed, so its handler runs again on every run until the handler that applies it
    removes the marker with M(gpubox.workstation.applied). A run killed between the write and the
    handler is thus repaired by the next run, although that run finds the file already right.
version_added: 1.0.0
author: gpubox
options:
  files:
    description: The files to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole content of the file (required when O(files[].state=present)).
        type: str
      state:
        description: V(present) writes the file, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
      owner:
        description: Owner of the file.
        type: str
        default: root
      group:
        description: Group of the file.
        type: str
        default: root
      mode:
        description: Mode of the file, as an octal string.
        type: str
        default: "0644"
      validate:
        description: Command that must succeed on the new content before it replaces the file; V(%s) is the temporary file.
        type: str
  pending:
    description:
      - Name of the apply step (reload, restart) these files need, e.g. V(hardening-sshd). A changed
        file records it as owed; an owed one makes the task report changed. Unset for files that
        take effect when read.
    type: str
  pending_dir:
    description: Where the markers of owed applies live (tests point it elsewhere).
    type: path
    default: /var/lib/gpubox/pending
  ledger:
    description:
      - The role these files belong to. Their paths are added to the role's ledger, so that
        M(gpubox.workstation.converged) watches them once the role's body succeeded (a file edited
        by hand afterwards makes the role run its body again). Roles set it for all their files
        with C(module_defaults). Nothing is added in check mode.
    type: str
  ledger_dir:
    description: Where the ledgers live (tests point it elsewhere).
    type: path
    default: /var/lib/gpubox/converged
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Write apt and pip proxy settings
  gpubox.workstation.config_files:
    files:
      - path: /etc/pip.conf
        content: "{{ lookup('ansible.builtin.template', 'etc/pip.conf.j2') }}"
      - path: /etc/ssh/sshd_config
        content: "{{ lookup('ansible.builtin.template', 'etc/ssh/sshd_config.j2') }}"
        mode: "0600"
        validate: /usr/sbin/sshd -t -f %s
      - path: /etc/apt/apt.conf.d/99old
        state: absent
"""

RETURN = r"""
changed_paths:
  description: Paths that were (or in check mode would be) written, removed or re-permissioned.
  returned: always
  type: list
  elements: str
pending:
  description: Whether the apply step named by O(pending) is owed (now, or left over from an interrupted run).
  returned: always
  type: bool
"""

import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible_collections.gpubox.workstation.plugins.module_utils import converged
from ansible_collections.gpubox.workstation.plugins.module_utils import pending as pending_applies


def _file_args(module, spec, path):
    return module.load_file_common_arguments({"mode": spec["mode"], "owner": spec["owner"], "group": spec["group"]}, path=path)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _validate(module, command, candidate, path):
    if "%s" not in command:
        module.fail_json(msg="validate for %s must contain %%s (the file to check): %r" % (path, command))
    argv = [part.replace("%s", candidate) for part in shlex.split(command)]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="The new content of %s failed validation (%s); the file was left as it was: %s"
                         % (path, command, (err or out).strip()), rc=rc)


def _make_parents(directory):
    """Create missing parents as 0755 whatever the umask (a hardened root has 027, which would
    hide configuration from the services that read it)."""
    if os.path.isdir(directory):
        return
    _make_parents(os.path.dirname(directory))
    os.mkdir(directory)
    os.chmod(directory, 0o755)


def _write(module, spec, path, new):
    directory = os.path.dirname(path)
    _make_parents(directory)
    fd, candidate = tempfile.mkstemp(dir=directory, prefix=".gpubox-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(new)
        module.set_fs_attributes_if_different(_file_args(module, spec, candidate), False)
        if spec.get("validate"):
            _validate(module, spec["validate"], candidate, path)
        module.atomic_move(candidate, path, unsafe_writes=False)
        # atomic_move gives a new file default permissions (or the old file's): set ours again.
        module.set_fs_attributes_if_different(_file_args(module, spec, path), False)
    finally:
        if os.path.exists(candidate):
            os.unlink(candidate)


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list", "elements": "dict", "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "content": {"type": "str"},
                    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "mode": {"type": "str", "default": "0644"},
                    "validate": {"type": "str"},
                },
                "required_if": [["state", "present", ["content"]]],
            },
            "pending": {"type": "str"},
            "pending_dir": {"type": "path", "default": pending_applies.PENDING_DIR},
            "ledger": {"type": "str"},
            "ledger_dir": {"type": "path", "default": converged.STATE_DIR},
        },
        supports_check_mode=True,
    )
    changed_paths, diffs = [], []
    name, pending_dir = module.params["pending"], module.params["pending_dir"]
    try:
        owed = bool(name) and pending_applies.is_owed(name, pending_dir)
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    def before_a_change(path):
        # The marker reaches the disk before the file does: a kill in between costs one extra apply.
        nonlocal owed
        if name and not owed and not module.check_mode:
            pending_applies.owe(name, path, pending_dir)
            owed = True

    paths = [spec["path"] for spec in module.params["files"]]
    duplicates = sorted({path for path in paths if paths.count(path) > 1})
    if duplicates:
        module.fail_json(msg="A path is listed more than once: %s" % ", ".join(duplicates))
    for spec in module.params["files"]:
        path = spec["path"]
        if not os.path.isabs(path):
            module.fail_json(msg="path must be absolute: %s" % path)
        current = _read(path)
        if spec["state"] == "absent":
            if current is not None or os.path.lexists(path):
                changed_paths.append(path)
                diffs.append({"before_header": path, "after_header": path + " (removed)",
                              "before": to_native(current or b"", errors="replace"), "after": ""})
                if not module.check_mode:
                    before_a_change(path)
                    os.unlink(path)
            continue
        new = to_bytes(spec["content"], errors="surrogate_or_strict")
        if current != new:
            changed_paths.append(path)
            diffs.append({"before_header": path if current is not None else path + " (new)", "after_header": path,
                          "before": to_native(current or b"", errors="replace"), "after": to_native(new, errors="replace")})
            if not module.check_mode:
                before_a_change(path)
                _write(module, spec, path, new)
        elif module.set_fs_attributes_if_different(_file_args(module, spec, path), False):
            changed_paths.append(path)
    if module.params["ledger"] and not module.check_mode:
        try:
            converged.add_to_ledger(module.params["ledger"], paths, module.params["ledger_dir"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    owed = owed or (bool(name) and bool(changed_paths))
    module.exit_json(changed=bool(changed_paths) or owed, changed_paths=changed_paths, pending=owed, diff=diffs)


if __name__ == "__main__":
    main()
