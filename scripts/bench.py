#!/usr/bin/env python3
"""`make bench`: converge fresh test hosts over real SSH, then re-run with nothing to change.

Prints, for each fleet size, the wall time of the first run, of the no-change re-run (which
must report changed=0 on every host) and the slowest tasks of each. A benchmark, not a test:
the figures go into notes, the only failure is a re-run that changes something.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from gpubox import containers  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TIMING = re.compile(r"^(.+?) -+ (\d+\.\d+)s$", re.M)


def converge(inventory: Path, extra: list[str]) -> tuple[float, str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="8")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), "site.yml", *extra], cwd=PROJECT, env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"bench: site.yml failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def slowest(output: str, count: int = 8) -> list[str]:
    recap = output.split("TASKS RECAP", 1)[-1]
    return [f"    {seconds:>6}s  {task.strip()}" for task, seconds in TIMING.findall(recap)[:count]]


def bench(size: int, release: str, workdir: Path) -> tuple[float, float]:
    key = workdir / f"key{size}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    names = [f"gpubox-bench-{size}-{index}" for index in range(size)]
    lines = ["gpu_workstations:", "  hosts:"]
    try:
        for name in names:
            host = containers.start(name, release, key.with_suffix(".pub").read_text())
            lines += [f"    {name}:", "      ansible_host: 127.0.0.1", f"      ansible_port: {host.port}",
                      "      ansible_user: admin", f"      ansible_private_key_file: {key}",
                      "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"]
        inventory = workdir / f"hosts{size}.yml"
        inventory.write_text("\n".join(lines) + "\n")
        extra = ["-e", "base_ca_certificates_dir=/usr/local/share/ca-certificates"]
        first, first_out = converge(inventory, extra)
        second, second_out = converge(inventory, extra)
    finally:
        for name in names:
            containers.remove(name)
    changed = {host: int(count) for host, count, _, _ in RECAP.findall(second_out)}
    print(f"\n{size} fresh {release} host(s) over SSH:")
    print(f"  first run:      {first:6.1f}s")
    print("\n".join(slowest(first_out)))
    print(f"  no-change run:  {second:6.1f}s  changed={sum(changed.values())} on {len(changed)} host(s)")
    print("\n".join(slowest(second_out)))
    if len(changed) != size or any(changed.values()):
        sys.exit(f"bench: the re-run changed something: {changed}")
    return first, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default=os.environ.get("BENCH_HOSTS", "1,8"), help="fleet sizes, e.g. 1,8")
    parser.add_argument("--release", choices=containers.RELEASES, default="debian12")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(part) for part in args.hosts.split(",")]:
            results[size] = bench(size, args.release, Path(tmp))
    if 1 in results and len(results) > 1:
        for size, (_, rerun) in results.items():
            if size != 1:
                print(f"\nno-change re-run, {size} hosts vs 1: {rerun / results[1][1]:.2f}x")


if __name__ == "__main__":
    main()
