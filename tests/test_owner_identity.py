"""The owner is a stable identity (gpubox/cloud/ownership.py), on moto in server mode: an assumed-role
profile without a session name gets one botocore makes up per command, and gpubox refuses to act
under it before anything is created; with a fixed session name, separate sessions are one owner."""

from __future__ import annotations

import io
import json

import boto3
import pytest

from gpubox.cloud import ec2, ownership
from gpubox.errors import GpuboxError
from test_team_aws import REGION, Team, client, live, moto_images, request, team  # noqa: F401  (fixtures)

ROLE = "DataScientist"


def assume(team: Team, session: str) -> None:
    """Log in as a new assumed-role session of the shared DataScientist role, as a profile with
    role_arn (+ role_session_name) does on each command."""
    team.env.pop("AWS_SESSION_TOKEN", None)
    team.monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    team.be("sso-admin")  # an IAM user allowed to assume the role (its HOME: the one laptop)
    iam = boto3.client("iam", region_name=REGION)
    try:
        arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                          "Action": "sts:AssumeRole"}]}
        arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName=session)["Credentials"]
    for name, key in (("AWS_ACCESS_KEY_ID", "AccessKeyId"), ("AWS_SECRET_ACCESS_KEY", "SecretAccessKey"),
                      ("AWS_SESSION_TOKEN", "SessionToken")):
        team.env[name] = credentials[key]
        team.monkeypatch.setenv(name, credentials[key])
    team.monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def test_generated_session_names_are_recognised_and_nothing_else():
    assert ownership.generated_session("arn:aws:sts::1:assumed-role/DataScientist/botocore-session-1796600149") == "botocore-session-1796600149"
    for arn in ("arn:aws:sts::1:assumed-role/DataScientist/alice", "arn:aws:sts::1:assumed-role/R/botocore-session-12x",
                "arn:aws:sts::1:assumed-role/R/my-botocore-session-12", "arn:aws:iam::1:user/botocore-session-1"):
        assert ownership.generated_session(arn) == "", arn


def test_provision_under_a_botocore_session_exits_2_before_anything_is_created(team):
    assume(team, "botocore-session-123")
    with pytest.raises(GpuboxError) as refused:
        ownership.caller(REGION)
    assert refused.value.exit_code == 2 and "botocore-session-123" in refused.value.message
    assert "role_session_name = <you>" in refused.value.fix

    result = team.runner("provision", "--name", "sess", "--allow-cidr", "127.0.0.1/32", "--key", str(team.key()))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "botocore-session-123" in result.stderr and "role_session_name" in result.stderr and "Traceback" not in result.stderr
    assert live("sess") == []
    assert client().describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["gpubox-sess"]}])["KeyPairs"] == []
    assert client().describe_security_groups(Filters=[{"Name": "group-name", "Values": ["gpubox-sess"]}])["SecurityGroups"] == []

    doctor = team.runner("doctor")
    line = next(text for text in doctor.stdout.splitlines() if "owner identity" in text)
    assert line.startswith("[FAIL] owner identity:") and "botocore-session-123" in line and "role_session_name" in doctor.stdout


def test_a_fixed_session_name_is_one_owner_across_sessions_and_stop_works(team):
    assume(team, "alice")
    first = ownership.caller(REGION)
    ec2.provision(request(team, "alice-box"), io.StringIO())
    [instance] = live("alice-box")
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags["gpubox:owner"] == first.owner and first.owner.endswith(":alice")

    assume(team, "alice")  # a new session (new keys) minutes later, the same name
    later = ownership.caller(REGION)
    assert later.owner == first.owner and later.arn.endswith(f"assumed-role/{ROLE}/alice")
    stopped = team.runner("stop", "--name", "alice-box")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert client().describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"

    # Another person in the same role is another owner.
    assume(team, "bob")
    other = ownership.caller(REGION)
    assert other.owner != first.owner
    refused = team.runner("start", "--name", "alice-box")
    assert refused.returncode != 0 and "belongs to" in refused.stderr
