"""A real VM test host: QEMU boots the Debian 13 disk of images/vm/build.sh.

Each VM runs on its own sparse copy of the cached base disk. The guest's kernel and initramfs are
read out of that disk before every boot (debugfs, no mount), so a boot after the roles rebuilt
the initramfs uses the new one, as a boot loader would. QEMU runs with -no-reboot: a reboot in
the guest ends the process and the harness boots again. The login user and its key come from a
NoCloud seed (a virtual FAT drive labelled CIDATA), as EC2's metadata gives them to cloud-init.
sshd is reached on 127.0.0.1 through QEMU's user network.

Acceleration: GPUBOX_VM_ACCEL, default tcg (images/vm/README.md says what KVM did on these machines).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def build_base_disk() -> Path:
    """The cached base disk (built on first use, a few minutes)."""
    result = subprocess.run(["bash", str(PROJECT / "images/vm/build.sh")], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"images/vm/build.sh failed:\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VM:
    """One guest: its disk, seed, SSH port and key, and the QEMU process of the current boot."""

    def __init__(self, workdir: Path, base_disk: Path, key: Path, *, name: str = "gpubox-vm",
                 memory_mib: int = 2560, cpus: int = 2, accel: str | None = None) -> None:
        self.workdir = workdir
        self.name = name
        self.key = key
        self.port = free_port()
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.accel = accel or os.environ.get("GPUBOX_VM_ACCEL", "tcg")
        self.disk = workdir / "disk.raw"
        self.process: subprocess.Popen[bytes] | None = None
        self.attached_pid: int | None = None
        self.boots = 0
        state = workdir / "state.json"
        if state.exists():
            # A VM left running on purpose (GPUBOX_VM_REUSE, for working on the tests): same disk,
            # port and seed; its QEMU is not this process's child.
            saved = json.loads(state.read_text())
            self.port, self.attached_pid, self.boots = saved["port"], saved["pid"], saved["boots"]
            return
        # Sparse copy: only the blocks the base uses are written, and the base stays clean.
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(base_disk), str(self.disk)], check=True)
        self._write_seed(key.with_suffix(".pub").read_text().strip())

    def _write_seed(self, public_key: str) -> None:
        seed = self.workdir / "seed"
        seed.mkdir(exist_ok=True)
        # instance-id stays the same across boots: cloud-init's per-instance work runs once.
        (seed / "meta-data").write_text(f"instance-id: {self.name}\nlocal-hostname: {self.name}\n")
        (seed / "user-data").write_text(f"#cloud-config\nssh_authorized_keys:\n  - {public_key}\n")

    def _extract_boot_files(self) -> tuple[Path, Path]:
        """The kernel and initramfs the guest's /vmlinuz and /initrd.img name now."""
        # After a power loss the newest metadata may sit only in the journal: replay it, as the
        # guest kernel would at mount, so debugfs reads what the guest would boot.
        subprocess.run(["e2fsck", "-E", "journal_only", "-p", str(self.disk)], capture_output=True, check=False)
        files = []
        for link, fallback in (("/vmlinuz", "/boot/vmlinuz"), ("/initrd.img", "/boot/initrd.img")):
            target = None
            for candidate in (link, fallback):
                stat = subprocess.run(["debugfs", "-R", f"stat {candidate}", str(self.disk)],
                                      capture_output=True, text=True, check=False)
                found = re.search(r'Fast link dest: "([^"]+)"', stat.stdout)
                if found:
                    target = found.group(1)
                    target = target if target.startswith("/") else str(Path(candidate).parent / target)
                    break
            if target is None:
                raise RuntimeError(f"no {link} symlink in the guest's disk")
            out = self.workdir / Path(target).name
            out.unlink(missing_ok=True)
            subprocess.run(["debugfs", "-R", f"dump {target} {out}", str(self.disk)], capture_output=True, check=True)
            if not out.exists() or out.stat().st_size == 0:
                raise RuntimeError(f"debugfs could not read {target} from the guest's disk")
            files.append(out)
        return files[0], files[1]

    def command(self) -> list[str]:
        kernel, initrd = self._extract_boot_files()
        seed = self.workdir / "seed"
        return [
            "qemu-system-x86_64", "-name", self.name, "-machine", "q35", "-accel", self.accel,
            "-cpu", os.environ.get("GPUBOX_VM_CPU", "host" if self.accel == "kvm" else "max"), "-smp", str(self.cpus), "-m", str(self.memory_mib),
            "-display", "none", "-no-reboot", "-serial", f"file:{self.workdir / f'console-{self.boots}.log'}",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "root=/dev/vda ro console=ttyS0 net.ifnames=0",
            "-drive", f"file={self.disk},format=raw,if=virtio,cache=unsafe,discard=unmap",
            "-drive", f"if=virtio,readonly=on,format=raw,file.driver=vvfat,file.dir={seed},file.label=CIDATA",
            "-netdev", f"user,id=net0,hostfwd=tcp:127.0.0.1:{self.port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
            "-device", "virtio-rng-pci",
        ]

    def start(self) -> None:
        assert not self.running(), "the VM is already running"
        self.boots += 1
        log = (self.workdir / f"qemu-{self.boots}.log").open("wb")
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        self.attached_pid = None
        (self.workdir / "state.json").write_text(json.dumps({"port": self.port, "pid": self.process.pid, "boots": self.boots}))

    def console(self) -> str:
        path = self.workdir / f"console-{self.boots}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def running(self) -> bool:
        if self.attached_pid is not None:
            return Path(f"/proc/{self.attached_pid}").exists()
        return self.process is not None and self.process.poll() is None

    def wait_ssh(self, timeout: float = 600) -> float:
        """Seconds from now until admin logs in over SSH."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.running():
                raise RuntimeError(f"QEMU ended while waiting for SSH:\n{self.console()[-4000:]}")
            if self.ssh("true", timeout=30).returncode == 0:
                return time.monotonic() - started
            time.sleep(2)
        raise TimeoutError(f"no SSH login within {timeout}s:\n{self.console()[-4000:]}")

    def boot(self, timeout: float = 600) -> float:
        """Start QEMU and wait for SSH; seconds it took."""
        started = time.monotonic()
        self.start()
        self.wait_ssh(timeout)
        return time.monotonic() - started

    def ssh(self, script: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(self.key), "-p", str(self.port), "admin@127.0.0.1", script],
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as error:
            return subprocess.CompletedProcess(error.cmd, 255, "", f"timed out after {timeout}s")

    def root(self, script: str, timeout: float = 300) -> str:
        """Run a shell script as root in the guest; its stdout (fails on a non-zero exit)."""
        result = self.ssh(f"sudo sh -c {shlex.quote(script)}", timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"{script}: exit {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for QEMU to end on its own (guest poweroff or reboot); its exit code, None on timeout."""
        if self.attached_pid is not None:
            deadline = time.monotonic() + timeout
            while self.running() and time.monotonic() < deadline:
                time.sleep(1)
            return None if self.running() else 0
        assert self.process is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.process.wait(timeout=timeout)
        return None

    def power_loss(self) -> None:
        """Pull the plug: SIGKILL QEMU, so the guest gets no chance to flush or stop anything."""
        if self.attached_pid is not None:
            os.kill(self.attached_pid, signal.SIGKILL)
            self.wait_exit(30)
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def reboot(self, timeout: float = 600) -> float:
        """Reboot from inside the guest, then boot the disk again; seconds until SSH is back."""
        self.ssh("sudo systemctl reboot", timeout=30)
        assert self.wait_exit(300) is not None, "the guest did not go down within 5 minutes of `systemctl reboot`"
        return self.boot(timeout)

    def stop(self) -> None:
        """Power off cleanly if possible, else kill; never leaves QEMU behind."""
        if not self.running():
            return
        self.ssh("sudo systemctl poweroff", timeout=30)
        if self.wait_exit(120) is None:
            self.power_loss()

    def destroy(self) -> None:
        if self.running():
            self.power_loss()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def inventory(self, path: Path, hostname: str) -> Path:
        path.write_text(
            "gpu_workstations:\n  hosts:\n"
            f"    {hostname}:\n"
            "      ansible_host: 127.0.0.1\n"
            f"      ansible_port: {self.port}\n"
            "      ansible_user: admin\n"
            f"      ansible_private_key_file: {self.key}\n"
            "      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
        )
        return path

