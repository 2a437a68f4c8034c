"""A data scientist's own Python environments, on the workstation, as that data scientist.

`runner.py env` sends this file over SSH to `/usr/bin/python3 -` (standard library only), its
request inside the program text (nothing on the command line, which other accounts can read), and runs
it as whoever the SSH entry logs in as: no root, no Ansible, nothing outside their home. Each
environment is ~/.local/share/gpubox/envs/NAME with its own Jupyter kernel
(~/.local/share/jupyter/kernels/gpubox-env-NAME), which only its owner's JupyterLab lists.

`--from FRAMEWORK` builds a virtualenv of the system Python whose site-packages end with the
framework's (a .pth line): torch or tensorflow are imported from the shared, root-owned
environment, nothing of it is copied, and what the requirements add or upgrade wins.

Creation is all or nothing: the environment is built under a temporary name next to its final
place, renamed when every requirement is installed, and the kernel spec is written last (itself
atomically). A failed install removes the temporary directory and names the requirement that
failed. Prints one JSON object; exits 1 on failure with "error" and "fix".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# runner.py waits at most this long for a create (env.CREATE_TIMEOUT); an older build is dead.
STALE_BUILD_SECONDS = 2 * 3600
HOME = Path.home()
ENVS = HOME / ".local" / "share" / "gpubox" / "envs"
KERNELS = HOME / ".local" / "share" / "jupyter" / "kernels"
KERNEL_PREFIX = "gpubox-env-"
LAUNCHER = "/usr/local/lib/gpubox/jupyter_kernel.py"
FRAMEWORK_VENVS = {"tensorflow": "/opt/gpubox/venv", "pytorch": "/opt/gpubox/pytorch"}
IPYKERNEL = "ipykernel==7.4.0"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PIP_TIMEOUT = 3600
# pip's words for a requirement it could not get, newest pip first.
FAILED_REQUIREMENT = (
    re.compile(r"No matching distribution found for ([^\s]+)"),
    re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)"),
    re.compile(r"Failed to build ([^\s]+)"),
    re.compile(r"Because ([^\s]+) was not found in the package registry"),  # uv
    re.compile(r"No solution found when resolving dependencies:.*?\b([A-Za-z0-9_.-]+)\b", re.S),  # uv
)


class Failure(Exception):
    def __init__(self, error: str, fix: str) -> None:
        super().__init__(error)
        self.error, self.fix = error, fix


def run(argv: list[str], timeout: int = PIP_TIMEOUT, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                          env={**os.environ, **extra_env} if extra_env else None)


def python_version(python: str) -> str:
    result = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60)
    return result.stdout.strip() if result.returncode == 0 else ""


def site_packages(python: str) -> str:
    result = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=60)
    return result.stdout.strip()


def failed_requirement(output: str) -> str:
    for pattern in FAILED_REQUIREMENT:
        match = pattern.search(output)
        if match:
            return match.group(1).rstrip(").,;")
    return ""


def du(path: Path) -> int:
    """Bytes on disk under path (links not followed, hard links counted once)."""
    seen, total = set(), 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            info = os.lstat(os.path.join(root, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def kernel_dir(name: str) -> Path:
    return KERNELS / f"{KERNEL_PREFIX}{name}"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# uv reads no pip.conf: the system CA store (the base role's corporate CAs) is asked for by
# environment, which every uv release accepts (an unknown variable is ignored; the flags changed
# name, --native-tls then --system-certs).
UV_SYSTEM_CERTS = {"UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1"}


def installers(python: str, inherits: bool) -> list[tuple[list[str], dict[str, str] | None]]:
    """The install commands to try in turn, each with what it adds to the environment: uv where it
    runs (the faster one, docs/performance.md; the workstation's pinned one first), then pip, last,
    wherever uv fails (a proxy only pip.conf names). pip alone for an environment that inherits a
    framework's: pip sees the framework's packages (through the .pth) as installed and leaves them
    there; uv looks at the environment's own site-packages only and would copy them."""
    pip = ([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"], None)
    found = (Path("/opt/gpubox/tools/bin/uv"), Path(shutil.which("uv") or "/nonexistent"), HOME / ".local" / "bin" / "uv")
    uv = "" if inherits else next((str(path) for path in found if path.is_file() and os.access(path, os.X_OK)), "")
    if uv and os.environ.get("GPUBOX_INSTALLER", "auto") != "pip":
        return [([uv, "pip", "install", "--python", python, "--quiet"], UV_SYSTEM_CERTS), pip]
    return [pip]


def create(request: dict) -> dict:
    name, framework, wanted_python = request["name"], request.get("from") or "", request.get("python") or ""
    if not NAME.match(name):
        raise Failure(f"Environment name '{name}' is not allowed.", "Use lowercase letters, digits, '-' and '_' (up to 40), starting with a letter or digit.")
    final = ENVS / name
    if final.exists() or kernel_dir(name).exists():
        raise Failure(f"You already have an environment named '{name}'.", f"Remove it first: python runner.py env remove {name}")
    if framework:
        if framework not in FRAMEWORK_VENVS:
            raise Failure(f"--from {framework} is not a framework gpubox installs.", f"Use one of {', '.join(FRAMEWORK_VENVS)}.")
        base_python = FRAMEWORK_VENVS[framework] + "/bin/python"
        if not os.access(base_python, os.X_OK):
            raise Failure(f"{framework} is not installed on this workstation ({FRAMEWORK_VENVS[framework]} is missing).",
                          f"Ask IT for it (gpubox_frameworks, or provision --framework {framework}), or drop --from.")
        version = python_version(base_python)
        if wanted_python and wanted_python != version:
            raise Failure(f"--from {framework} runs Python {version}, not {wanted_python}.", "Drop --python, or drop --from.")
        python = f"/usr/bin/python{version}"
    else:
        python = f"/usr/bin/python{wanted_python}" if wanted_python else "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        present = sorted(path.name.removeprefix("python") for path in Path("/usr/bin").glob("python3.*") if re.fullmatch(r"python3\.\d+", path.name))
        raise Failure(f"Python {wanted_python or '3'} is not installed on this workstation ({python} is missing).",
                      f"Use --python with one of: {', '.join(present) or 'none'}.")

    ENVS.mkdir(parents=True, exist_ok=True)
    # Under its final parent, so the rename that publishes it is atomic; a crash leaves only a
    # dot-directory that the next create or list sweeps.
    building = Path(tempfile.mkdtemp(dir=ENVS, prefix=f".{name}.building-"))
    try:
        made = run([python, "-m", "venv", "--without-pip" if framework else "--upgrade-deps", str(building)], timeout=600)
        if made.returncode != 0:
            raise Failure(f"Creating the virtualenv failed: {made.stderr.strip()[-300:]}", "Check that python3-venv is installed (IT).")
        env_python = str(building / "bin" / "python")
        if framework:
            # The framework's packages after this environment's own: imported from the shared
            # environment, never copied; anything the requirements install here wins.
            shared = site_packages(FRAMEWORK_VENVS[framework] + "/bin/python")
            Path(site_packages(env_python), "_gpubox_from_" + framework + ".pth").write_text(shared + "\n")
            # pip comes from the framework's environment too (a venv --without-pip has none).
        requirements = request.get("requirements") or ""
        packages = [] if framework else [IPYKERNEL]  # the framework's environment has ipykernel (the jupyter role's)
        arguments = [*packages]
        if requirements.strip():
            listed = building / ".requirements.txt"
            listed.write_text(requirements)
            arguments += ["-r", str(listed)]
        if arguments:
            # One deadline for both tries: runner.py waits CREATE_TIMEOUT for the whole create.
            deadline = time.monotonic() + PIP_TIMEOUT
            tries = installers(env_python, inherits=bool(framework))
            for number, (argv, extra_env) in enumerate(tries, 1):
                left = max(int(deadline - time.monotonic()), 1)
                try:
                    installed = run([*argv, *arguments], timeout=left, extra_env=extra_env)
                except subprocess.TimeoutExpired:
                    if number == len(tries):
                        raise Failure(f"Installing the requirements took longer than {PIP_TIMEOUT // 60} minutes.",
                                      "Try fewer or smaller requirements, or run env create again; nothing was created.") from None
                    continue  # uv ran out of time: pip gets what is left
                if installed.returncode == 0:
                    break
            if installed.returncode != 0:
                output = installed.stdout + installed.stderr
                culprit = failed_requirement(output)
                last = [line for line in output.splitlines() if line.strip()][-3:]
                raise Failure(f"Installing {'requirement ' + repr(culprit) if culprit else 'the requirements'} failed: {' | '.join(last)[-500:]}",
                              f"Fix {culprit or 'the requirements file'} (a name or version PyPI has) and run env create again; "
                              "nothing was created.")
        try:
            os.rename(building, final)  # never over an environment a concurrent create published first
        except OSError as exc:
            raise Failure(f"Could not publish the environment '{name}': {exc.strerror}.",
                          f"Another `env create {name}` may have finished first: see `python runner.py env list`.") from None
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    # The launcher and -P as for the shared kernels: no TCP pipe, nothing imported from the notebook's folder.
    spec = {"argv": [str(final / "bin" / "python"), "-P", LAUNCHER, "-f", "{connection_file}"],
            "display_name": f"Python 3 ({name})", "language": "python", "metadata": {"debugger": False, "gpubox": {"from": framework}}}
    if not Path(LAUNCHER).is_file():
        spec["argv"] = [str(final / "bin" / "python"), "-P", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    try:
        write_atomically(kernel_dir(name) / "kernel.json", json.dumps(spec, indent=1))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    shared_bytes = du(Path(FRAMEWORK_VENVS[framework])) if framework else 0
    return {"ok": True, "name": name, "path": str(final), "kernel": kernel_dir(name).name, "display_name": spec["display_name"],
            "from": framework, "python": python_version(str(final / "bin" / "python")), "bytes": du(final), "framework_bytes": shared_bytes}


def listing(_request: dict) -> dict:
    envs = []
    if ENVS.is_dir():
        for entry in sorted(ENVS.iterdir()):
            if entry.name.startswith("."):
                # A build that was killed, never published; one younger than a create may take is
                # left alone (a create may be running beside this list).
                if time.time() - entry.lstat().st_mtime > STALE_BUILD_SECONDS:
                    shutil.rmtree(entry, ignore_errors=True)
                continue
            spec_path = kernel_dir(entry.name) / "kernel.json"
            try:
                spec = json.loads(spec_path.read_text())
            except (OSError, ValueError):
                spec = {}
            envs.append({"name": entry.name, "path": str(entry), "kernel": spec.get("display_name", ""),
                         "from": spec.get("metadata", {}).get("gpubox", {}).get("from", ""), "bytes": du(entry)})
    return {"ok": True, "envs": envs}


def remove(request: dict) -> dict:
    name = request["name"]
    if not NAME.match(name):
        raise Failure(f"Environment name '{name}' is not allowed.", "See `python runner.py env list` for yours.")
    final, kernel = ENVS / name, kernel_dir(name)
    if not final.exists() and not kernel.exists():
        raise Failure(f"You have no environment named '{name}'.", "See `python runner.py env list`.")
    shutil.rmtree(kernel, ignore_errors=True)  # the kernel first: never a kernel without its environment
    shutil.rmtree(final, ignore_errors=True)
    return {"ok": True, "name": name}


def main(request_text: str) -> int:
    request = json.loads(request_text)
    action = {"create": create, "list": listing, "remove": remove}[request["action"]]
    try:
        result = action(request)
    except Failure as failure:
        result = {"ok": False, "error": failure.error, "fix": failure.fix}
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    # runner.py sends this file on stdin with the request appended as the last line (REQUEST = ...):
    # never on the command line, which every account on the workstation can read (ps, /proc/*/cmdline),
    # and requirements may carry an index URL with a token. Run by hand: the request on stdin.
    sys.exit(main(globals().get("REQUEST") or sys.stdin.read()))
