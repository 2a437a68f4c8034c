"""scripts/test-failures: make test's last word names what failed, from real pytest and Ansible
output, so CI's tail shows it even when the other stream printed last."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT

SCRIPT = PROJECT / "scripts" / "test-failures"


def summarize(*logs: Path) -> str:
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, logs)], capture_output=True, text=True,
                            timeout=60, check=True)
    return result.stdout


def test_names_failed_tests_their_assertions_and_ansible_failures(tmp_path):
    tests = tmp_path / "test_sample.py"
    long_name = "test_breaks_with_a_name_as_long_as_the_suites_own_names_are_so_that_pytest_pads_it_less"
    tests.write_text("def test_passes():\n    assert 1\n\n"
                     "def test_breaks():\n    found = 'down'\n    assert found == 'up', 'jupyter of bob: down'\n\n"
                     f"def {long_name}():\n    assert 'ansible-core==2.19.15' in 'ansible-core==2.19.14'\n")
    pytest_run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=yes",
                                 str(tests)], capture_output=True, text=True, timeout=120, check=False,
                                cwd=tmp_path)
    assert pytest_run.returncode == 1
    playbook = tmp_path / "play.yml"
    playbook.write_text("- name: Sample\n  hosts: localhost\n  gather_facts: false\n  tasks:\n"
                        "    - name: Break on purpose\n      ansible.builtin.fail:\n        msg: the sample broke\n")
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "1", "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg")}
    ansible_run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c",
                                  "local", str(playbook)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
                                 check=False, env=env)
    assert ansible_run.returncode == 2
    pytest_log, molecule_log = tmp_path / "pytest.log", tmp_path / "molecule.log"
    # Another stream's lines come after the failure, as they do in CI's interleaved output.
    pytest_log.write_text(pytest_run.stdout + "".join(f"tests/test_other.py ... [{n}%]\n" for n in range(200)))
    molecule_log.write_text(ansible_run.stdout)

    printed = summarize(pytest_log, molecule_log, tmp_path / "absent.log")

    assert "\x1b[" not in printed
    assert "FAILED test_sample.py::test_breaks - AssertionError: jupyter of bob: down" in printed
    assert "test_breaks:" in printed and "E       AssertionError: jupyter of bob: down" in printed
    assert f"{long_name}:" in printed and "E       AssertionError: assert 'ansible-core==2.19.15' in" in printed
    assert "test_passes" not in printed and "test_other" not in printed
    assert "fatal: [localhost]: FAILED!" in printed and "    msg: the sample broke" in printed
    assert "PLAY [Sample]" not in printed
    assert "failed=1" in printed
    assert "no log at" in printed and "absent.log" in printed


def test_names_what_failed_inside_molecules_box_around_the_verifier(tmp_path, monkeypatch):
    """Molecule prints testinfra's output inside a box ("  │ " before each line): CI's last run
    failed in verify and this summary named no test."""
    from molecule.ansi_output import AnsiOutput, BorderedStream
    tests = tmp_path / "test_sample.py"
    tests.write_text("def test_notice_appears():\n    assert 'warning' == 'none', 'no notice for alice'\n")
    pytest_run = subprocess.run([sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider", str(tests)],
                                capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert pytest_run.returncode == 1
    monkeypatch.setenv("COLUMNS", "400")  # as the Makefile runs molecule
    framed = io.StringIO()
    BorderedStream(AnsiOutput(), framed).write(pytest_run.stdout)
    log = tmp_path / "molecule.log"
    log.write_text("INFO     jupyter ➜ verify: Executing\n" + framed.getvalue()
                   + "ERROR    jupyter ➜ verify: Executed: Failed\n")
    framed_line = next(line for line in log.read_text().splitlines() if "FAILED test_sample.py" in line)
    assert framed_line.startswith("  ") and "│" in framed_line

    printed = summarize(log)

    assert "\nFAILED test_sample.py::test_notice_appears - AssertionError: no notice for alice" in printed
    assert "test_notice_appears:" in printed and "E       AssertionError: no notice for alice" in printed
    assert "verify: Executed: Failed" in printed


def test_a_clean_log_says_nothing_failed(tmp_path):
    log = tmp_path / "pytest.log"
    log.write_text("tests/test_a.py ....\n==== 4 passed in 1.00s ====\n")
    assert "nothing named as failed" in summarize(log)
