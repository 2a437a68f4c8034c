#!/usr/bin/python3
"""Read-only look at JupyterLab on the host in one round trip, for the jupyter role.

For each wanted user: uid and home; what is installed in the
JupyterLab and kernel virtualenvs (so a no-change run does no pip work); which jupyter@
instances are enabled or running (so revoked ones are found). Changes nothing.
Usage: probe_jupyter.py JSON with keys users, venv, kernel_venv, token_file. Prints one JSON object.
"""
import glob
import json
import os
import pwd
import subprocess
import sys

LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name'].lower().replace('_', '-'): d.version for d in m.distributions()}))"
)


def distributions(venv):
    python = os.path.join(venv, "bin", "python")
    if not os.access(python, os.X_OK):
        return None
    result = subprocess.run([python, "-c", LIST_DISTRIBUTIONS], capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else None


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


def user_state(name):
    # "token" is always false: root does not look into homes, and whether a token is valid is for
    # make_token.py to judge, as the user, on every run (it changes nothing when the token is valid).
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"exists": False, "uid": None, "home": "", "token": False}
    return {"exists": True, "uid": entry.pw_uid, "home": entry.pw_dir, "token": False}


def instances():
    enabled = sorted(os.path.basename(path)[len("jupyter@"):-len(".service")]
                     for path in glob.glob("/etc/systemd/system/*.wants/jupyter@*.service"))
    listed = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "jupyter@*.service"],
                            capture_output=True, text=True).stdout
    active = sorted(line.split()[0][len("jupyter@"):-len(".service")]
                    for line in listed.splitlines() if line.split()[2:3] == ["active"])
    return enabled, active


def main():
    settings = json.loads(sys.argv[1])
    enabled, active = instances()
    print(json.dumps({
        "users": {name: user_state(name) for name in settings["users"]},
        "jupyter": distributions(settings["venv"]),
        "kernel": distributions(settings["kernel_venv"]),
        "readable": {"jupyter": readable_by_all(settings["venv"]), "kernel": readable_by_all(settings["kernel_venv"])},
        "enabled": enabled,
        "active": active,
    }))


if __name__ == "__main__":
    main()
