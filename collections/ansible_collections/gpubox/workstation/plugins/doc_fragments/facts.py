# Copyright: gpubox
# Apache-2.0
"""What every gpubox facts module (<role>_info) has in common."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - Read-only; it never reports a change, so it runs in check mode too.
  - Use it with C(register:) and read the result's keys.
attributes:
  check_mode:
    support: full
    description: Runs fully, it changes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
"""
