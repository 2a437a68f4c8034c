"""The README stays short and honest, and docs/ stays in step with the code.

- README.md has at most 150 lines.
- Every `runner.py ...` or `make ...` command the README shows is a `--help`, or some test runs
  that verb with those options: a test file names the verb as a quoted string ("doctor") and one
  of its lines names every option the README passes ("--hours-per-day", "--output"). Values are
  not compared: the tests use their own names and paths.
- docs/development.md's layout names every module of gpubox/ and no module that is gone.
- Relative links in README.md and docs/*.md lead to files that exist.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
LAYOUT = REPO / "docs" / "development.md"
# Linked from the README, written on another branch of the same issue (the CLI reference). An entry
# here whose file exists fails the test below, so the exception goes once the page is merged.
PAGES_OF_OTHER_BRANCHES: set[str] = set()


def readme_commands(text: str) -> list[list[str]]:
    """The runner.py and make commands in the text's code blocks, as argument lists."""
    commands = []
    for block in re.findall(r"^```(?:sh|bash|console)?\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            for command in re.split(r"\s*&&\s*", line):
                words = shlex.split(command) if command else []
                runner = next((i for i, word in enumerate(words) if word.endswith("runner.py")), None)
                if runner is not None:
                    commands.append(["runner.py", *words[runner + 1:]])
                elif words[:1] == ["make"]:
                    commands.append(words)
    return commands


def _test_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted((REPO / "tests").glob("*.py")) if path.name != Path(__file__).name}


def uncovered(commands: list[list[str]], sources: dict[Path, str]) -> list[str]:
    missing = []
    for command in commands:
        if "--help" in command or "-h" in command:
            continue
        if command[0] == "make":
            wanted_verb = f'"make", "{command[1]}"' if len(command) > 1 else '"make"'
            if not any(wanted_verb in source for source in sources.values()):
                missing.append(" ".join(command))
            continue
        arguments = command[1:]
        verb = next((word for word in arguments if not word.startswith("-")), None)
        options = [word for word in arguments if word.startswith("--")]
        quoted_options = [f'"{option}"' for option in options]
        covered = any(
            (verb is None or f'"{verb}"' in source)
            and any(all(option in line for option in quoted_options) for line in source.splitlines())
            for source in sources.values()
        )
        if not covered:
            missing.append(" ".join(command))
    return missing


def test_readme_is_at_most_150_lines():
    lines = README.read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_shows_a_small_list_of_commands():
    commands = readme_commands(README.read_text())
    verbs = {command[1] for command in commands if command[0] == "runner.py" and len(command) > 1}
    # The quickstart's four steps are there.
    assert {"doctor", "plan", "provision", "notebook"} <= verbs
    assert len(commands) <= 12, commands


def test_every_readme_command_is_run_by_a_test_or_is_help():
    commands = readme_commands(README.read_text())
    assert commands
    assert uncovered(commands, _test_sources()) == []


def test_a_command_no_test_runs_is_reported():
    text = "```sh\n.venv/bin/python runner.py doctor   # fine\n.venv/bin/python runner.py frobnicate --wibble 3\nmake nonsense\n" \
           "python3 -m venv .venv && .venv/bin/python runner.py plan --no-such-option\n.venv/bin/python runner.py frobnicate --help\n```\n"
    commands = readme_commands(text)
    assert uncovered(commands, _test_sources()) == [
        "runner.py frobnicate --wibble 3", "make nonsense", "runner.py plan --no-such-option"]


def _layout_modules() -> set[str]:
    return set(re.findall(r"`(gpubox/[\w/]+\.py)`", LAYOUT.read_text()))


def _package_modules() -> set[str]:
    return {path.relative_to(REPO).as_posix() for path in (REPO / "gpubox").rglob("*.py") if "__pycache__" not in path.parts}


def test_the_layout_names_every_module_that_exists():
    unnamed = _package_modules() - _layout_modules()
    assert not unnamed, f"docs/development.md's layout does not name {sorted(unnamed)}: add a row for each"


def test_the_layout_names_no_module_that_is_gone():
    gone = _layout_modules() - _package_modules()
    assert not gone, f"docs/development.md's layout names {sorted(gone)}, which no longer exist: remove or rename the rows"


def _relative_links(page: Path) -> list[str]:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    return [link for link in links if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("page", [README, *sorted((REPO / "docs").glob("*.md"))], ids=lambda page: page.name)
def test_relative_links_lead_somewhere(page):
    broken = []
    for link in _relative_links(page):
        target = (page.parent / link).resolve()
        if target.relative_to(REPO).as_posix() in PAGES_OF_OTHER_BRANCHES:
            continue
        if not target.exists():
            broken.append(link)
    assert not broken, f"{page.relative_to(REPO)} links to missing {broken}"


def test_pages_of_other_branches_are_not_excused_once_they_exist():
    arrived = [page for page in PAGES_OF_OTHER_BRANCHES if (REPO / page).exists()]
    assert not arrived, f"{arrived} exist now: remove them from PAGES_OF_OTHER_BRANCHES in {Path(__file__).name}"


def test_the_docs_pages_of_the_readme_exist():
    for page in ("it-guide", "security", "scaling", "development", "workstations", "iam"):
        assert (REPO / "docs" / f"{page}.md").is_file(), page


@pytest.mark.parametrize("page", [README, *sorted((REPO / "docs").glob("*.md"))], ids=lambda page: page.name)
def test_every_module_a_page_mentions_exists(page):
    mentioned = set(re.findall(r"\bgpubox/[\w/]+\.py\b", page.read_text()))
    gone = sorted(path for path in mentioned if not (REPO / path).is_file())
    assert not gone, f"{page.relative_to(REPO)} mentions {gone}, which do not exist"
