"""On a test host with the TensorFlow virtualenv, a notebook's Python reads S3 through the
instance role with no keys anywhere: credentials come only from an IMDSv2 stand-in that serves the
role's credentials from moto's STS, and moto (enforcing IAM policies) refuses a bucket outside the
policy. Both servers listen on the test's own address on the container network; nothing here
talks to a real metadata address or to AWS."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest

import imds
from conftest import PROJECT, VENV_BIN, run_env
from gpubox import data_access, workstation
from gpubox.cloud import data_role, iam_policy

pytestmark = pytest.mark.integration
REGION = "us-east-1"
VENV = "/opt/gpubox/venv"

# A notebook cell: only the endpoints are pointed at this test's servers (on an instance they are
# S3 and 169.254.169.254, botocore's defaults); no key is given.
NOTEBOOK = """
import json, fsspec
seen = {}
with fsspec.open("s3://team-data/churn/x.csv") as handle:
    seen["ours"] = handle.read().decode()
try:
    with fsspec.open("s3://other-bucket/churn/x.csv") as handle:
        seen["other"] = handle.read().decode()
except Exception as exc:
    seen["other"] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def tensorflow_host(baked_debian12_host, tmp_path_factory):
    """The base and tensorflow roles applied (the virtualenv with TensorFlow, s3fs and fsspec); on a
    host from the baked image (not a first run: the roles find everything in place)."""
    host = baked_debian12_host
    inventory = host.inventory(tmp_path_factory.mktemp("tf") / "hosts.yml")
    done = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/base.yml", "playbooks/tensorflow.yml",
                           "-e", json.dumps(workstation.local_extravars())], cwd=PROJECT, env=run_env(), capture_output=True,
                          text=True, timeout=2400, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return host


def test_a_notebook_reads_s3_through_the_instance_role_and_nothing_else(tensorflow_host, monkeypatch):
    host = tensorflow_host
    # The test's own address as the host sees it: the container network's gateway on this machine.
    gateway = subprocess.run(["podman", "inspect", host.name, "--format", "{{.NetworkSettings.Gateway}}"], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert gateway, "the test host has no gateway address"
    for key in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(key, "/nonexistent")
    # boto3's default session keeps the first credentials it resolved (other tests' keys): a fresh one here.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with imds.moto_enforcing_iam(gateway) as (url, admin):
        for key, value in {"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION, **admin}.items():
            monkeypatch.setenv(key, value)
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in ("team-data", "other-bucket"):
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="churn/x.csv", Body=f"{bucket},1\n".encode())
        # IT's one-time step (docs/iam.md): the boundary every data role is made under.
        boto3.client("iam", region_name=REGION).create_policy(PolicyName=iam_policy.BOUNDARY_NAME, Path=iam_policy.BOUNDARY_PATH,
                                                              PolicyDocument=json.dumps(iam_policy.boundary()))
        role = data_role.ensure("ws1", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
        # This test plays EC2, which assumes the role for the instance: the trust names the admin here.
        iam = boto3.client("iam", region_name=REGION)
        admin_arn = iam.get_user(UserName="admin")["User"]["Arn"]
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}]}))
        arn = iam.get_role(RoleName=role)["Role"]["Arn"]
        credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName="i-ws1")["Credentials"]
        with imds.serve(gateway, role, credentials) as (endpoint, log):
            run = host.exec("runuser", "-u", "admin", "--", "env", "-i", "HOME=/home/admin", "PATH=/usr/bin:/bin",
                            f"AWS_EC2_METADATA_SERVICE_ENDPOINT={endpoint}", f"AWS_ENDPOINT_URL={url}", f"AWS_DEFAULT_REGION={REGION}",
                            f"{VENV}/bin/python", "-c", NOTEBOOK)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["ours"] == "team-data,1\n"
    assert seen["other"].startswith("PermissionError"), seen["other"]
    # The credentials came through IMDSv2 (a session token first), and no file on the host holds any.
    assert log[0] == "PUT /latest/api/token 200" and f"GET {imds.CREDENTIALS_PATH}{role} 200" in log, log
    assert not any(line.endswith(" 401") for line in log), log
    assert host.exec("test", "-e", "/home/admin/.aws").returncode != 0
    assert host.exec("grep", "-rqsF", credentials["SecretAccessKey"], "/home", "/etc", "/root", VENV).returncode == 1
