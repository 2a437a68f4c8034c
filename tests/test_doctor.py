"""`doctor` (gpubox/cloud/doctor.py) on the moto server: it checks the public-address lookup
provision makes, says when a check could not run (never [ok]), shows no raw exception text, and
says "All checks passed" only when every check passed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import boto3

from conftest import PROJECT
from gpubox.cloud import doctor, iam_policy
from gpubox.cloud.aws import Check, unchecked


def runner(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "runner.py", *args], cwd=PROJECT, env=env, capture_output=True, text=True,
                          timeout=300, check=False, stdin=subprocess.DEVNULL)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_doctor_names_a_failed_public_address_lookup_and_does_not_pass(aws_env):
    env = {**aws_env, "GPUBOX_CHECKIP_URL": f"http://127.0.0.1:{closed_port()}/"}
    result = runner(env, "doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "All checks passed" not in result.stdout
    line = next(text for text in result.stdout.splitlines() if "public address" in text)
    assert line.startswith("[FAIL] public address: Could not find this machine's public address"), result.stdout
    assert "-> Pass it yourself: --allow-cidr" in result.stdout
    # moto's IAM has no policy simulator: that check could not run, and says so with how to check it.
    simulated = next(text for text in result.stdout.splitlines() if "IAM for --data" in text)
    assert simulated.startswith("[??] IAM for --data: could not check: ") and " → " in simulated
    assert "[ok] IAM for --data" not in result.stdout
    for raw in ("Traceback", "ResponseParserError:", "syntax error", "<?xml", "Internal Server Error"):
        assert raw not in result.stdout + result.stderr


def test_doctor_passes_the_lookup_when_it_answers(aws_env, checkip):
    iam = boto3.client("iam", region_name="us-east-1")  # IT's one-time step (docs/iam.md), so only moto's gaps remain
    iam.create_policy(PolicyName=iam_policy.BOUNDARY_NAME, Path=iam_policy.BOUNDARY_PATH, PolicyDocument=json.dumps(iam_policy.boundary()))
    result = runner({**aws_env, "GPUBOX_CHECKIP_URL": checkip}, "doctor")
    assert "[ok] public address: 198.51.100.7/32" in result.stdout, result.stdout + result.stderr
    assert "All checks passed" not in result.stdout  # the simulator still could not run on moto
    assert "could not run (" in result.stdout and result.returncode == 0


def test_all_checks_passed_only_when_every_check_ran_and_passed():
    passed = [Check("a", True, "fine"), Check("b", True, "fine")]
    assert doctor.report(passed) == (["[ok] a: fine", "[ok] b: fine", "", "All checks passed."], 0)
    lines, status = doctor.report([*passed, unchecked("c", "no answer", "aws x y")])
    assert lines[2] == "[??] c: could not check: no answer → aws x y" and "All checks passed." not in lines and status == 0
    lines, status = doctor.report([*passed, Check("d", False, "broken", "fix it")])
    assert "       -> fix it" in lines[2] and lines[-1].startswith("1 problem(s)") and status == 1
