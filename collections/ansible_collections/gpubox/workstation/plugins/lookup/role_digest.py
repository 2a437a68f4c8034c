# Copyright: gpubox
# Apache-2.0
"""The digest of a role's inputs and content, to compare with the one its last successful run recorded."""

from __future__ import annotations

DOCUMENTATION = r"""
name: role_digest
short_description: Digest of a gpubox role's resolved inputs and of its own content
description:
  - One SHA-256 per role over the resolved value of every option of the role's
    C(meta/argument_specs.yml) (its inputs, with inventory and group_vars applied), the names in
    O(extra) (inputs the role reads from elsewhere), the host's distribution and the login account,
    and the content of every file of the role and of this collection's plugins (the role's own
    version; a changed task, template or module gives a new digest).
  - M(gpubox.workstation.converged) records it after the role's body succeeded; an equal digest
    means the same inputs met the same code.
version_added: 1.3.0
author: gpubox
options:
  _terms:
    description: Role names.
    required: true
  extra:
    description:
      - Further variable names whose values the role reads, besides the list C(<role>_digest_inputs)
        in the role's C(vars/main.yml) (inputs of other roles and site-wide ones such as gpubox_users).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show the hardening role's digest
  ansible.builtin.debug:
    msg: "{{ lookup('gpubox.workstation.role_digest', 'hardening') }}"
"""

RETURN = r"""
_raw:
  description: One hexadecimal SHA-256 per role.
  type: list
  elements: str
"""

import hashlib
import json
import os

import yaml
from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleUndefinedVariable
from ansible.plugins.lookup import LookupBase

PLUGINS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FACTS = ("distribution", "distribution_major_version", "os_family", "architecture")


def content_digest(directories: list[str]) -> str:
    """SHA-256 over the relative path and content of every file below the directories (READMEs aside), in order."""
    digest = hashlib.sha256()
    for top in directories:
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(name for name in dirs if name != "__pycache__")
            # A README changes no host: a documentation edit must not re-run every role's body.
            for name in sorted(name for name in files if name not in ("README.md", "CHANGELOG.md")):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, top).encode() + b"\0")
                with open(path, "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def option_names(role_dir: str) -> list[str]:
    with open(os.path.join(role_dir, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        specs = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    entry = specs["argument_specs"].get("main") or specs["argument_specs"]["validate"]
    return sorted(entry.get("options", {}))


def plain(value):
    """Templated values as plain JSON types (tagged or unsafe strings become str)."""
    return json.loads(json.dumps(value, default=str, sort_keys=True))


class LookupModule(LookupBase):
    def _role_dir(self, role: str, variables: dict) -> str:
        candidates = list(C.DEFAULT_ROLES_PATH)
        playbook_dir = variables.get("playbook_dir", "")
        if playbook_dir:
            candidates += [os.path.join(playbook_dir, "roles"), os.path.join(playbook_dir, "..", "roles")]
        for base in candidates:
            path = os.path.join(os.path.expanduser(str(base)), role)
            if os.path.isfile(os.path.join(path, "meta", "argument_specs.yml")):
                return os.path.realpath(path)
        raise AnsibleError("role_digest: role %r not found in %s" % (role, candidates))

    def _value(self, name: str, variables: dict, templar):
        if name not in variables:
            return {"undefined": True}
        try:
            return plain(templar.template(variables[name]))
        except AnsibleUndefinedVariable:
            return {"undefined": True}
        except AnsibleError as exc:
            # A missing CA file and the like: a digest no record has, so the role's checks run
            # and report it properly.
            return {"error": str(exc)}

    def _load(self, role_dir: str, kind: str) -> dict:
        path = os.path.join(role_dir, kind, "main.yml")
        return (self._loader.load_from_file(path, trusted_as_template=True) if os.path.isfile(path) else None) or {}

    def _with_role_vars(self, role_dir: str, variables: dict) -> dict:
        """The role's defaults under the given variables and its vars beside them: outside the role
        (site.yml's preflight) neither is loaded, inside it they are the same values, so both
        places compute the same digest."""
        merged = dict(self._load(role_dir, "defaults"))
        merged.update(variables)
        for name, value in self._load(role_dir, "vars").items():
            merged.setdefault(name, value)
        return merged

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        facts = variables.get("ansible_facts", {}) or {}
        digests = []
        plugins = content_digest([PLUGINS])
        for role in terms:
            role_dir = self._role_dir(str(role), variables)
            merged = self._with_role_vars(role_dir, variables)
            declared = [str(name) for name in merged.get(str(role) + "_digest_inputs", [])]
            names = sorted(set(option_names(role_dir)) | set(declared) | set(self.get_option("extra")))
            templar = self._templar.copy_with_new_env(available_variables=merged)
            inputs = {
                "role": str(role),
                "content": [content_digest([role_dir]), plugins],
                "values": {name: self._value(name, merged, templar) for name in names},
                "facts": {name: plain(facts.get(name, "")) for name in FACTS},
                "login": plain(templar.template(variables.get("ansible_user", ""))),
            }
            digests.append(hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest())
        return digests
