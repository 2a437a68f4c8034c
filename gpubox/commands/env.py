"""Python environments: which frameworks a workstation gets (`provision --framework`), and, in the
data scientist's own hands, environments of their own (`env create|list|remove`)."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from pathlib import Path

from gpubox import ssh
from gpubox.errors import GpuboxError

# In the order site.yml installs them; TensorFlow alone is the default (roles' gpubox_frameworks).
FRAMEWORKS = ("tensorflow", "pytorch")
DEFAULT_FRAMEWORKS = ("tensorflow",)
FRAMEWORKS_VAR = "gpubox_frameworks"
# The tags that add a framework to a workstation started from a baked image (which has the
# default only): its role, and the jupyter role's install step that registers its kernel.
FRAMEWORK_TAGS = "tensorflow,pytorch,jupyter_install"


def add_framework_option(parser: argparse.ArgumentParser) -> None:
    """--framework, repeatable, on the options every configuring command shares."""
    parser.add_argument("--framework", dest="frameworks", action="append", choices=FRAMEWORKS, metavar="|".join(FRAMEWORKS),
                        help="a framework to install, each in its own environment and Jupyter kernel; repeat for "
                             "several (default: tensorflow only). --framework tensorflow --framework pytorch gives both")


def chosen(frameworks: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The frameworks in install order, each once; the default where none was given."""
    if not frameworks:
        return DEFAULT_FRAMEWORKS
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        raise GpuboxError(f"--framework {', '.join(unknown)} is not one gpubox installs.",
                          f"Choose from {', '.join(FRAMEWORKS)}; repeat --framework for several.", exit_code=2)
    return tuple(name for name in FRAMEWORKS if name in frameworks)


def framework_vars(frameworks: list[str] | tuple[str, ...] | None) -> dict[str, list[str]]:
    """The roles' input; nothing where the default stands, so inventory settings keep their say."""
    return {} if not frameworks else {FRAMEWORKS_VAR: list(chosen(frameworks))}


def image_tags(tags: str | None, frameworks: list[str] | tuple[str, ...] | None) -> str | None:
    """A baked image holds the default frameworks: a per-instance run that must add another also
    runs the framework roles and the kernels' registration."""
    if tags is None or chosen(frameworks) == DEFAULT_FRAMEWORKS:
        return tags
    return f"{tags},{FRAMEWORK_TAGS}"


# --- env create | list | remove: the data scientist's own environments, as themselves over SSH ---

REMOTE_HELPER = Path(__file__).with_name("env_remote.py")
REMOTE_PYTHON = "/usr/bin/python3"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PYTHON_PATTERN = re.compile(r"^3\.[0-9]{1,2}$")
MAX_REQUIREMENTS_BYTES = 256 * 1024
# Creating an environment installs packages: bounded, but generously (a CUDA wheel set is gigabytes).
CREATE_TIMEOUT = 3600


def create_request(name: str, requirements: Path | None, python: str | None, framework: str | None) -> dict:
    """What the remote helper is asked, checked here first so bad input changes nothing."""
    if not NAME_PATTERN.match(name):
        raise GpuboxError(f"Environment name '{name}' is not allowed.",
                          "Use lowercase letters, digits, '-' and '_' (up to 40), starting with a letter or digit.", exit_code=2)
    if python and not PYTHON_PATTERN.match(python):
        raise GpuboxError(f"--python {python} is not a Python version.", "Give major.minor, e.g. --python 3.11.", exit_code=2)
    text = ""
    if requirements is not None:
        try:
            text = requirements.read_text()
        except OSError as exc:
            raise GpuboxError(f"Cannot read the requirements file {requirements}: {exc.strerror}.",
                              "Give the path of a pip requirements file on this machine.", exit_code=2) from exc
        if len(text.encode()) > MAX_REQUIREMENTS_BYTES:
            raise GpuboxError(f"{requirements} is larger than {MAX_REQUIREMENTS_BYTES // 1024} KiB.", "Is it a requirements file?", exit_code=2)
    return {"action": "create", "name": name, "requirements": text, "python": python or "", "from": framework or ""}


def remote_argv(ssh_prefix: list[str]) -> list[str]:
    """The helper runs from stdin in the workstation's python3 (remote_program); no argument carries
    the request, since every account there can read a process's command line."""
    return [*ssh_prefix, shlex.join([REMOTE_PYTHON, "-"])]


def remote_program(request: dict) -> str:
    """The helper's text with the request set before its main block runs (the main block is last)."""
    text = REMOTE_HELPER.read_text()
    main_block = text.rindex('\nif __name__ == "__main__":')
    return f"{text[:main_block]}\nREQUEST = {json.dumps(json.dumps(request))}\n{text[main_block:]}"


def ssh_prefix(alias: str) -> list[str]:
    """ssh to the workstation's entry, as its user, without prompts."""
    return ["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", alias]


def run_remote(ssh_prefix: list[str], request: dict, timeout: int = CREATE_TIMEOUT) -> dict:
    """Run the helper as the SSH entry's user; its JSON answer (ok, or error and fix)."""
    try:
        result = subprocess.run(remote_argv(ssh_prefix), input=remote_program(request), capture_output=True,
                                text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GpuboxError(f"The workstation did not finish within {timeout} s.",
                          "Nothing was published if create did not finish; `env list` shows what is there.") from exc
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise GpuboxError(f"Could not run the environment helper on the workstation: {result.stderr.strip()[-300:] or 'no answer'}",
                          "Check `python runner.py status`; is it running?")
    return json.loads(lines[-1])
