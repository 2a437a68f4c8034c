"""Which login.defs keys and file modes the hardening role edits (gpubox.workstation hardening filters)."""

from __future__ import annotations

from ansible_collections.gpubox.workstation.plugins.filter.hardening import (
    hardening_file_modes_wrong, hardening_login_defs_wrong,
)

POLICY = {"UMASK": "027", "HOME_MODE": "0750", "PASS_MAX_DAYS": 365}


def test_login_defs_as_policy_needs_nothing():
    # The probe reads text: numbers in policy compare by their text.
    assert hardening_login_defs_wrong(POLICY, {"UMASK": "027", "HOME_MODE": "0750", "PASS_MAX_DAYS": "365"}) == {}


def test_login_defs_differing_or_missing_keys_are_set_in_policy_order():
    seen = {"UMASK": "022", "PASS_MAX_DAYS": "99999"}
    assert hardening_login_defs_wrong(POLICY, seen) == {"UMASK": "027", "HOME_MODE": "0750", "PASS_MAX_DAYS": 365}
    assert list(hardening_login_defs_wrong(POLICY, seen)) == ["UMASK", "HOME_MODE", "PASS_MAX_DAYS"]


def test_login_defs_keys_policy_does_not_list_are_ignored():
    seen = {"UMASK": "027", "HOME_MODE": "0750", "PASS_MAX_DAYS": "365", "ENCRYPT_METHOD": "MD5"}
    assert hardening_login_defs_wrong(POLICY, seen) == {}


def test_login_defs_value_is_compared_exactly():
    # "0027" would give the same umask, but the line would not be the policy's.
    assert hardening_login_defs_wrong({"UMASK": "027"}, {"UMASK": "0027"}) == {"UMASK": "027"}


MODES = {"/etc/crontab": "0600", "/etc/cron.d": "0700", "/etc/cron.daily": "0700"}


def test_file_modes_as_policy_need_nothing():
    assert hardening_file_modes_wrong(MODES, {"/etc/crontab": "0600", "/etc/cron.d": "0700", "/etc/cron.daily": "0700"}) == {}


def test_file_modes_differing_are_fixed_and_missing_paths_left_alone():
    seen = {"/etc/crontab": "0644", "/etc/cron.daily": "0755"}  # no /etc/cron.d on this host
    assert hardening_file_modes_wrong(MODES, seen) == {"/etc/crontab": "0600", "/etc/cron.daily": "0700"}


def test_file_modes_of_paths_policy_does_not_list_are_not_touched():
    assert hardening_file_modes_wrong(MODES, {"/etc/crontab": "0600", "/etc/anacrontab": "0644"}) == {}
