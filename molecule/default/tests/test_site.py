"""The whole site on a test host: real OpenSSH login, and the base role's results."""

import pytest
from testhosts import ssh, testinfra_hosts as _hosts

testinfra_hosts = _hosts()


def test_admin_logs_in_with_openssh_and_has_sudo(host):
    name = host.backend.name
    result = ssh(name, "sudo", "-n", "id", "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_password_is_never_asked_for(host):
    # BatchMode forbids prompts: a login that needed a password would fail here.
    result = ssh(host.backend.name, "true", extra=("-o", "PreferredAuthentications=publickey"))
    assert result.returncode == 0, result.stderr


def test_common_packages_installed(host):
    for package in ("acl", "curl", "git", "jq", "python3-venv", "tmux"):
        assert host.package(package).is_installed, package


def test_pip_trusts_the_system_store(host):
    config = host.file("/etc/pip.conf")
    assert config.mode == 0o644
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in config.content_string


def test_container_is_detected_and_time_sync_left_alone(host):
    assert host.run("systemd-detect-virt --container").stdout.strip() == "podman"
    assert not host.package("chrony").is_installed


@pytest.mark.parametrize("unit", ["ssh.service", "systemd-journald.service"])
def test_core_services_running(host, unit):
    assert host.service(unit).is_running


def test_no_failed_units(host):
    failed = host.run("systemctl --failed --no-legend --plain").stdout.strip()
    assert failed == "", failed
