"""JupyterLab's gpubox notices, server half (roles/jupyter/files/gpubox_notices.py), fed by the real
autostop checker: the idle stop is announced within the warning minutes of a fresh verdict, once
per idle period, never from a stale one; the budget warning while there is one; and the browser's
button places a hold the checker counts, as `runner.py hold` would. (The whole path, in a real
browser through a real tunnel to a workstation, is in molecule/jupyter/tests/test_jupyter.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from conftest import PROJECT
from test_autostop_checker import autostop, checker_config


spec = importlib.util.spec_from_file_location("gpubox_notices", PROJECT / "roles" / "jupyter" / "files" / "gpubox_notices.py")
notices_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notices_module)
START = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def config(tmp_path):
    settings = checker_config(tmp_path)
    (tmp_path / "holds").chmod(0o1777)
    return settings | {"idle_minutes": 30, "warn_minutes": 5}


def shown_after(config: dict, minutes: float, read_at: float | None = None) -> list[dict]:
    """What the browser is told after the checker ran at START + minutes (read then, or later)."""
    autostop.check(config, START + timedelta(minutes=minutes))
    status = notices_module.read_status(config["status_file"])
    return notices_module.notices(status, START + timedelta(minutes=minutes if read_at is None else read_at))


def test_the_idle_stop_is_announced_in_the_warning_minutes_once_per_idle_period(config):
    assert shown_after(config, 0) == [] and shown_after(config, 24) == []
    [first] = shown_after(config, 25.5)
    assert first["type"] == "warning" and first["hold"] is True
    assert "idle 26 min, this workstation stops in 4 min" in first["message"]
    [later] = shown_after(config, 28)
    assert later["id"] == first["id"] and "stops in 2 min" in later["message"]
    [last] = shown_after(config, 29.5)
    assert "stops now" in last["message"]
    assert len(last["message"]) <= 140  # JupyterLab's pop-up cuts a longer text
    # Told as of when the page asks, between two checks.
    [between] = shown_after(config, 26, read_at=27.5)
    assert "idle 28 min, this workstation stops in 2 min" in between["message"]
    # A verdict from before the checker stopped (a timer off, a host just up) is not news.
    assert shown_after(config, 28, read_at=28 + 6) == []


def test_a_checker_that_runs_less_often_is_still_news_between_its_runs(config):
    """autostop_interval 10min: the page judges a verdict's age by the checker's own pace."""
    config |= {"idle_minutes": 60, "warn_minutes": 30}
    for minute in (0, 10, 20, 30):
        shown_after(config, minute)
    status = notices_module.read_status(config["status_file"])
    assert status["check_interval_seconds"] == 600
    [notice] = notices_module.notices(status, START + timedelta(minutes=38))
    assert "stops in 22 min" in notice["message"]
    assert notices_module.notices(status, START + timedelta(minutes=30 + 26)) == []


def test_a_busy_host_has_no_notice_and_the_next_idle_period_gets_its_own(config, tmp_path):
    assert shown_after(config, 0) == []
    [first] = shown_after(config, 26)
    hold = tmp_path / "holds" / "someone"
    hold.write_text("")
    assert shown_after(config, 27) == []
    hold.unlink()
    assert shown_after(config, 28) == []
    [again] = shown_after(config, 28 + 26)
    assert again["id"] != first["id"]


def test_autostop_off_is_never_announced(config):
    config["idle_minutes"] = 0
    assert shown_after(config, 600) == []


def test_the_budget_warning_is_shown_while_there_is_one(config, monkeypatch):
    monkeypatch.setattr(autostop, "budget_notice", lambda _url, timeout=2.0: "alice: $182 of $200 this month (91%)")
    [budget] = shown_after(config, 1)
    assert budget["hold"] is False and "$182 of $200" in budget["message"] and "runner.py cost" in budget["message"]
    monkeypatch.setattr(autostop, "budget_notice", lambda _url, timeout=2.0: "")
    assert shown_after(config, 2) == []


@pytest.mark.parametrize("planted", ["[1, 2]", "{\"checked_at\": \"soon\", \"stops_in_minutes\": 1, \"warn_minutes\": 5,"
                                     " \"idle_limit\": 30, \"idle_minutes\": 29}", "not json", "{\"stops_in_minutes\": true,"
                                     " \"warn_minutes\": 5, \"idle_limit\": 30, \"idle_minutes\": 1}"])
def test_a_status_that_is_not_the_checkers_is_no_notice(tmp_path, planted):
    path = tmp_path / "status.json"
    path.write_text(planted)
    assert notices_module.notices(notices_module.read_status(str(path)), START) == []
    assert notices_module.read_status(str(tmp_path / "absent.json")) is None


def test_the_browsers_hold_is_the_users_own_and_the_checker_counts_it(config, tmp_path):
    holds = tmp_path / "holds"
    older = holds / "alice.old"
    older.write_text("2026-12-07T10:10:00Z\n")
    someone_else = holds / "alice.bob"
    someone_else.write_text("")
    os.chown(someone_else, 65534, 65534)
    until = notices_module.place_hold(1, START, str(holds))
    assert until == "2026-12-07T11:00:00Z"
    placed = [path for path in holds.iterdir() if path.stat().st_uid == os.getuid()]
    assert len(placed) == 1 and placed[0].read_text() == until + "\n" and not older.exists()
    assert someone_else.exists()  # only the caller's own older holds go
    active = autostop.holds(str(holds), START + timedelta(minutes=5), [], shadow=str(tmp_path / "no-shadow"))
    me = autostop.owner_name(os.getuid())
    assert (me, datetime(2026, 12, 7, 11, 0, tzinfo=timezone.utc)) in active
    for hours in (0, 1e-300, 0.2, -1, 25, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            notices_module.place_hold(hours, START, str(holds))


def test_the_browsers_hold_never_cuts_short_a_longer_one(tmp_path):
    """A page a minute late, clicked after `runner.py hold --hours 8` (or a hold until released)."""
    holds = tmp_path / "holds"
    holds.mkdir()
    longer = holds / "alice.eight"
    longer.write_text("2026-12-07T18:00:00Z\n")
    assert notices_module.place_hold(1, START, str(holds)) == "2026-12-07T18:00:00Z"
    assert [path.name for path in holds.iterdir()] == ["alice.eight"]
    longer.write_text("")
    assert notices_module.place_hold(1, START, str(holds)) == ""
    longer.write_text("2026-12-07T10:30:00Z\n")  # shorter: replaced
    assert notices_module.place_hold(1, START, str(holds)) == "2026-12-07T11:00:00Z"
    assert not longer.exists() and len(list(holds.iterdir())) == 1


def test_the_labextension_is_one_jupyterlab_loads():
    """The package JupyterLab's server reads (jupyterlab._build) names a script that registers the
    container under the package's name with the two functions JupyterLab's loader calls."""
    directory = PROJECT / "roles" / "jupyter" / "files" / "labextension"
    package = json.loads((directory / "package.json").read_text())
    build = package["jupyterlab"]["_build"]
    script = (directory / build["load"]).read_text()
    assert f"const NAME = '{package['name']}';" in script and "containers[NAME] = {" in script
    assert f"module !== '{build['extension']}'" in script
