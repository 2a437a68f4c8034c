#!/usr/bin/env python3
"""`make bench`: converge fresh test hosts over real SSH, then re-run with nothing to change.

Prints, for each fleet size, the wall time of the first run, of the no-change re-run (which
must report changed=0 on every host) and the slowest tasks of each, and the controller's CPU
seconds per run and per host. A benchmark, not a test: the figures go into notes, the only
failure is a re-run that changes something.

Controller CPU is measured, not estimated: the user+system time of the ansible-playbook process
tree (ansible-playbook, its forks and their ssh clients, all reaped, so getrusage(RUSAGE_CHILDREN)
counts them) plus the ssh ControlMaster processes, which detach from the tree and outlive the
run (read from /proc before and after it, found by the run's private ControlPath directory).
The test hosts' own processes (sshd, the modules) are not the controller's and are not counted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from gpubox import containers  # noqa: E402

RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TIMING = re.compile(r"^(.+?) -+ (\d+\.\d+)s$", re.M)


@dataclasses.dataclass
class Run:
    wall: float
    cpu: float  # controller CPU seconds (user + system)
    output: str


def masters_cpu(control_dir: Path) -> dict[int, float]:
    """CPU seconds so far of each live ssh ControlMaster whose socket is in control_dir."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if str(control_dir).encode() not in (proc / "cmdline").read_bytes():
                continue
            # Fields after the parenthesised command name: utime and stime are the 12th and 13th.
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(proc.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def converge(inventory: Path, extra: list[str], control_dir: Path) -> Run:
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="8",
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control_dir))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    masters_before = masters_cpu(control_dir)
    cpu_before = children_cpu()
    started = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", str(inventory), "site.yml", *extra], cwd=PROJECT, env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    cpu = children_cpu() - cpu_before
    cpu += sum(seconds - masters_before.get(pid, 0.0) for pid, seconds in masters_cpu(control_dir).items())
    if result.returncode != 0:
        sys.exit(f"bench: site.yml failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return Run(elapsed, cpu, result.stdout)


def slowest(output: str, count: int = 8) -> list[str]:
    recap = output.split("TASKS RECAP", 1)[-1]
    return [f"    {seconds:>6}s  {task.strip()}" for task, seconds in TIMING.findall(recap)[:count]]


def bench(size: int, release: str, workdir: Path, image: str = "") -> tuple[Run, Run]:
    key = workdir / f"key{size}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    control_dir = workdir / f"cp{size}"
    control_dir.mkdir()
    # A token of this run: two benches at once (or a kept host) never share a container name.
    token = uuid.uuid4().hex[:6]
    names = [f"gpubox-bench-{token}-{size}-{index}" for index in range(size)]
    lines = ["gpu_workstations:", "  hosts:"]
    try:
        for name in names:
            host = containers.start(name, release, key.with_suffix(".pub").read_text(), image=image)
            lines += [f"    {name}:", "      ansible_host: 127.0.0.1", f"      ansible_port: {host.port}",
                      "      ansible_user: admin", f"      ansible_private_key_file: {key}",
                      "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"]
        inventory = workdir / f"hosts{size}.yml"
        inventory.write_text("\n".join(lines) + "\n")
        extra = ["-e", "base_ca_certificates_dir=/usr/local/share/ca-certificates"]
        first = converge(inventory, extra, control_dir)
        second = converge(inventory, extra, control_dir)
    finally:
        for socket in control_dir.iterdir():
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={socket}", "bench"], capture_output=True, check=False)
        for name in names:
            containers.remove(name)
    changed = {host: int(count) for host, count, _, _ in RECAP.findall(second.output)}
    print(f"\n{size} fresh {release} host(s) over SSH{f', started from {image}' if image else ''}:")
    print(f"  first run:      {first.wall:6.1f}s  controller CPU {first.cpu:6.1f}s ({first.cpu / size:.2f}s per host)")
    print("\n".join(slowest(first.output)))
    print(f"  no-change run:  {second.wall:6.1f}s  controller CPU {second.cpu:6.1f}s ({second.cpu / size:.2f}s per host)"
          f"  changed={sum(changed.values())} on {len(changed)} host(s)")
    print("\n".join(slowest(second.output)))
    if len(changed) != size or any(changed.values()):
        sys.exit(f"bench: the re-run changed something: {changed}")
    return first, second


def table(results: dict[int, tuple[Run, Run]]) -> str:
    rows = ["| hosts | run | wall s | controller CPU s | CPU s per host |", "| ---: | --- | ---: | ---: | ---: |"]
    for size, runs in results.items():
        for label, run in zip(("first", "no-change"), runs):
            rows.append(f"| {size} | {label} | {run.wall:.1f} | {run.cpu:.1f} | {run.cpu / size:.2f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default=os.environ.get("BENCH_HOSTS", "1,4,8"), help="fleet sizes, e.g. 1,4,8")
    parser.add_argument("--release", choices=containers.RELEASES, default="debian12")
    parser.add_argument("--image", default=os.environ.get("BENCH_IMAGE", ""),
                        help="start the hosts from this baked local image (`image build --local`, e.g. pytest-debian12), as "
                             "a fleet made from a baked AMI is: the first run is then the per-workstation one. Default: "
                             "the plain test-host image, so the first run installs everything")
    args = parser.parse_args()
    image = ""
    if args.image:
        from gpubox import bake  # noqa: PLC0415  (only this option needs it)

        try:
            found = bake.local_image(args.image)
        except bake.GpuboxError as exc:
            sys.exit(f"bench: {exc}")
        if found is None:
            sys.exit(f"bench: no baked local image {args.image}; make one with "
                     f"`python runner.py image build --local --name {args.image}`")
        baked_release = found.labels.get(f"{bake.LABEL}.release", args.release)
        if baked_release != args.release:
            sys.exit(f"bench: {found.ref} is a {baked_release} image; add --release {baked_release}")
        if not found.current:
            print(f"bench: {found.ref} was baked from older roles: the first run converges all of site.yml", file=sys.stderr)
        image = found.ref
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(part) for part in args.hosts.split(",")]:
            results[size] = bench(size, args.release, Path(tmp), image)
    started = f"started from {image}" if image else f"fresh {args.release} test-host image"
    print(f"\nforks {forks()} (ansible.cfg); hosts: {started}; "
          "controller CPU = the ansible-playbook process tree and its ssh masters\n")
    print(table(results))
    if 1 in results and len(results) > 1:
        for size, (_, rerun) in results.items():
            if size != 1:
                print(f"\nno-change re-run, {size} hosts vs 1: {rerun.wall / results[1][1].wall:.2f}x wall")


def forks() -> str:
    found = re.search(r"^forks\s*=\s*(\d+)", (PROJECT / "ansible.cfg").read_text(), re.M)
    return found.group(1) if found else "5 (Ansible's default)"


if __name__ == "__main__":
    main()
