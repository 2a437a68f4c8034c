"""The extra CA certificate files of the base role (gpubox.workstation.base_ca_files)."""

from __future__ import annotations

from ansible_collections.gpubox.workstation.plugins.filter.base import base_ca_files

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
DIR = "/usr/local/share/ca-certificates/gpubox"


def test_no_listed_and_none_installed_means_nothing_to_do():
    assert base_ca_files({}, DIR, []) == []


def test_each_listed_certificate_is_one_file_with_one_final_newline():
    files = base_ca_files({"corp-root": f"\n{PEM}\n\n", "proxy": PEM}, DIR, [])
    assert files == [
        {"path": f"{DIR}/corp-root.crt", "content": PEM + "\n"},
        {"path": f"{DIR}/proxy.crt", "content": PEM + "\n"},
    ]


def test_installed_certificates_no_longer_listed_are_removed_and_listed_ones_kept():
    files = base_ca_files({"corp-root": PEM}, DIR, [f"{DIR}/corp-root.crt", f"{DIR}/old-proxy.crt"])
    assert files == [
        {"path": f"{DIR}/corp-root.crt", "content": PEM + "\n"},
        {"path": f"{DIR}/old-proxy.crt", "state": "absent"},
    ]


def test_everything_unlisted_goes_when_the_list_is_emptied():
    assert base_ca_files({}, DIR, [f"{DIR}/a.crt", f"{DIR}/b.crt"]) == [
        {"path": f"{DIR}/a.crt", "state": "absent"}, {"path": f"{DIR}/b.crt", "state": "absent"}]
