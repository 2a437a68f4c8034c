"""The plan page as the request (gpubox/plan.py): requester, project and cost centre, date, version,
the team policy's verdict, the worst case with the budget cap, region prices and the approval block,
read from the page Chromium renders; a screenshot is kept in /tmp/gpubox-artifacts/."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import boto3

from browser import screenshot, shown_text
from conftest import PROJECT, run_env
from gpubox.cloud import policy
from test_plan import NO_AWS

ARTIFACTS = Path("/tmp/gpubox-artifacts")
TEAM = """\
version: 1
contact: IT cloud team <it-cloud@example.com>
instance_types: [g4dn.xlarge, g5.xlarge]
regions: [us-east-1, eu-west-1]
max_hourly_usd: 1.5
required_tags:
  cost-center: []
  project: []
budget:
  monthly_usd: 300
  warn_at_percent: [50, 80]
"""


def plan(home: Path, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(PROJECT / "runner.py"), "plan", "--name", "alice", *options],
                            cwd=home, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def offline_env(home: Path, policy_file: Path) -> dict[str, str]:
    env = run_env(home)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        env.pop(key, None)
    return {**env, **NO_AWS, policy.FILE_VARIABLE: str(policy_file)}


def profile(home: Path) -> None:
    (home / ".config" / "gpubox").mkdir(parents=True, exist_ok=True)
    (home / ".config" / "gpubox" / "config.toml").write_text('requester_name = "Alice Martin"\nrequester_email = "alice@example.com"\n')


def test_the_plan_page_is_the_request(home, tmp_path):
    policy_file = tmp_path / "team-policy.yml"
    policy_file.write_text(TEAM)
    profile(home)
    page = tmp_path / "plan.html"
    printed = plan(home, offline_env(home, policy_file), "--instance-type", "g5.xlarge", "--region", "eu-west-1",
                   "--tag", "cost-center=CC-1234", "--tag", "project=churn", "--output", str(page)).stdout
    assert "Team policy: passes every rule" in printed
    shown = shown_text(page, tmp_path / "chromium")
    today = datetime.now(timezone.utc).date()
    version = re.search(r'^version = "([^"]+)"', (PROJECT / "pyproject.toml").read_text(), re.M).group(1)
    reference = re.search(r"Reference (plan-alice-\d{8}-[0-9a-f]{8})", shown).group(1)
    # By hand: g5.xlarge $1.006/h in us-east-1; in eu-west-1 x 1.116 = $1.1227/h. 8 h of use + 60 idle minutes = 9 h a day,
    # x 30 = 270 h: 270 x 1.1227 = 303.13, + disk 100 GB x 0.08 x 1.116 = 8.93 -> 312.06; worst (no uptime cap)
    # 720 x 1.1227 = 808.34 + 8.93 = 817.27, capped by the $300 budget. us-east-1: 271.62 + 8 = 279.62; 724.32 + 8 = 732.32.
    for text in ("Requester Alice Martin <alice@example.com>", "AWS identity unknown:", "Project churn", "Cost centre CC-1234",
                 f"Date {today.isoformat()}", f"gpubox version {version}",
                 f"python runner.py provision --name alice --region eu-west-1 --instance-type g5.xlarge --disk-gb 100 "
                 f"--tag cost-center=CC-1234 --tag project=churn --plan-ref {reference}",
                 f"Policy file {policy_file}; owned by IT cloud team <it-cloud@example.com>",
                 "Verdict passes every rule (instance types, regions, hourly price, required tags): provision will accept it",
                 "$1.123 per hour (on-demand, g5.xlarge)",
                 "Worst case per month $817.27",
                 "Worst case with the budget $300.00: the budget job stops the requester's workstations at $300.00 a month",
                 "warnings at 50 %, 80 %",
                 "us-east-1 $1.006 per hour; expected $279.62, worst case $732.32 a month",
                 "eu-west-1 $1.123 per hour; expected $312.06, worst case $817.27 a month (this request)",
                 "Approval Manager name ______", "IT name ______", "Decision [ ] approved",
                 f"provision with --plan-ref {reference} and the workstation carries it as the tag gpubox:plan",
                 "gpubox:plan=this page's reference"):
        assert text in shown, f"{text!r} not shown in: {shown}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = screenshot(page, tmp_path / "chromium", tmp_path / "plan-request.png")
    assert png.stat().st_size > 20_000
    shutil.copy(png, ARTIFACTS / "plan-request.png")


def test_the_page_names_the_rules_a_request_breaks_and_who_grants_exceptions(home, tmp_path):
    policy_file = tmp_path / "team-policy.yml"
    policy_file.write_text(TEAM)
    page = tmp_path / "plan.md"
    printed = plan(home, offline_env(home, policy_file), "--instance-type", "p4d.24xlarge", "--region", "ap-south-1",
                   "--tag", "project=churn", "--format", "md", "--output", str(page)).stdout
    assert "Team policy: BREAKS 4 rule(s)" in printed
    text = page.read_text()
    assert ("| **Verdict** | BREAKS 4 rule(s): provision will refuse it unless IT cloud team <it-cloud@example.com> "
            "grants an exception |") in text
    for rule in ("instance_types", "regions", "max_hourly_usd", "required_tags.cost-center"):
        assert f"| **Rule {rule}** |" in text
    assert "| **Cost centre** | MISSING: the team policy requires it (pass --tag cost-center=VALUE) |" in text
    assert "| **Requester** | name not set <e-mail not set> |" in text and "config.toml" in text
    # The region prices list the policy's regions and the one asked for.
    assert [line.split("|")[1].strip(" *") for line in text.splitlines() if re.match(r"\| \*\*(us|eu|ap)-", line)] == [
        "us-east-1", "eu-west-1", "ap-south-1"]


def test_with_aws_the_requester_is_the_identity_and_the_policy_comes_from_ssm(aws_env, home, tmp_path):
    boto3.client("ssm", region_name="us-east-1").put_parameter(Name=policy.PARAMETER, Value=TEAM, Type="String", Overwrite=True)
    try:
        page = tmp_path / "plan.md"
        plan(home, aws_env, "--tag", "cost-center=CC-1", "--tag", "project=p", "--format", "md", "--output", str(page))
        text = page.read_text()
        caller = boto3.client("sts", region_name="us-east-1").get_caller_identity()
        assert f"| **AWS identity** | {caller['Arn']} (owner {caller['UserId']}) |" in text
        assert f"| **Policy** | SSM parameter {policy.PARAMETER} in us-east-1; owned by IT cloud team" in text
        assert "AWS was asked only who the requester is and for the team policy." in text
    finally:
        boto3.client("ssm", region_name="us-east-1").delete_parameter(Name=policy.PARAMETER)
