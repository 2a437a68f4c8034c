#!/usr/bin/python3
"""Read-only look at accounts for ssh_access. Usage: probe_access.py USERS GROUP (users comma-separated)

Reports the login user of this run and its authorized key blobs (for the lockout guard), whether the
host is a container, and for each named user whether the account exists, its home, its expiry,
whether systemd keeps its user manager (linger) and whether it runs processes.
"""
import grp
import json
import os
import pwd
import subprocess
import sys


def key_blobs(home):
    blobs = []
    for name in ("authorized_keys", "authorized_keys2"):
        try:
            with open(os.path.join(home, ".ssh", name)) as handle:
                for line in handle:
                    parts = line.split()
                    # options may precede the key: the blob is the field after the type
                    for index, part in enumerate(parts[:-1]):
                        if part.startswith(("ssh-", "ecdsa-", "sk-")):
                            blobs.append(parts[index + 1])
                            break
        except OSError:
            pass
    return blobs


def key_lines(home):
    """The exact lines of authorized_keys, sorted; empty when there is no such file."""
    try:
        with open(os.path.join(home, ".ssh", "authorized_keys")) as handle:
            return sorted(line.strip() for line in handle if line.strip())
    except OSError:
        return []


def shadow_expiry(name):
    """Account expiry in days since 1970 from /etc/shadow (-1: never)."""
    with open("/etc/shadow") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name and len(fields) > 7:
                return int(fields[7]) if fields[7] else -1
    return -1


def main():
    names = [n for n in sys.argv[1].split(",") if n]
    group = sys.argv[2]
    try:
        members = set(grp.getgrnam(group).gr_mem)
        group_exists = True
    except KeyError:
        members, group_exists = set(), False
    login = os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    try:
        login_home = pwd.getpwnam(login).pw_dir
    except KeyError:
        login_home = ""
    users = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            users[name] = {"exists": False, "home": "", "expire": -1, "processes": 0, "key_lines": [],
                           "in_group": False, "shell": "", "home_mode": "", "linger": False}
            continue
        expire = shadow_expiry(name)
        procs = subprocess.run(["pgrep", "-u", name], capture_output=True, text=True).stdout.split()
        users[name] = {"exists": True, "home": entry.pw_dir, "expire": expire, "processes": len(procs),
                       "key_lines": key_lines(entry.pw_dir), "in_group": name in members, "shell": entry.pw_shell,
                       "linger": os.path.exists(os.path.join("/var/lib/systemd/linger", name)),
                       "home_mode": "%04o" % (os.stat(entry.pw_dir).st_mode & 0o7777) if os.path.isdir(entry.pw_dir) else ""}
    virt = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True)
    print(json.dumps({"group_exists": group_exists, "container": virt.stdout.strip() if virt.returncode == 0 else "", "login_user": login, "login_user_keys": key_blobs(login_home) if login_home else [], "users": users}))


if __name__ == "__main__":
    main()
