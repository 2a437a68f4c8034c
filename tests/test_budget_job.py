"""playbooks/budget.yml, the budget job as IT's scheduler runs it, on its own moto server: Cost
Explorer's answers are seeded there (moto keeps the first answer for the same question, so no other
test may ask first)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import PROJECT
from gpubox.cloud import ownership
from test_budget import BOB, TEAM, US, described, launch, team  # noqa: F401  (team: the fixture)


def test_the_budget_playbook_stops_an_owner_over_budget_by_cost_explorer(team, tmp_path):
    """playbooks/budget.yml as IT's scheduler runs it, the spend billed by Cost Explorer (seeded on
    the moto server, grouped by the owner tag as AWS answers) with the estimate on top."""
    today = datetime.now(timezone.utc)
    if today.day == 1:
        pytest.skip("Cost Explorer has no whole day of this month yet")
    me = ownership.caller(US).owner
    mine = launch(US, "mine", me, "g4dn.xlarge")
    theirs = launch(US, "theirs", BOB, "g5.xlarge")
    groups = [{"Keys": [f"gpubox:owner${me}"], "Metrics": {"UnblendedCost": {"Amount": "61.50", "Unit": "USD"}}},
              {"Keys": [f"gpubox:owner${BOB}"], "Metrics": {"UnblendedCost": {"Amount": "300.00", "Unit": "USD"}}},
              {"Keys": ["gpubox:owner$"], "Metrics": {"UnblendedCost": {"Amount": "7.00", "Unit": "USD"}}}]
    seeded = {"results": [{"ResultsByTime": [{"TimePeriod": {"Start": f"{today:%Y-%m}-01", "End": f"{today:%Y-%m-%d}"},
                                              "Total": {}, "Groups": groups, "Estimated": True}]}]}
    request = urllib.request.Request(f"{team['AWS_ENDPOINT_URL']}/moto-api/static/ce/cost-and-usage-results",
                                     data=json.dumps(seeded).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
    policy_file = tmp_path / "team-policy.yml"
    policy_file.write_text(TEAM)
    env = {**team, "GPUBOX_POLICY_FILE": str(policy_file)}
    check = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/budget.yml", "--check"], cwd=PROJECT,
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert described(US, mine["InstanceId"])["State"]["Name"] == "running"
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/budget.yml"], cwd=PROJECT,
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{me}: $61.5" in run.stdout and f"of $50 in {today:%Y-%m}" in run.stdout and "stopped: mine (" in run.stdout and "changed=1" in run.stdout
    assert described(US, mine["InstanceId"])["State"]["Name"] in ("stopping", "stopped")
    assert described(US, theirs["InstanceId"])["State"]["Name"] == "running"  # $300 of bob's $1,000
