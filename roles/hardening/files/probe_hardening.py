#!/usr/bin/python3
"""Read-only look at the host for the hardening role, in one round trip.

Usage: probe_hardening.py PACKAGES REMOVABLE_PACKAGES SERVICES LOGIN_DEFS_KEYS PATHS (each comma-separated)
Reports who logged in to run Ansible (for the lockout guard), the algorithms this OpenSSH
supports, which host keys exist, which packages are missing or removable, and service states.
"""
import glob
import grp
import json
import os
import pwd
import re
import subprocess
import sys


def run(*argv):
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError:
        return 127, ""
    return result.returncode, result.stdout


def installed(names):
    if not names:
        return set()
    _, out = run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n", *names)
    return {line.split()[0] for line in out.splitlines() if line.endswith(" installed")}


def login_user():
    name = os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"name": name, "groups": [], "authorized_keys": 0}
    groups = sorted({g.gr_name for g in grp.getgrall() if name in g.gr_mem} | {grp.getgrgid(entry.pw_gid).gr_name})
    keys = 0
    for path in (os.path.join(entry.pw_dir, ".ssh", "authorized_keys"), os.path.join(entry.pw_dir, ".ssh", "authorized_keys2")):
        try:
            with open(path) as handle:
                keys += sum(1 for line in handle if line.strip() and not line.lstrip().startswith("#"))
        except OSError:
            pass
    return {"name": name, "groups": groups, "authorized_keys": keys}


def _parent(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)
    return fields[0].split("(", 1)[1], int(fields[1].split()[1])


def controller_address():
    """The address this Ansible run connects from, for the operator's own fail2ban exemption.

    Our environment (when sudo keeps SSH_CONNECTION), else the environment of the login shell
    above us (root can read it where it holds CAP_SYS_PTRACE), else what sshd logged when it
    accepted the session above us.
    """
    if os.environ.get("SSH_CONNECTION"):
        return os.environ["SSH_CONNECTION"].split()[0]
    pid, sshd_pids = os.getppid(), []
    for _ in range(16):
        if pid <= 1:
            break
        try:
            with open("/proc/%d/environ" % pid, "rb") as handle:
                for item in handle.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        return item.split(b"=", 1)[1].split()[0].decode()
        except OSError:
            pass
        try:
            name, parent = _parent(pid)
        except (OSError, ValueError, IndexError):
            break
        if name == "sshd" or name.startswith("sshd-"):
            sshd_pids.append(pid)
        pid = parent
    if sshd_pids:
        code, out = run("journalctl", "-q", "-o", "cat", "--no-pager", *("_PID=%d" % p for p in sshd_pids))
        found = re.findall(r"Accepted \S+ for \S+ from (\S+) port", out) if code == 0 else []
        if found:
            return found[-1]
    return ""


def login_defs(keys):
    values = {}
    try:
        with open("/etc/login.defs") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] in keys:
                    values[parts[0]] = parts[1]
    except OSError:
        pass
    return values


def main():
    packages = [p for p in sys.argv[1].split(",") if p]
    removable = [p for p in sys.argv[2].split(",") if p]
    services = [s for s in sys.argv[3].split(",") if s]
    login_defs_keys = [k for k in sys.argv[4].split(",") if k]
    paths = [p for p in sys.argv[5].split(",") if p]
    have = installed(packages + removable)
    code, virt = run("systemd-detect-virt", "--container")
    report = {
        "container": virt.strip() if code == 0 else "",
        "login_user": login_user(),
        "controller_address": controller_address(),
        "algorithms": {kind: run("ssh", "-Q", kind)[1].split() for kind in ("kex", "cipher", "mac", "key")},
        "host_keys": sorted(glob.glob("/etc/ssh/ssh_host_*_key")),
        "missing_packages": [p for p in packages if p not in have],
        "removable_installed": [p for p in removable if p in have],
        "services": {},
        "login_defs": login_defs(login_defs_keys),
        "aide_database": os.path.exists("/var/lib/aide/aide.db")
        or run("systemctl", "is-active", "gpubox-aide-init.service")[1].strip() in ("active", "activating"),
        "modes": {path: "%04o" % (os.stat(path).st_mode & 0o7777) for path in paths if os.path.exists(path)},
    }
    for service in services:
        enabled = run("systemctl", "is-enabled", service)[1].strip()
        active = run("systemctl", "is-active", service)[1].strip()
        report["services"][service] = {"enabled": enabled, "active": active}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
