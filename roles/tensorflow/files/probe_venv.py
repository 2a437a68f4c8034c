#!/usr/bin/python3
"""Read-only look at the TensorFlow virtualenv in one round trip, for the tensorflow role.

Reports the system Python (the virtualenv is built from it), whether ensurepip is there, the
virtualenv's Python and installed distributions (so a no-change run does no pip work), the
NVIDIA GPUs on the PCI bus, the loaded driver version and the inputs the last smoke test ran
with. Usage: probe_venv.py VENV REPORT_PATH. Prints one JSON object; changes nothing.
"""
import glob
import json
import os
import platform
import subprocess
import sys

LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"
)


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def gpu_count():
    count = 0
    for device in glob.glob("/sys/bus/pci/devices/*"):
        if read(os.path.join(device, "vendor")) == "0x10de" and read(os.path.join(device, "class"))[:6] in ("0x0300", "0x0302"):
            count += 1
    return count


def readable_by_all(venv):
    """Whether other users can use it: a root umask of 027 (the hardening role's) makes files only
    root can read, and users' servers and kernels run from here. Stops at the first such file."""
    for directory, subdirectories, files in os.walk(venv):
        if not os.stat(directory).st_mode & 0o005 == 0o005:
            return False
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path) and not os.stat(path).st_mode & 0o004:
                return False
    return True


def venv_state(venv):
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        return {"exists": False, "python": "", "distributions": {}, "readable": True}
    config = dict(line.split(" = ", 1) for line in read(os.path.join(venv, "pyvenv.cfg")).splitlines() if " = " in line)
    result = subprocess.run([python, "-c", LIST_DISTRIBUTIONS], capture_output=True, text=True)
    distributions = json.loads(result.stdout) if result.returncode == 0 else {}
    version = config.get("version", config.get("version_info", ""))
    return {"exists": result.returncode == 0, "python": ".".join(version.split(".")[:2]), "distributions": distributions,
            "readable": readable_by_all(venv)}


def main():
    venv, report_path = sys.argv[1], sys.argv[2]
    try:
        previous = json.loads(read(report_path) or "{}").get("inputs", {})
    except ValueError:
        previous = {}
    try:
        import ensurepip  # noqa: F401  (Debian splits it into python3-venv)
        has_ensurepip = True
    except ImportError:
        has_ensurepip = False
    print(json.dumps({
        "python": ".".join(platform.python_version_tuple()[:2]),
        "ensurepip": has_ensurepip,
        "venv": venv_state(venv),
        "gpu_count": gpu_count(),
        "driver_version": read("/sys/module/nvidia/version"),
        "report_inputs": previous,
    }))


if __name__ == "__main__":
    main()
