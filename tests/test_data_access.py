"""--data s3://BUCKET[/PREFIX][:rw]: what is refused, and the exact policy document for what is not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gpubox import data_access
from gpubox.data_access import Grant
from gpubox.errors import GpuboxError

READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-data",
         "Condition": {"StringLike": {"s3:prefix": ["projects/churn", "projects/churn/*"]}}},
        {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-data/projects/churn/*"},
    ],
}

READ_WRITE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::scratch.team",
         "Condition": {"StringLike": {"s3:prefix": ["alice", "alice/*"]}}},
        {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::scratch.team/alice/*"},
        {"Sid": "Write1", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::scratch.team/alice/*"},
    ],
}

TWO_BUCKETS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-data"},
        {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-data/*"},
        {"Sid": "List2", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::results-2026",
         "Condition": {"StringLike": {"s3:prefix": ["runs/a-b", "runs/a-b/*"]}}},
        {"Sid": "Read2", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::results-2026/runs/a-b/*"},
        {"Sid": "Write2", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": "arn:aws:s3:::results-2026/runs/a-b/*"},
    ],
}


def test_read_only_policy_is_list_on_the_prefix_and_get_below_it():
    grants = data_access.parse_all(["s3://team-data/projects/churn/"])
    assert grants == (Grant("team-data", "projects/churn", write=False),)
    assert data_access.policy(grants) == READ_ONLY


def test_read_write_policy_adds_put_and_delete_only():
    grants = data_access.parse_all(["s3://scratch.team/alice:rw"])
    assert data_access.policy(grants) == READ_WRITE


def test_two_buckets_each_get_their_own_statements():
    grants = data_access.parse_all(["s3://team-data", "s3://results-2026/runs/a-b:rw"])
    assert data_access.policy(grants) == TWO_BUCKETS


def test_explicit_read_only_and_repeats_are_one_grant():
    grants = data_access.parse_all(["s3://team-data/x:ro", "s3://team-data/x"])
    assert grants == (Grant("team-data", "x"),)


def test_no_grants_no_statements():
    assert data_access.parse_all(None) == ()
    assert data_access.policy(()) == {"Version": "2012-10-17", "Statement": []}


def test_statement_lines_name_every_action_and_resource():
    lines = data_access.statement_lines(data_access.parse_all(["s3://scratch.team/alice:rw"]))
    assert lines == [
        "Allow s3:ListBucket on arn:aws:s3:::scratch.team where s3:prefix is alice or alice/*",
        "Allow s3:GetObject on arn:aws:s3:::scratch.team/alice/*",
        "Allow s3:PutObject, s3:DeleteObject on arn:aws:s3:::scratch.team/alice/*",
    ]


@pytest.mark.parametrize("policy", [READ_ONLY, READ_WRITE, TWO_BUCKETS])
def test_grants_read_back_from_the_policy(policy):
    grants = data_access.grants_of(policy)
    assert data_access.policy(grants) == policy


def test_grants_of_skips_statements_it_did_not_write():
    foreign = {"Statement": [{"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"},
                             {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::x/*"]}]}
    assert data_access.grants_of(foreign) == []


@pytest.mark.parametrize(("value", "why"), [
    ("team-data", "not an S3 URL"),
    ("https://team-data.s3.amazonaws.com/x", "not an S3 URL"),
    ("s3://", "no bucket name"),
    ("s3:///x", "no bucket name"),
    ("s3://ab", "3 to 63"),
    ("s3://" + "a" * 64, "3 to 63"),
    ("s3://Team-Data", "lowercase letters"),
    ("s3://team_data", "lowercase letters"),
    ("s3://-team", "lowercase letters"),
    ("s3://team-", "lowercase letters"),
    ("s3://team..data", "two periods"),
    ("s3://192.168.5.4", "IP address"),
    ("s3://xn--bucket", "reserves"),
    ("s3://sthree-data", "reserves"),
    ("s3://data-s3alias", "reserves"),
    ("s3://data--x-s3", "reserves"),
    ("s3://team-data/*", "wildcards"),
    ("s3://team-*", "wildcards"),
    ("s3://team-data/a*b:rw", "wildcards"),
    ("*", "wildcards"),
    ("s3://team-data/a?", "wildcards"),
    ("s3://team-data/${aws:username}", "wildcards"),
    ("s3://team-data/x:wr", "':' is only allowed"),
    ("s3://team-data:8080/x", "':' is only allowed"),
    ("s3://team-data/a//b", "empty path segment"),
    ("s3://team-data//a", "empty path segment"),
    ("s3://team-data/a/../b", "'..'"),
    ("s3://team-data/a b", "spaces"),
    ("s3://team-data/a\nb", "control characters"),
])
def test_bad_values_are_refused_with_the_value_and_the_fix(value, why):
    with pytest.raises(GpuboxError) as refused:
        data_access.parse_all(["s3://fine-bucket", value])
    assert refused.value.message.startswith(f"--data {value}: ")
    assert why in refused.value.message
    assert refused.value.fix and "--data s3://" in refused.value.fix
    assert refused.value.exit_code == 2


def test_the_same_place_read_only_and_read_write_is_refused():
    with pytest.raises(GpuboxError) as refused:
        data_access.parse_all(["s3://team-data/x", "s3://team-data/x/:rw"])
    assert "given twice" in refused.value.message and "--data s3://team-data/x:rw" in refused.value.fix


def test_a_policy_larger_than_iam_allows_is_refused():
    many = [f"s3://team-data/project-{number:04d}/with/a/long/enough/prefix" for number in range(60)]
    with pytest.raises(GpuboxError) as refused:
        data_access.parse_all(many)
    assert "larger than IAM allows" in refused.value.message


@pytest.mark.parametrize("bucket", ["abc", "a.b-c", "my-team-data", "a" * 63, "192.168.5.4x"])
def test_names_s3_accepts(bucket):
    assert data_access.bucket_problem(bucket) == ""


def test_dry_run_lists_the_role_and_every_statement(home, monkeypatch):
    from gpubox.commands import provision  # noqa: PLC0415

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    cloud = provision.Cloud(dry_run=True, data=["s3://team-data/churn", "s3://scratch.team/alice:rw"])
    plan = provision.plan_ec2(provision.Target(name="alice"), cloud)
    assert plan.grants == (Grant("team-data", "churn"), Grant("scratch.team", "alice", write=True))
    assert plan.lines[4:] == [
        "IAM role /gpubox/gpubox-alice-eu-west-1 (assumed by EC2 only) with one inline policy, gpubox-data-access, "
        "replacing any earlier one",
        "gpubox-data-access: Allow s3:ListBucket on arn:aws:s3:::team-data where s3:prefix is churn or churn/*",
        "gpubox-data-access: Allow s3:GetObject on arn:aws:s3:::team-data/churn/*",
        "gpubox-data-access: Allow s3:ListBucket on arn:aws:s3:::scratch.team where s3:prefix is alice or alice/*",
        "gpubox-data-access: Allow s3:GetObject on arn:aws:s3:::scratch.team/alice/*",
        "gpubox-data-access: Allow s3:PutObject, s3:DeleteObject on arn:aws:s3:::scratch.team/alice/*",
        "instance profile gpubox-alice-eu-west-1, attached to the instance (instance role credentials through IMDSv2 only; "
        "no keys on the host)",
    ]
    assert len(provision.plan_ec2(provision.Target(name="alice"), provision.Cloud(dry_run=True)).lines) == 4


def test_bad_data_is_refused_by_the_command_before_anything_is_made(home):
    from conftest import PROJECT, run_env  # noqa: PLC0415

    for args in (["--name", "a", "--allow-cidr", "127.0.0.1/32", "--data", "s3://team-data/x", "--data", "s3://Bad_Bucket"],
                 ["--local", "--name", "a", "--data", "s3://team-data"]):
        result = subprocess.run([sys.executable, "runner.py", "provision", *args], cwd=PROJECT, env=run_env(home),
                                capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.lstrip().startswith("error: --data ") and "\n  -> " in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""
    assert not (home / ".ssh").exists() and not (home / ".config").exists()
