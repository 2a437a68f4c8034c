"""The base role behind a real proxy, with an extra CA and a stale one to remove."""

import pytest
from testhosts import testinfra_hosts as _hosts

testinfra_hosts = _hosts()
PROXY = "http://127.0.0.1:8888"


def proxy_log(host) -> str:
    return host.check_output("journalctl --no-pager -q -t tinyproxy -o cat")


def test_extra_ca_is_in_the_system_store(host):
    pem = host.file("/usr/local/share/ca-certificates/gpubox/test-corp-ca.crt")
    assert pem.mode == 0o644
    body = "".join(line for line in pem.content_string.splitlines() if not line.startswith("-----"))
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string.replace("\n", "")
    assert body in bundle


def test_ca_no_longer_listed_is_removed_from_the_store(host):
    assert not host.file("/usr/local/share/ca-certificates/gpubox/stale-old-proxy.crt").exists
    assert not host.file("/etc/ssl/certs/stale-old-proxy.pem").exists


def test_apt_uses_the_proxy_but_not_for_instance_metadata(host):
    dump = host.run("apt-config dump").stdout
    assert f'Acquire::http::Proxy "{PROXY}";' in dump
    assert 'Acquire::http::Proxy::169.254.169.254 "DIRECT";' in dump


def test_apt_really_went_through_the_proxy(host):
    assert host.package("tree").is_installed
    log = proxy_log(host)
    assert "deb.debian.org" in log


def test_pip_goes_through_the_proxy_and_trusts_the_system_store(host):
    config = host.file("/etc/pip.conf").content_string
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in config
    assert f"proxy = {PROXY}" in config
    result = host.run("python3 -m venv /tmp/piptest && /tmp/piptest/bin/pip download --no-deps -q -d /tmp/piptest/dl six")
    assert result.rc == 0, result.stderr
    assert "CONNECT pypi.org:443" in proxy_log(host)


@pytest.mark.parametrize("line", [f"https_proxy={PROXY}", f"HTTP_PROXY={PROXY}", "no_proxy=localhost,127.0.0.1,::1,169.254.169.254",
                                  "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"])
def test_login_sessions_get_proxy_and_ca_variables(host, line):
    assert line in host.file("/etc/environment").content_string


def test_time_zone(host):
    assert host.file("/etc/localtime").linked_to.endswith("/Europe/Berlin")


def test_hostname_left_alone_in_a_container(host):
    assert host.check_output("hostname") == host.backend.name
