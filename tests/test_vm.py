"""site.yml on a real kernel: a QEMU VM of Debian 13 with Debian's cloud kernel (tests/vm.py).

What containers cannot show: kernel sysctls, audit rules, process accounting, the AIDE database,
hostname and time sync, and what survives a reboot and a power loss. The tests share one VM and
run in order (converge, kernel, reboot, power loss, Lynis, autostop's poweroff last); each later
one needs the converge. TensorFlow and Jupyter are left to the container scenarios (under TCG
their pip installs alone would take most of an hour); their handlers follow the same pattern.

Not in `make test` (about half an hour on 2 cores under TCG): `make test-vm` runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socketserver
import subprocess
import threading
import time
from pathlib import Path

import pytest

import vm as vmlib
from conftest import PROJECT, VENV_BIN, run_env

pytestmark = pytest.mark.vm

HOSTNAME = "gpubox-vm-test"
SKIP = ["--skip-tags", "tensorflow,pytorch,jupyter"]
# The test machine reaches Debian's mirrors through a TLS-inspecting proxy whose CA it trusts.
BASE_VARS = {"base_hostname": HOSTNAME, "base_ca_certificates_dir": "/usr/local/share/ca-certificates"}
RECAP = re.compile(r"^\S+\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
FIGURES: dict[str, float | str] = {}


class Collector(socketserver.ThreadingTCPServer):
    """IT's syslog collector, on this machine's loopback: the guest reaches it as 10.0.2.2 (QEMU's
    user network), the address the converge gives hardening_log_forward_host."""

    daemon_threads = True
    allow_reuse_address = True
    GUEST_ADDRESS = "10.0.2.2"

    def __init__(self) -> None:
        self.lines: list[str] = []
        collector = self

        class Receive(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    collector.lines.append(raw.decode(errors="replace").rstrip("\n"))

        super().__init__(("127.0.0.1", 0), Receive)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


_COLLECTOR: list[Collector] = []


def collector() -> Collector:
    """The module's one collector, started on first use (not when pytest only collects this file)."""
    if not _COLLECTOR:
        _COLLECTOR.append(Collector())
    return _COLLECTOR[0]


def figure(name: str, value: float | str) -> None:
    """Record a figure (boot time, converge time...) and show it in the test output."""
    FIGURES[name] = round(value, 1) if isinstance(value, float) else value
    print(f"VM figure: {name} = {FIGURES[name]}")


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory):
    base = vmlib.build_base_disk()
    reuse = os.environ.get("GPUBOX_VM_REUSE")  # a VM directory kept running, for work on these tests
    if reuse:
        machine = vmlib.VM(Path(reuse), base, Path(reuse).parent / "id_ed25519")
    else:
        key = tmp_path_factory.mktemp("vm-keys") / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        machine = vmlib.VM(tmp_path_factory.mktemp("vm"), base, key)
    try:
        if not machine.running():
            figure("first boot to SSH (s)", machine.boot())
        yield machine
    finally:
        if not reuse:
            machine.destroy()
        report = Path(tmp_path_factory.getbasetemp()) / "vm-figures.json"
        report.write_text(json.dumps(FIGURES, indent=2))
        print(f"VM figures ({report}): {json.dumps(FIGURES)}")


def playbook(machine: vmlib.VM, tmp_path: Path, extra: dict | None = None, *args: str) -> list[str]:
    inventory = machine.inventory(tmp_path / "hosts.yml", HOSTNAME)
    forward = {"hardening_log_forward_host": Collector.GUEST_ADDRESS, "hardening_log_forward_port": collector().port}
    return [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "site.yml", *SKIP,
            "-e", json.dumps({**BASE_VARS, **forward, **(extra or {})}), *args]


