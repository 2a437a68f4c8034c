#!/usr/bin/python
# Copyright: gpubox
# Apache-2.0
"""Restrict compilers and assemblers to root and one group, through dpkg-statoverride."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compiler_access
short_description: Let only root and one group run compilers and assemblers
description:
  - Finds each named program in /usr/bin and /usr/local/bin, follows it to the real file (gcc is a
    link to gcc-12), and records a dpkg-statoverride of root:O(group) 0750 for it, so package
    upgrades keep the restriction. Programs that are not installed are left out; run it after the
    packages step so it sees compilers that step installed.
  - Creates O(group) as a system group when an override is to be added and the group is missing.
version_added: 1.2.0
author: gpubox
options:
  group:
    description: The group whose members may run the programs.
    type: str
    required: true
  names:
    description: Program names to restrict, such as gcc, cc, as.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Restrict compilers to root and the compiler group
  gpubox.workstation.compiler_access:
    group: compiler
    names: [gcc, cc, as]
"""

RETURN = r"""
changed_paths:
  description: Real paths whose override was (or in check mode would be) added or corrected.
  returned: always
  type: list
  elements: str
"""

import grp
import os

from ansible.module_utils.basic import AnsibleModule

MODE = 0o750


def _overrides(module):
    """Path -> (owner, group, mode) from dpkg-statoverride --list."""
    rc, out, err = module.run_command(["dpkg-statoverride", "--list"])
    if rc not in (0, 1):  # 1: no overrides at all
        module.fail_json(msg="dpkg-statoverride --list failed: %s" % (err or out).strip(), rc=rc)
    overrides = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            overrides[fields[3]] = (fields[0], fields[1], int(fields[2], 8))
    return overrides


def main():
    module = AnsibleModule(
        argument_spec={"group": {"type": "str", "required": True},
                       "names": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    group = module.params["group"]
    if not group:
        module.fail_json(msg="group must not be empty")
    files = sorted({os.path.realpath(os.path.join(directory, name)) for name in module.params["names"]
                    for directory in ("/usr/bin", "/usr/local/bin") if os.path.exists(os.path.join(directory, name))})
    current = _overrides(module)
    wanted = ("root", group, MODE)
    changed = [path for path in files if current.get(path) != wanted]
    if changed and not module.check_mode:
        try:
            grp.getgrnam(group)
        except KeyError:
            module.run_command(["groupadd", "--system", group], check_rc=True)
        for path in changed:
            module.run_command(["dpkg-statoverride", "--update", "--force-statoverride-add", "--add", "root", group,
                                "0%o" % MODE, path], check_rc=True)
    module.exit_json(changed=bool(changed), changed_paths=changed)


if __name__ == "__main__":
    main()
