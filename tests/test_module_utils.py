"""The shared host code of the gpubox.workstation modules (plugins/module_utils), imported as the
modules import it: package state, container detection, the NVIDIA PCI scan, the EC2 metadata
reader and the virtualenv checks. Safe reads under users' homes are in test_safe_files.py."""

from __future__ import annotations

import http.server
import os
import pwd
import subprocess
import sys
import threading
from pathlib import Path

from ansible_collections.gpubox.workstation.plugins.module_utils import host, packages, pci, venv
from ansible_collections.gpubox.workstation.plugins.module_utils.ec2 import instance_type

DPKG_STATUS = """bash installed
nvidia-driver not-installed
curl installed
chrony config-files
"""

DPKG_ABBREV = """nvidia-driver hi  535.216.03-1
nvidia-kernel-dkms ii  535.216.03-1
firmware-misc-nonfree un  
linux-headers-amd64 rc  6.1.0-1
"""

APT_POLICY = """nvidia-driver:
  Installed: 535.216.03-1
  Candidate: 535.247.01-1~deb12u1
  Version table:
linux-headers-amd64:
  Installed: (none)
  Candidate: (none)
"""


def test_installed_packages_are_the_ones_dpkg_calls_installed():
    assert packages.parse_installed(DPKG_STATUS) == {"bash", "curl"}


def test_missing_keeps_the_order_and_asks_dpkg_once(monkeypatch):
    calls = []

    def fake_run(*argv, timeout=None):
        calls.append(argv)
        return 0, "curl installed\nzstd not-installed\n"

    monkeypatch.setattr(packages, "run", fake_run)
    assert packages.missing(["zstd", "curl", "jq"]) == ["zstd", "jq"]
    assert len(calls) == 1 and calls[0][:2] == ("dpkg-query", "-W")
    assert packages.missing([]) == [] and len(calls) == 1


def test_package_states_read_hold_installed_version_and_candidate(monkeypatch):
    outputs = {"dpkg-query": DPKG_ABBREV, "apt-cache": APT_POLICY}
    monkeypatch.setattr(packages, "run", lambda *argv, timeout=None: (0, outputs[argv[0]]))
    names = ["nvidia-driver", "nvidia-kernel-dkms", "linux-headers-amd64", "unknown-package"]
    assert packages.states(names) == {
        "nvidia-driver": {"installed": "535.216.03-1", "candidate": "535.247.01-1~deb12u1", "held": True},
        "nvidia-kernel-dkms": {"installed": "535.216.03-1", "candidate": "", "held": False},
        # rc: removed, configuration left: not installed
        "linux-headers-amd64": {"installed": "", "candidate": "", "held": False},
        "unknown-package": {"installed": "", "candidate": "", "held": False},
    }
    assert packages.states([]) == {}


def test_run_reports_a_missing_program_as_127():
    assert host.run("gpubox-no-such-program") == (127, "")
    assert host.run(sys.executable, "-c", "print('hi')") == (0, "hi\n")


def test_container_type_trusts_systemd_and_falls_back_to_markers(monkeypatch):
    monkeypatch.setattr(host, "run", lambda *argv, timeout=None: (0, "podman\n"))
    assert host.container_type() == "podman"
    monkeypatch.setattr(host, "run", lambda *argv, timeout=None: (1, "none\n"))
    assert host.container_type() == ""
    monkeypatch.setattr(host, "run", lambda *argv, timeout=None: (127, ""))
    monkeypatch.setattr(host.os.path, "exists", lambda path: path == "/.dockerenv")
    assert host.container_type() == "docker"


def test_login_name_is_the_sudo_user(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "admin")
    assert host.login_name() == "admin"
    monkeypatch.delenv("SUDO_USER")
    assert host.login_name() == pwd.getpwuid(os.getuid()).pw_name


