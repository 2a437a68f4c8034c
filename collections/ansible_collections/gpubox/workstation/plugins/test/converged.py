"""Tests for choosing the roles a run touches (see the converged module and filter)."""

from __future__ import annotations

from ansible_collections.gpubox.workstation.plugins.filter.converged import converged_selected


class TestModule:
    def tests(self):
        return {"converged_selected": converged_selected}
