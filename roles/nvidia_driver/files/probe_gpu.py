#!/usr/bin/python3
"""Read-only look at the GPU side of the host in one round trip, for the nvidia_driver role.

Finds NVIDIA GPUs on the PCI bus (vendor 0x10de, class 0x0300 VGA or 0x0302 3D controller),
asks the EC2 metadata service (IMDSv2) for the instance type (only on EC2), reads the loaded driver version,
runs nvidia-smi when present, and reports for the given packages their installed version, apt
candidate and hold state (so a no-change run skips apt). Changes nothing.
Usage: probe_gpu.py JSON  with keys imds_url ("" to skip), packages (list). Prints one JSON object.
"""
import glob
import json
import os
import subprocess
import sys
import urllib.request

NVIDIA_VENDOR = "0x10de"
GPU_CLASSES = ("0x0300", "0x0302")


def read(path):
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def pci_gpus(root="/sys/bus/pci/devices"):
    gpus = []
    for device in sorted(glob.glob(os.path.join(root, "*"))):
        if read(os.path.join(device, "vendor")) != NVIDIA_VENDOR:
            continue
        device_class = read(os.path.join(device, "class"))[:6]
        if device_class not in GPU_CLASSES:
            continue
        gpus.append({"address": os.path.basename(device), "device_id": read(os.path.join(device, "device")),
                     "class": device_class, "name": lspci_name(os.path.basename(device))})
    return gpus


def lspci_name(address):
    try:
        result = subprocess.run(["lspci", "-mm", "-s", address], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    # -mm prints quoted fields: slot "class" "vendor" "device" ...
    fields = result.stdout.split('"')
    return fields[5] if result.returncode == 0 and len(fields) > 5 else ""


def on_ec2():
    """EC2 says so in DMI (Nitro) or in the Xen hypervisor UUID (older types); nothing is asked
    of the network elsewhere."""
    return (read("/sys/class/dmi/id/sys_vendor") == "Amazon EC2"
            or read("/sys/class/dmi/id/board_asset_tag").startswith("i-")
            or read("/sys/hypervisor/uuid").lower().startswith("ec2"))


def instance_type(base_url, timeout=1.0):
    """EC2 instance type over IMDSv2 (token first); "" when there is no metadata service."""
    if not base_url:
        return ""
    try:
        token_request = urllib.request.Request(
            base_url.rstrip("/") + "/latest/api/token", method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        # The metadata service must never be reached through a proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(token_request, timeout=timeout) as response:
            token = response.read().decode()
        type_request = urllib.request.Request(
            base_url.rstrip("/") + "/latest/meta-data/instance-type", headers={"X-aws-ec2-metadata-token": token})
        with opener.open(type_request, timeout=timeout) as response:
            return response.read().decode().strip()
    except (OSError, ValueError):
        return ""


def nvidia_smi():
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return {"present": False, "ok": False, "message": "nvidia-smi is not installed", "gpus": []}
    except subprocess.TimeoutExpired:
        return {"present": True, "ok": False, "message": "nvidia-smi did not answer within 60 s", "gpus": []}
    rows = [[cell.strip() for cell in line.split(",")] for line in result.stdout.splitlines() if line.strip()]
    message = (result.stderr.strip() or result.stdout.strip()) if result.returncode else ""
    return {"present": True, "ok": result.returncode == 0, "message": message,
            "gpus": [{"name": row[0], "driver_version": row[1], "memory": row[2]} for row in rows if len(row) >= 3]}


def packages(names):
    report = {name: {"installed": "", "candidate": "", "held": False} for name in names}
    if not names:
        return report
    query = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev} ${Version}\\n", *names],
                           capture_output=True, text=True)
    for line in query.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in report:
            # Status-Abbrev: first letter is the selection (h = hold), second the state (i = installed).
            report[parts[0]]["held"] = parts[1].startswith("h")
            if len(parts[1]) > 1 and parts[1][1] == "i":
                report[parts[0]]["installed"] = parts[-1]
    policy = subprocess.run(["apt-cache", "policy", *names], capture_output=True, text=True)
    current = None
    for line in policy.stdout.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            current = line[:-1]
        elif current in report and line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            report[current]["candidate"] = "" if candidate == "(none)" else candidate
    return report


def loaded_version():
    version = read("/sys/module/nvidia/version")
    if version:
        return version
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.261.03  Sat ..."
    words = read("/proc/driver/nvidia/version").split("Kernel Module", 1)[-1].split()
    return words[0] if words and words[0][0].isdigit() else ""


def container_type():
    result = subprocess.run(["systemd-detect-virt", "--container"], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def main():
    settings = json.loads(sys.argv[1])
    report = {
        "container": container_type(),
        "kernel": os.uname().release,
        "gpus": pci_gpus(),
        "ec2": on_ec2(),
        "instance_type": instance_type(settings.get("imds_url", "")) if on_ec2() else "",
        "loaded_version": loaded_version(),
        "nouveau_loaded": os.path.isdir("/sys/module/nouveau"),
        "nvidia_smi": nvidia_smi(),
        "packages": packages(settings.get("packages", [])),
        "update_initramfs": os.path.exists("/usr/sbin/update-initramfs"),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
