"""base_info's view of an interrupted dpkg run (the power-loss case of tests/test_vm.py, in small)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.gpubox.workstation.plugins.modules import base_info


@pytest.fixture
def no_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_info.shutil, "which", lambda name: None)


def test_an_empty_journal_is_a_consistent_dpkg(tmp_path: Path, no_audit) -> None:
    (tmp_path / "tmp.i").write_text("")  # dpkg's scratch file is no pending entry
    assert base_info.dpkg_interrupted(str(tmp_path)) == []
    assert base_info.dpkg_interrupted(str(tmp_path / "missing")) == []


def test_a_journal_entry_left_behind_is_an_interrupted_run(tmp_path: Path, no_audit) -> None:
    (tmp_path / "0003").write_text("Package: tree\nStatus: install ok unpacked\n")
    assert base_info.dpkg_interrupted(str(tmp_path)) == [f"dpkg was interrupted (its journal in {tmp_path} is not empty)"]


def test_half_done_packages_are_listed_from_dpkg_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base_info.shutil, "which", lambda name: "/usr/bin/dpkg")
    audit = ("The following packages have been unpacked but not yet configured.\n"
             "They must be configured using dpkg --configure or the configure\nmenu option in dselect for them to work:\n"
             " tree       displays an indented directory tree, in color\n")
    monkeypatch.setattr(base_info.subprocess, "run",
                        lambda *args, **kwargs: base_info.subprocess.CompletedProcess(args, 2, audit, ""))
    assert base_info.dpkg_interrupted(str(tmp_path)) == ["tree displays an indented directory tree, in color"]