def converge(machine: vmlib.VM, tmp_path: Path, extra: dict | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(playbook(machine, tmp_path, extra), cwd=PROJECT, env=run_env(), capture_output=True,
                            text=True, timeout=5400, check=False)
    (tmp_path / "converge.log").write_text(result.stdout + result.stderr)
    return result


def recap(result: subprocess.CompletedProcess[str]) -> tuple[str, str, str]:
    found = RECAP.findall(result.stdout)
    assert len(found) == 1, result.stdout[-3000:]
    return found[0]


def needs(step: str) -> None:
    # A reused VM (GPUBOX_VM_REUSE) is one its user already converged.
    if FIGURES.get(step) != "passed" and not os.environ.get("GPUBOX_VM_REUSE"):
        pytest.skip(f"needs the {step} step, which did not pass")


def sshd_on_disk(machine: vmlib.VM) -> dict[str, list[str]]:
    settings = dict(line.split(" ", 1) for line in machine.root("/usr/sbin/sshd -T").splitlines() if " " in line)
    return {name: settings[name].split(",") for name in ("kexalgorithms", "ciphers", "macs")}


def sshd_live(machine: vmlib.VM) -> dict[str, list[str]]:
    """What the running daemon offers, from a real client's handshake (ssh -vv)."""
    result = subprocess.run(["ssh", "-vv", *vmlib.SSH_OPTIONS, "-o", "LogLevel=DEBUG2", "-p", str(machine.port),
                             "-i", str(machine.key), "admin@127.0.0.1", "true"],
                            capture_output=True, text=True, timeout=120, check=False)
    proposal = result.stderr.split("peer server KEXINIT proposal", 1)[1]
    found = dict(re.findall(r"^debug2: (KEX algorithms|ciphers ctos|MACs ctos): (.*)$", proposal, re.M))
    kex = [name for name in found["KEX algorithms"].split(",") if not name.startswith(("ext-info-", "kex-strict-"))]
    return {"kexalgorithms": kex, "ciphers": found["ciphers ctos"].split(","), "macs": found["MACs ctos"].split(",")}


def test_boots_debian13_cloud_kernel_with_cloud_init(vm: vmlib.VM):
    assert vm.root("uname -r").strip().endswith("-cloud-amd64")
    assert "VERSION_CODENAME=trixie" in vm.root("cat /etc/os-release")
    # cloud-init made the login user from the seed, as on EC2: key-only, passwordless sudo.
    status = vm.root("cloud-init status --wait --long", timeout=600)
    assert re.search(r"^status: done$", status, re.M) and "DataSourceNoCloud" in status, status
    assert vm.root("cat /home/admin/.ssh/authorized_keys").strip() == vm.key.with_suffix(".pub").read_text().strip()
    assert vm.root("passwd --status admin").split()[1] == "L"
    assert vm.ssh("sudo -n true").returncode == 0
    assert vm.root("systemctl is-system-running --wait", timeout=600).strip() in {"running", "degraded"}


def test_converge_on_a_real_kernel(vm: vmlib.VM, tmp_path: Path):
    started = time.monotonic()
    first = converge(vm, tmp_path)
    figure("first converge (s)", time.monotonic() - started)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    started = time.monotonic()
    second = converge(vm, tmp_path)
    figure("second converge (s)", time.monotonic() - started)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-2000:]
    assert recap(second) == ("0", "0", "0"), second.stdout[-6000:]
    figure("converge", "passed")


AUTOSTOP_STATUS = "/var/lib/gpubox/autostop/status.json"
RUN_REASON = "ansible run in progress"


def checked_now(machine: vmlib.VM) -> dict:
    """One autostop check run now (the timer's own unit), and the verdict it wrote."""
    return json.loads(machine.root(f"systemctl start gpubox-autostop.service && cat {AUTOSTOP_STATUS}", timeout=300))


