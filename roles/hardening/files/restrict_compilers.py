#!/usr/bin/python3
"""Let only root and GROUP run compilers and assemblers, via dpkg-statoverride (kept across
package upgrades). Runs after the packages step, so it sees compilers installed in this run.

Usage: restrict_compilers.py GROUP CHECK(0|1) NAMES (comma-separated)
Prints {"changed": [files]}; with CHECK=1 it only reports what it would change.
"""
import grp
import json
import os
import subprocess
import sys


def main():
    group, check, names = sys.argv[1], sys.argv[2] == "1", [n for n in sys.argv[3].split(",") if n]
    listing = subprocess.run(["dpkg-statoverride", "--list"], capture_output=True, text=True).stdout
    overrides = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4:
            overrides[fields[3]] = (fields[0], fields[1], int(fields[2], 8))
    files = sorted({os.path.realpath(os.path.join(d, n)) for n in names for d in ("/usr/bin", "/usr/local/bin")
                    if os.path.exists(os.path.join(d, n))})
    wanted = ("root", group, 0o750)
    changed = [path for path in files if overrides.get(path) != wanted]
    if changed and not check:
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", "--system", group], check=True)
        for path in changed:
            subprocess.run(["dpkg-statoverride", "--update", "--force-statoverride-add", "--add", "root", group, "0750", path],
                           check=True, capture_output=True)
    print(json.dumps({"changed": changed}))


if __name__ == "__main__":
    main()
