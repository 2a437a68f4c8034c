#!/usr/bin/python3
"""Create each user's Jupyter token on the host, once: 0600 in a 0700 directory of their home.

The token never leaves the host through this script: it prints only which users got a new one.
Usage: make_token.py TOKEN_FILE USER... (TOKEN_FILE relative to the home).
"""
import json
import os
import pwd
import secrets
import sys


def ensure_token(user, relative):
    entry = pwd.getpwnam(user)
    path = os.path.join(entry.pw_dir, relative)
    if os.path.isfile(path):
        return False
    directory = entry.pw_dir
    for part in os.path.dirname(relative).split("/"):
        directory = os.path.join(directory, part)
        if not os.path.isdir(directory):
            os.mkdir(directory, 0o700)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    os.chown(path, entry.pw_uid, entry.pw_gid)
    return True


def main():
    relative, users = sys.argv[1], sys.argv[2:]
    print(json.dumps({"created": [user for user in users if ensure_token(user, relative)]}))


if __name__ == "__main__":
    main()