def test_a_check_during_the_converge_counts_the_run_as_busy(vm: vmlib.VM, tmp_path: Path):
    """IT's converge is activity: checks made while site.yml runs on the host answer busy with the
    run as the reason (the checker reads it from /proc), and the reason goes with the run."""
    needs("converge")
    log = (tmp_path / "watched-converge.log").open("w")
    run = subprocess.Popen(playbook(vm, tmp_path), cwd=PROJECT, env=run_env(), stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    seen: list[dict] = []
    try:
        while run.poll() is None:
            seen.append(checked_now(vm))
            time.sleep(2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
        log.close()
    assert run.returncode == 0, (tmp_path / "watched-converge.log").read_text()[-4000:]
    during = [status for status in seen if any(reason.startswith(RUN_REASON) for reason in status["reasons"])]
    figure("autostop checks during a converge naming the run", f"{len(during)} of {len(seen)}")
    assert during, seen[-3:]
    assert all(status["busy"] and status["stops_in_minutes"] is None for status in during)
    after = checked_now(vm)
    assert not any(reason.startswith(RUN_REASON) for reason in after["reasons"]), after


def proc_visibility(machine: vmlib.VM) -> dict:
    """What /proc shows: its mount options, which of (its own process, PID 1) an unprivileged
    account sees, and which root sees. hidepid=invisible is {"own"} for nobody, both for root."""
    options = machine.root("findmnt --noheadings --output OPTIONS /proc").strip().split(",")
    look = "test -e /proc/$$ && echo own; test -e /proc/1 && echo init"
    return {"hidepid": [option for option in options if option.startswith("hidepid=")],
            "nobody sees": machine.root(f"runuser -u nobody -- sh -c '{look}'").split(),
            "root sees": machine.root(f"sh -c '{look}'").split()}


PROC_HIDDEN = {"hidepid": ["hidepid=invisible"], "nobody sees": ["own"], "root sees": ["own", "init"]}


def test_kernel_level_work_is_live(vm: vmlib.VM):
    needs("converge")
    # Every sysctl the roles wrote is the running kernel's value.
    written = {}
    for path in ("/etc/sysctl.d/60-gpubox-kernel.conf", "/etc/sysctl.d/60-gpubox-network.conf"):
        for line in vm.root(f"cat {path}").splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = (part.strip() for part in line.split("=", 1))
                written[key] = value
    assert len(written) > 20, written
    live = dict(line.split(" = ", 1) for line in vm.root("sysctl " + " ".join(written)).splitlines())
    assert live == written
    # The audit rules are the kernel's, not only a file.
    # The kernel reports a watched directory without its trailing slash (-w /etc/sudoers.d/ is listed
    # as -w /etc/sudoers.d): compare the rules as the kernel lists them.
    loaded = vm.root("auditctl -l").splitlines()
    watches = [re.sub(r"^(-w \S+?)/ ", r"\1 ", line)
               for line in vm.root("cat /etc/audit/rules.d/60-gpubox.rules").splitlines() if line.startswith("-w ")]
    assert len(watches) >= 5 and set(watches) <= set(loaded), (watches, loaded)
    assert any("key=root-commands" in line and "execve" in line for line in loaded), loaded
    assert re.search(r"^enabled [12]$", vm.root("auditctl -s"), re.M)
    # Process accounting on: the kernel writes records for commands that ran.
    assert vm.root("systemctl is-active acct").strip() == "active"
    assert int(vm.root("stat -c %s /var/log/account/pacct")) > 0
    # The AIDE database is built (in the background: wait for it).
    aide = vm.root("for i in $(seq 180); do test -s /var/lib/aide/aide.db && break; sleep 5; done; "
                   "ls -l /var/lib/aide/aide.db", timeout=1000)
    assert "aide.db" in aide
    # The module blacklist reaches modprobe (which lists module names with '_' for '-').
    modprobe = vm.root("modprobe --showconfig")
    assert "blacklist usb_storage" in modprobe and "install usb_storage /bin/false" in modprobe
    assert proc_visibility(vm) == PROC_HIDDEN
    assert vm.root("hostname").strip() == HOSTNAME
    # The new name resolves on the host (sudo would say "unable to resolve host" otherwise), and
    # cloud-init, which names the host after its metadata at every boot, is told to keep it.
    assert vm.root(f"getent hosts {HOSTNAME}").split()[0] == "127.0.1.1"
    assert "unable to resolve" not in vm.ssh("sudo -n true").stderr
    assert "preserve_hostname: true" in vm.root("cat /etc/cloud/cloud.cfg.d/90-gpubox-hostname.cfg")
    timesync = vm.root("timedatectl show -p NTP -p Timezone")
    assert "NTP=yes" in timesync and "Timezone=Etc/UTC" in timesync, timesync
    assert vm.root("systemctl is-active chrony").strip() == "active"
    figure("kernel", "passed")


NOUVEAU_PLAY = """\
- name: The NVIDIA role's nouveau step alone, after its probe (no GPU, so no driver, here)
  hosts: all
  become: true
  tasks:
    - name: Probe as the role does
      ansible.builtin.include_role: {name: nvidia_driver, tasks_from: validate}
    - name: Blacklist nouveau as install.yml does
      ansible.builtin.include_role: {name: nvidia_driver, tasks_from: blacklist_nouveau}
"""


def test_logs_reach_its_collector(vm: vmlib.VM):
    """hardening_log_forward_host: a line logged on the workstation arrives at IT's collector, as
    RFC 5424 syslog, through rsyslog and the guest's network."""
    needs("converge")
    marker = f"gpubox-forward-{time.time_ns()}"
    vm.root(f"logger -t gpubox-test {marker}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(marker in line for line in collector().lines):
        time.sleep(1)
    arrived = [line for line in collector().lines if marker in line]
    assert len(arrived) == 1, (collector().lines[-20:], vm.root("systemctl status rsyslog --no-pager || true"))
    # <PRI>1 TIMESTAMP HOSTNAME APP-NAME ...: the version-1 header of RFC 5424.
    assert re.match(rf"^<\d+>1 \S+ {HOSTNAME} gpubox-test ", arrived[0]), arrived
    figure("log forwarding", "passed")


def test_nouveau_blacklist_reaches_the_initramfs(vm: vmlib.VM, tmp_path: Path):
    """The driver itself needs a GPU (and DKMS under TCG would take most of an hour): the role's
    blacklist step runs alone here, with its initramfs handler, on the real kernel. The reboot test
    after this one boots the rebuilt initramfs (the harness reads it out of the disk)."""
    needs("converge")
    play = tmp_path / "nouveau.yml"
    play.write_text(NOUVEAU_PLAY)
    inventory = vm.inventory(tmp_path / "hosts.yml", HOSTNAME)
    command = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(play)]
    before = vm.root("stat -L -c %Y /initrd.img").strip()
    first = subprocess.run(command, cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=1800, check=False)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    assert re.search(r"RUNNING HANDLER \[nvidia_driver : Rebuild the initramfs\]", first.stdout), first.stdout[-4000:]
    assert vm.root("stat -L -c %Y /initrd.img").strip() != before
    inside = vm.root("lsinitramfs /initrd.img", timeout=600).split()
    assert "etc/modprobe.d/gpubox-blacklist-nouveau.conf" in inside
    unpacked = vm.root("rm -rf /tmp/initrd && unmkinitramfs /initrd.img /tmp/initrd && "
                       "find /tmp/initrd -path '*/etc/modprobe.d/gpubox-blacklist-nouveau.conf' -exec cat {} +", timeout=600)
    assert re.search(r"^blacklist nouveau$", unpacked, re.M), unpacked
    assert "nvidia-driver-initramfs" not in vm.root("ls -A /var/lib/gpubox/pending")
    second = subprocess.run(command, cwd=PROJECT, env=run_env(), capture_output=True, text=True, timeout=1800, check=False)
    assert second.returncode == 0 and recap(second) == ("0", "0", "0"), second.stdout[-4000:]
    figure("nouveau", "passed")


def test_reboot_brings_every_service_back_on_the_hardened_configuration(vm: vmlib.VM):
    needs("converge")
    boot_id = vm.root("cat /proc/sys/kernel/random/boot_id")
    table = vm.root("nft list table inet gpubox")
    figure("reboot to SSH (s)", vm.reboot())
    assert vm.root("cat /proc/sys/kernel/random/boot_id") != boot_id
    # sshd offers in its handshake exactly what its hardened file says.
    live = sshd_live(vm)
    assert live == sshd_on_disk(vm)
    assert not any(name.startswith(("ecdh-sha2-", "diffie-hellman-group14")) for name in live["kexalgorithms"]), live
    assert vm.root("nft list table inet gpubox") == table
    maxretry = re.search(r"^maxretry = (\d+)$", vm.root("cat /etc/fail2ban/jail.local"), re.M).group(1)
    assert vm.root("fail2ban-client get sshd maxretry").strip() == maxretry
    state = vm.root("systemctl is-active gpubox-autostop.timer fail2ban nftables ssh auditd acct").split()
    assert state == ["active"] * 6, state
    assert vm.root("sysctl -n kernel.kptr_restrict").strip() == "2"
    assert proc_visibility(vm) == PROC_HIDDEN
    # cloud-init ran again at this boot (its seed names the host gpubox-vm) and kept the role's name.
    assert vm.root("hostname").strip() == HOSTNAME
    figure("reboot", "passed")


DPKG_BUSY = "pgrep -x dpkg >/dev/null && ls /var/lib/dpkg/updates | grep -q '^[0-9]'"


def test_power_loss_while_dpkg_runs_then_one_run_converges(vm: vmlib.VM, tmp_path: Path):
    needs("converge")
    extra = {"base_extra_packages": ["lynis", "strace", "jq", "sqlite3"]}
    # A watcher inside the guest says the moment dpkg is mid-transaction (its journal has entries).
    # As root: /proc shows the login account only its own processes (hidepid), not dpkg.
    watcher = subprocess.Popen(["ssh", *vmlib.SSH_OPTIONS, "-i", str(vm.key), "-p", str(vm.port), "admin@127.0.0.1",
                                "sudo sh -c " + shlex.quote(f"until {DPKG_BUSY}; do sleep 0.05; done; echo dpkg-busy")],
                               stdout=subprocess.PIPE, text=True)
    log = (tmp_path / "killed.log").open("w")
    run = subprocess.Popen(playbook(vm, tmp_path, extra), cwd=PROJECT, env=run_env(), stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        out, _ = watcher.communicate(timeout=2400)
        assert "dpkg-busy" in out, "the watcher ended without seeing dpkg at work:\n" + (tmp_path / "killed.log").read_text()[-3000:]
        vm.power_loss()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=60)
        if watcher.poll() is None:
            watcher.kill()
        log.close()
    figure("boot after power loss to SSH (s)", vm.boot())
    # The fault is real: dpkg was left half-way, and apt refuses to install until it is finished.
    refused = vm.ssh("sudo apt-get install -y -q --no-install-recommends lynis")
    assert refused.returncode != 0 and "dpkg --configure -a" in refused.stdout + refused.stderr, refused
    started = time.monotonic()
    rerun = converge(vm, tmp_path, extra)
    figure("converge after power loss (s)", time.monotonic() - started)
    assert rerun.returncode == 0, rerun.stdout[-6000:] + rerun.stderr[-2000:]
    assert "dpkg had been interrupted" in rerun.stdout, rerun.stdout[-6000:]
    assert vm.root("dpkg --audit; ls /var/lib/dpkg/updates") == ""
    assert vm.root("dpkg-query -W -f '${db:Status-Abbrev}\\n' lynis strace jq sqlite3").split() == ["ii"] * 4
    assert vm.root("ls -A /var/lib/gpubox/pending") == ""
    figure("power loss", "passed")


# Lynis's hardening index on the converged VM (the target is 90). The floor below is two
# under what this VM reached (2026-11-30: 86; 2026-12-07: 87, then 90 = 295 of 327 points after
# debsums' timer, AIDE's SHA-512, strict rp_filter, log forwarding and hidepid; one warning each
# time: packages with security updates pending on the image), so a change that weakens the
# hardening fails. Points still lost, by design: SSH forwarding (local) and 10 sessions a
# connection for the tunnels and editors, port 22, one partition, compilers for pip builds,
# kernel.modules_disabled (the NVIDIA driver loads modules); not installed: apt-listbugs (it asks
# bugs.debian.org before every install: every unattended run would depend on that service),
# USBGuard (no USB on EC2), an anti-virus scanner; pam_faillock (AUTH-9408) not configured.
LYNIS_FLOOR = 88  # the image's pending updates come and go


def test_lynis_hardening_index(vm: vmlib.VM):
    needs("converge")
    if vm.ssh("command -v lynis").returncode != 0:
        vm.root("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lynis", timeout=900)
    started = time.monotonic()
    output = vm.root("lynis audit system --quick --no-colors", timeout=2400)
    figure("lynis run (s)", time.monotonic() - started)
    report = vm.root("cat /var/log/lynis-report.dat")
    index = int(re.search(r"^hardening_index=(\d+)$", report, re.M).group(1))
    figure("Lynis hardening index", float(index))
    for kind in ("warning", "suggestion"):
        found = re.findall(rf"^{kind}\[\]=(.*)$", report, re.M)
        figure(f"lynis {kind}s", f"{len(found)}: " + " | ".join(found))
    # KRNL-6000 names no key in its suggestion; which sysctls differ from Lynis's profile is in its details.
    differing = re.findall(r"^details\[\]=KRNL-6000\|(.*)$", report, re.M)
    figure("lynis sysctls differing from its profile", f"{len(differing)}: " + " | ".join(differing))
    # Where the index loses points, test by test (some lose points without a suggestion).
    log = vm.root("cat /var/log/lynis.log")
    partial, test = [], "?"
    for line in log.splitlines():
        if started_test := re.search(r"Performing test ID (\S+)", line):
            test = started_test.group(1)
        elif points := re.search(r"assigned partial number of hardening points \((\d+ of \d+)\)", line):
            partial.append(f"{test} {points.group(1)}")
    totals = re.findall(r"Currently having (\d+) points \(out of (\d+)\)", log)
    figure("lynis points", " of ".join(totals[-1]) if totals else "not found")
    figure("lynis partial points", f"{len(partial)}: " + " | ".join(partial))
    assert "Hardening index" in output
    assert index >= LYNIS_FLOOR


def test_autostop_powers_the_vm_off(vm: vmlib.VM, tmp_path: Path):
    needs("converge")
    # One idle minute, no warning, a check every 30 s; TCG's own background work (under emulation
    # a guest idles at a few tenths of a core) must not count as a training run.
    extra = {"autostop_idle_minutes": 1, "autostop_warn_minutes": 0, "autostop_interval": "30s",
             "autostop_cpu_threshold": 1.5}
    # Held while the run applies these settings: an Ansible run counts only while one of its tasks
    # runs, so a check that lands between two tasks finds a guest quiet for over the new one minute
    # (when the step before was a quiet one) and would power it off in the middle of the run.
    vm.root("mkdir -p /var/lib/gpubox/holds && touch /var/lib/gpubox/holds/vm-test")
    result = subprocess.run(playbook(vm, tmp_path, extra, "--tags", "autostop"), cwd=PROJECT, env=run_env(),
                            capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    vm.root("find /var/lib/gpubox/holds -mindepth 1 -delete")
    started = time.monotonic()
    code = vm.wait_exit(900)
    assert code is not None, "the VM still runs 15 minutes after autostop was set to one idle minute"
    figure("autostop poweroff after (s)", time.monotonic() - started)
    assert code == 0
    console = vm.console()
    assert "reboot: Power down" in console or "Powering off" in console, console[-3000:]
    figure("autostop", "passed")
