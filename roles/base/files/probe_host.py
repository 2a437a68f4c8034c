#!/usr/bin/python3
"""Read-only look at the host in one round trip, for the base role.

Reports whether this is a container, whether a time zone exists and whether apt has package
lists, which CA certificates gpubox installed earlier, the current time zone and which of
the wanted packages are missing (so a no-change run skips apt entirely); with WAIT_SECONDS > 0 it first waits, boundedly, until cloud-init has finished and no
other apt/dpkg process holds the lock (fresh EC2 instances run cloud-init and
unattended-upgrades at boot, holding the dpkg lock for minutes: the most common first-run
failure). Usage: probe_host.py WAIT_SECONDS TIMEZONE CA_DIR PACKAGES (comma-separated)
Prints one JSON object; exits 1 with advice when the wait runs out.
"""
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import time

LOCKS = ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock")


def lock_free(path):
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def container_type():
    try:
        result = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""
    except FileNotFoundError:
        # No systemd tools: fall back to the marker files podman and docker leave.
        for marker, kind in (("/run/.containerenv", "podman"), ("/.dockerenv", "docker")):
            if os.path.exists(marker):
                return kind
        return ""


def current_timezone():
    try:
        target = os.readlink("/etc/localtime")
    except OSError:
        return ""
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else ""


def missing_packages(names):
    if not names:
        return []
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\\n", *names],
                            capture_output=True, text=True)
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [name for name in names if name not in installed]


def main():
    timeout = int(sys.argv[1])
    timezone = sys.argv[2]
    ca_dir = sys.argv[3]
    packages = [name for name in sys.argv[4].split(",") if name]
    started = time.monotonic()
    report = {
        "container": container_type(),
        "timezone_known": os.path.isfile(os.path.join("/usr/share/zoneinfo", timezone)),
        "cloud_init": "not waited for",
        "waited_seconds": 0,
    }
    if timeout > 0 and shutil.which("cloud-init"):
        try:
            result = subprocess.run(["cloud-init", "status", "--wait"], capture_output=True, text=True, timeout=timeout)
            # 0: done, 2: done with recoverable errors (newer cloud-init); both mean it is finished.
            report["cloud_init"] = "done" if result.returncode in (0, 2) else "error: " + result.stdout.strip()
        except subprocess.TimeoutExpired:
            print(json.dumps(report))
            sys.exit("cloud-init was still running after %ds. Check /var/log/cloud-init-output.log on the host, "
                     "or raise base_wait_timeout and re-run." % timeout)
    while timeout > 0:
        busy = [path for path in LOCKS if not lock_free(path)]
        if not busy:
            break
        if time.monotonic() - started > timeout:
            print(json.dumps(report))
            sys.exit("Another apt/dpkg process still held %s after %ds (see `ps aux | grep -E 'apt|dpkg'` on the "
                     "host). Wait for it to finish, or raise base_wait_timeout, and re-run." % (", ".join(busy), timeout))
        time.sleep(2)
    report["waited_seconds"] = round(time.monotonic() - started, 1)
    report["ca_files"] = sorted(glob.glob(os.path.join(ca_dir, "*.crt")))
    report["timezone"] = current_timezone()
    report["missing_packages"] = missing_packages(packages)
    report["apt_lists"] = len(glob.glob("/var/lib/apt/lists/*_Packages*"))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