def fake_pci_bus(root: Path) -> None:
    devices = {
        "0000:00:1e.0": ("0x10de", "0x030200", "0x1eb8"),  # T4: 3D controller
        "0000:00:1f.0": ("0x10de", "0x030000", "0x2237"),  # A10G: VGA
        "0000:00:03.0": ("0x10de", "0x040300", "0x10f0"),  # NVIDIA HD audio: not a GPU
        "0000:00:04.0": ("0x1d0f", "0x030000", "0x1111"),  # Amazon's VGA: not NVIDIA
    }
    for address, (vendor, device_class, device) in devices.items():
        folder = root / address
        folder.mkdir()
        for name, value in (("vendor", vendor), ("class", device_class), ("device", device)):
            (folder / name).write_text(value + "\n")


def test_pci_scan_finds_nvidia_gpus_by_vendor_and_class(tmp_path, monkeypatch):
    fake_pci_bus(tmp_path)
    monkeypatch.setattr(pci, "lspci_name", lambda address: "Tesla T4" if address == "0000:00:1e.0" else "")
    found = pci.gpus(str(tmp_path))
    assert [(gpu["address"], gpu["device_id"], gpu["class"], gpu["name"]) for gpu in found] == [
        ("0000:00:1e.0", "0x1eb8", "0x0302", "Tesla T4"), ("0000:00:1f.0", "0x2237", "0x0300", "")]


def test_gpu_count_does_not_ask_lspci(tmp_path, monkeypatch):
    fake_pci_bus(tmp_path)
    monkeypatch.setattr(pci, "lspci_name", lambda address: (_ for _ in ()).throw(AssertionError("lspci called")))
    assert pci.gpu_count(str(tmp_path)) == 2
    assert pci.gpu_count(str(tmp_path / "missing")) == 0


def test_lspci_name_is_the_device_field(monkeypatch):
    line = '00:1e.0 "3D controller" "NVIDIA Corporation" "TU104GL [Tesla T4]" -ra1 "NVIDIA Corporation" "Device 12a2"\n'
    monkeypatch.setattr(pci, "run", lambda *argv, timeout=None: (0, line))
    assert pci.lspci_name("00:1e.0") == "TU104GL [Tesla T4]"
    monkeypatch.setattr(pci, "run", lambda *argv, timeout=None: (127, ""))
    assert pci.lspci_name("00:1e.0") == ""


class MetadataService(http.server.BaseHTTPRequestHandler):
    """IMDSv2 as EC2 documents it: a PUT for a session token, then GETs that must carry it."""

    token = "session-token"

    def do_PUT(self):  # noqa: N802
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.reply(200 if ok else 400, self.token if ok else "")

    def do_GET(self):  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != self.token:
            self.reply(401, "")
        elif self.path == "/latest/meta-data/instance-type":
            self.reply(200, "g4dn.xlarge")
        else:
            self.reply(404, "")

    def reply(self, status, body):
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_instance_type_comes_from_imdsv2():
    server = http.server.HTTPServer(("127.0.0.1", 0), MetadataService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert instance_type(f"http://127.0.0.1:{server.server_port}") == "g4dn.xlarge"
        # Nothing answering: no instance type, quickly, no exception.
        assert instance_type("http://127.0.0.1:9", timeout=0.5) == ""
        assert instance_type("") == ""
    finally:
        server.shutdown()


def test_venv_distributions_come_from_its_own_python(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True)
    found = venv.distributions(str(tmp_path / "env"))
    assert isinstance(found, dict) and "pytest" not in found
    assert venv.distributions(str(tmp_path / "none")) is None


def test_readable_by_all_stops_at_a_private_file_or_directory(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "module.py").write_text("")
    (tmp_path / "lib" / "link").symlink_to("/nonexistent")
    os.chmod(tmp_path, 0o755)
    assert venv.readable_by_all(str(tmp_path))
    os.chmod(tmp_path / "lib" / "module.py", 0o640)
    assert not venv.readable_by_all(str(tmp_path))
    os.chmod(tmp_path / "lib" / "module.py", 0o644)
    os.chmod(tmp_path / "lib", 0o750)
    assert not venv.readable_by_all(str(tmp_path))
