"""The autostop checker's decisions, run on this machine with a clock it is handed: warning once,
acting exactly once per idle period, holds and their expiry, and a failing check counting as busy.
nvidia-smi parsing is checked against recorded outputs. (Real Jupyter kernels, SSH sessions and
CPU load are exercised on test hosts in molecule/jupyter/tests/test_autostop.py.)"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import PROJECT

spec = importlib.util.spec_from_file_location("gpubox_autostop", PROJECT / "roles" / "autostop" / "files" / "gpubox_autostop.py")
autostop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(autostop)

RECORDED = {
    "one T4, idle": ("0\n", [0.0]),
    "one A10G, training": ("97\n", [97.0]),
    "eight H100s, mixed": ("100\n98\n0\n0\n45\n0\n0\n3\n", [100.0, 98.0, 0.0, 0.0, 45.0, 0.0, 0.0, 3.0]),
    "with units": ("37 %\n", [37.0]),
}


@pytest.mark.parametrize("case", list(RECORDED))
def test_nvidia_smi_utilisation_parsed(case):
    output, expected = RECORDED[case]
    assert autostop.parse_nvidia_smi(output) == expected


@pytest.mark.parametrize("output", ["[N/A]\n", "[Not Supported]\n", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"])
def test_nvidia_smi_without_a_reading_is_an_error_not_zero(output):
    with pytest.raises(ValueError):
        autostop.parse_nvidia_smi(output)


@pytest.fixture
def config(tmp_path):
    (tmp_path / "jupyter").mkdir()
    (tmp_path / "holds").mkdir()
    return {
        "idle_minutes": 3, "max_hours": 0, "warn_minutes": 1, "gpu_threshold": 10, "gpu_window_minutes": 5,
        # This machine's own CPU use (the test suite) must not count here.
        "cpu_threshold": 1000, "watch_gpu": False, "nvidia_smi": ["nvidia-smi"],
        "action": ["/bin/sh", "-c", f"echo acted >> {tmp_path / 'actions'}"],
        "warn_command": ["/bin/sh", "-c", f"echo \"$0\" >> {tmp_path / 'warnings'}"],
        "jupyter_config_dir": str(tmp_path / "jupyter"), "jupyter_token_file": ".token",
        "holds_dir": str(tmp_path / "holds"), "state_file": str(tmp_path / "state" / "state.json"),
        "status_file": str(tmp_path / "status.json"),
    }


def lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_warns_once_then_acts_exactly_once(config, tmp_path):
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    first = autostop.check(config, start)
    assert first["busy"] is False and first["stops_in_minutes"] == 3
    for minute in (1, 1.5):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "warnings") == []
    for minute in (2.2, 2.6):
        autostop.check(config, start + timedelta(minutes=minute))
    warnings = lines(tmp_path / "warnings")
    assert len(warnings) == 1 and "idle 2 min and stops in 1 min" in warnings[0]
    assert lines(tmp_path / "actions") == []
    for minute in (3.1, 4, 10):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "actions") == ["acted"]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["busy"] is False and status["idle_minutes"] == 10


def test_a_hold_keeps_it_busy_until_it_expires(config, tmp_path):
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    (tmp_path / "holds" / "alice").write_text((start + timedelta(minutes=30)).isoformat())
    for minute in range(0, 30):  # the timer runs every minute
        status = autostop.check(config, start + timedelta(minutes=minute))
        assert status["busy"] and status["reasons"] == ["held by alice until 10:30 UTC"]
    after = autostop.check(config, start + timedelta(minutes=31))
    # Last seen held at 10:29: idle since then.
    assert not after["busy"] and after["stops_in_minutes"] == pytest.approx(1, abs=0.1)
    autostop.check(config, start + timedelta(minutes=33))
    assert lines(tmp_path / "actions") == ["acted"]


def test_a_failing_check_counts_as_busy_and_never_acts(config, tmp_path):
    # A Jupyter settings file for an account that does not exist: the check cannot be done.
    (tmp_path / "jupyter" / "ghost-user.env").write_text("GPUBOX_JUPYTER_PORT=8899\n")
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    for minute in (0, 5, 60):
        status = autostop.check(config, start + timedelta(minutes=minute))
        assert status["busy"] and status["reasons"][0].startswith("checker failed, counting as busy:")
    assert lines(tmp_path / "actions") == []


def test_zero_disables(config, tmp_path):
    config["idle_minutes"] = 0
    start = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
    for minute in (0, 100, 1000):
        autostop.check(config, start + timedelta(minutes=minute))
    assert lines(tmp_path / "actions") == []
