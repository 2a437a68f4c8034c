"""provision --data against IAM and EC2 played by moto in server mode on 127.0.0.1: the role, its
exact policy, the instance profile and its association, replaced by a later --data, shown by
status, checked by doctor, and deleted by destroy (only ours). Nothing here connects to an
address moto hands out."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError

import imds
from conftest import PROJECT
from gpubox import ansible, contract, data_access
from gpubox.cloud import aws, data_role, iam_policy, launch
from gpubox.commands import lifecycle, provision
from gpubox.errors import GpuboxError

REGION = "us-east-1"
OWNER_TAGS = {contract.TAG_MANAGED: "true", contract.TAG_OWNER: "scientist"}
BOUNDARY = iam_policy.boundary_arn("123456789012")  # moto's account

READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-data",
     "Condition": {"StringLike": {"s3:prefix": ["churn", "churn/*"]}}},
    {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-data/churn/*"},
]}
READ_WRITE = {"Version": "2012-10-17", "Statement": [
    {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-scratch",
     "Condition": {"StringLike": {"s3:prefix": ["alice", "alice/*"]}}},
    {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-scratch/alice/*"},
    {"Sid": "Write1", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::team-scratch/alice/*"},
]}
TWO_BUCKETS = {"Version": "2012-10-17", "Statement": [
    {"Sid": "List1", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-data"},
    {"Sid": "Read1", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-data/*"},
    {"Sid": "List2", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::team-scratch",
     "Condition": {"StringLike": {"s3:prefix": ["alice", "alice/*"]}}},
    {"Sid": "Read2", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::team-scratch/alice/*"},
    {"Sid": "Write2", "Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "arn:aws:s3:::team-scratch/alice/*"},
]}


def iam():
    return boto3.client("iam", region_name=REGION)


def create_boundary() -> None:
    """IT's one-time step (docs/iam.md), with the generated document."""
    try:
        iam().create_policy(PolicyName=iam_policy.BOUNDARY_NAME, Path=iam_policy.BOUNDARY_PATH,
                            PolicyDocument=json.dumps(iam_policy.boundary()))
    except iam().exceptions.EntityAlreadyExistsException:
        pass


@pytest.fixture
def aws_env(aws_env):
    """moto, with IT's permissions boundary in the account."""
    create_boundary()
    return aws_env


@pytest.fixture
def no_boundary(aws_env):
    """The account before IT's one-time step (moto's state is shared by the module: put back after)."""
    iam().delete_policy(PolicyArn=BOUNDARY)
    yield
    create_boundary()


def ec2():
    return boto3.client("ec2", region_name=REGION)


def tags_of(resource: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def the_policy(role: str) -> dict:
    """The role's only inline policy, as IAM stores it."""
    assert iam().list_role_policies(RoleName=role)["PolicyNames"] == [data_role.POLICY_NAME]
    assert iam().list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    document = iam().get_role_policy(RoleName=role, PolicyName=data_role.POLICY_NAME)["PolicyDocument"]
    return document if isinstance(document, dict) else json.loads(document)


@pytest.mark.parametrize(("name", "data", "expected"), [
    ("ro", ["s3://team-data/churn"], READ_ONLY),
    ("rw", ["s3://team-scratch/alice:rw"], READ_WRITE),
    ("two", ["s3://team-data", "s3://team-scratch/alice/:rw"], TWO_BUCKETS),
])
def test_role_policy_and_profile_hold_exactly_the_grants(aws_env, name, data, expected):
    profile = data_role.ensure(name, REGION, "scientist", data_access.parse_all(data))
    role_name = f"gpubox-{name}-{REGION}"
    assert profile == role_name
    role = iam().get_role(RoleName=role_name)["Role"]
    assert role["Path"] == "/gpubox/" and tags_of(role) == {**OWNER_TAGS, contract.TAG_NAME: name}
    assert role["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy", "PermissionsBoundaryArn": BOUNDARY}
    trust = role["AssumeRolePolicyDocument"]
    trust = trust if isinstance(trust, dict) else json.loads(trust)
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    assert the_policy(role_name) == expected
    held = iam().get_instance_profile(InstanceProfileName=role_name)["InstanceProfile"]
    assert [item["RoleName"] for item in held["Roles"]] == [role_name]
    assert held["Path"] == "/gpubox/" and tags_of(held) == {**OWNER_TAGS, contract.TAG_NAME: name}


def test_a_later_data_replaces_the_statements(aws_env):
    data_role.ensure("again", REGION, "scientist", data_access.parse_all(["s3://team-scratch/alice:rw"]))
    data_role.ensure("again", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
    assert the_policy(f"gpubox-again-{REGION}") == READ_ONLY
    assert data_role.grants(REGION, "again") == [data_access.Grant("team-data", "churn")]


def test_a_role_an_older_gpubox_made_without_the_boundary_gets_it(aws_env):
    name = f"gpubox-older-{REGION}"
    iam().create_role(RoleName=name, Path="/gpubox/", AssumeRolePolicyDocument=json.dumps(data_role.TRUST),
                      Tags=[{"Key": key, "Value": value} for key, value in {**OWNER_TAGS, contract.TAG_NAME: "older"}.items()])
    assert "PermissionsBoundary" not in iam().get_role(RoleName=name)["Role"]
    data_role.ensure("older", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
    assert iam().get_role(RoleName=name)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == BOUNDARY
    assert the_policy(name) == READ_ONLY


def test_without_the_boundary_nothing_is_created_and_the_fix_is_it_s_one_time_step(aws_env, no_boundary):
    with pytest.raises(GpuboxError) as refused:
        data_role.ensure("early", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
    assert f"The permissions boundary {BOUNDARY} does not exist" in refused.value.message
    assert "aws iam create-policy --path /gpubox/ --policy-name gpubox-data-role-boundary" in refused.value.fix
    assert "docs/iam/data-role-boundary.json" in refused.value.fix
    assert f"gpubox-early-{REGION}" not in {role["RoleName"] for role in iam().list_roles()["Roles"]}
    check = data_role.boundary_doctor(REGION)
    assert not check.ok and "does not exist" in check.detail and "docs/iam.md" in check.fix


def test_doctor_finds_the_boundary(aws_env):
    check = data_role.boundary_doctor(REGION)
    assert check.ok and BOUNDARY in check.detail


def test_a_role_of_our_name_that_is_not_ours_is_refused_and_survives(aws_env):
    name = f"gpubox-taken-{REGION}"
    iam().create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(data_role.TRUST))
    with pytest.raises(GpuboxError) as refused:
        data_role.ensure("taken", REGION, "scientist", data_access.parse_all(["s3://team-data"]))
    assert f"An IAM role named {name} exists that gpubox did not create" in refused.value.message
    assert "--name" in refused.value.fix
    assert iam().list_role_policies(RoleName=name)["PolicyNames"] == []
    assert data_role.destroy_listing(REGION, "taken") == {}
    data_role.delete(REGION, "taken")
    assert iam().get_role(RoleName=name)["Role"]["RoleName"] == name
    assert data_role.status_line(REGION, "taken", "i-0") == "data access: none (no --data given)"


def test_our_role_of_another_owner_is_refused_and_left_as_it_is(aws_env):
    data_role.ensure("shared", REGION, "arn:aws:iam::123456789012:user/alice", data_access.parse_all(["s3://team-data/churn"]))
    with pytest.raises(GpuboxError) as refused:
        data_role.ensure("shared", REGION, "arn:aws:iam::123456789012:user/bob", data_access.parse_all(["s3://team-scratch:rw"]))
    assert "belongs to arn:aws:iam::123456789012:user/alice, not to you (arn:aws:iam::123456789012:user/bob)" in refused.value.message
    assert the_policy(f"gpubox-shared-{REGION}") == READ_ONLY
    assert data_role.tagged_owners(REGION, "shared") == [("IAM role", "arn:aws:iam::123456789012:user/alice"),
                                                         ("IAM instance profile", "arn:aws:iam::123456789012:user/alice")]


def test_destroy_refuses_a_data_role_of_another_owner(aws_env, home):
    # moto's caller is its default user; the role says someone else made it.
    data_role.ensure("theirs", REGION, "arn:aws:iam::123456789012:user/alice", data_access.parse_all(["s3://team-data/churn"]))
    with pytest.raises(GpuboxError) as refused:
        lifecycle.plan_destroy("theirs", REGION)
    assert "its IAM role belongs to arn:aws:iam::123456789012:user/alice" in refused.value.message
    assert iam().get_role(RoleName=f"gpubox-theirs-{REGION}")["Role"]
    plan = lifecycle.plan_destroy("theirs", REGION, any_owner=True)
    assert plan.resources["IAM role"] == [f"gpubox-theirs-{REGION} (and its data-access policy)"]


def test_destroy_deletes_only_our_role_and_profile(aws_env):
    data_role.ensure("doomed", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
    data_role.ensure("kept", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
    bystander = iam().create_role(RoleName="someone-elses-role", AssumeRolePolicyDocument=json.dumps(data_role.TRUST))["Role"]
    iam().create_instance_profile(InstanceProfileName="someone-elses-profile")
    # A managed policy someone attached to our role is detached, not deleted.
    managed = iam().create_policy(PolicyName="extra", PolicyDocument=json.dumps(READ_ONLY))["Policy"]["Arn"]
    iam().attach_role_policy(RoleName=f"gpubox-doomed-{REGION}", PolicyArn=managed)
    assert data_role.destroy_listing(REGION, "doomed") == {
        "IAM role": [f"gpubox-doomed-{REGION} (and its data-access policy)"], "instance profile": [f"gpubox-doomed-{REGION}"]}
    data_role.delete(REGION, "doomed")
    roles = {role["RoleName"] for role in iam().list_roles()["Roles"]}
    profiles = {profile["InstanceProfileName"] for profile in iam().list_instance_profiles()["InstanceProfiles"]}
    assert f"gpubox-doomed-{REGION}" not in roles and f"gpubox-doomed-{REGION}" not in profiles
    assert {bystander["RoleName"], f"gpubox-kept-{REGION}"} <= roles
    assert {"someone-elses-profile", f"gpubox-kept-{REGION}"} <= profiles
    assert iam().get_policy(PolicyArn=managed)["Policy"]["Arn"] == managed
    assert data_role.destroy_listing(REGION, "doomed") == {}


def test_status_line_says_what_the_workstation_may_read_and_whether_it_is_attached(aws_env):
    image = ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2().run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    assert data_role.status_line(REGION, "shown", instance) == "data access: none (no --data given)"
    profile = data_role.ensure("shown", REGION, "scientist", data_access.parse_all(["s3://team-data", "s3://team-scratch/a:rw"]))
    shown = "data access: s3://team-data (read-only), s3://team-scratch/a (read-write)"
    assert data_role.status_line(REGION, "shown", instance) == f"{shown} (instance profile {profile} is NOT attached)"
    arn = iam().get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Arn"]
    ec2().associate_iam_instance_profile(IamInstanceProfile={"Arn": arn}, InstanceId=instance)
    assert data_role.status_line(REGION, "shown", instance) == shown


def test_doctor_says_when_it_cannot_simulate(aws_env):
    result = subprocess.run([sys.executable, "runner.py", "doctor"], cwd=PROJECT, env=aws_env, capture_output=True, text=True,
                            timeout=120, check=False, stdin=subprocess.DEVNULL)
    line = next(text for text in result.stdout.splitlines() if "IAM for --data" in text)
    assert line.startswith("[??] IAM for --data: could not check: IAM's policy simulator did not answer") and "iam:PassRole" in line
    assert f"[ok] boundary for --data: {BOUNDARY} exists" in result.stdout
    assert "[ok] owner identity: AKIAIOSFODNN7EXAMPLE (arn:aws:sts::123456789012:user/moto)" in result.stdout


class FakeIam:
    """simulate_principal_policy as IAM answers it, allowing only `allowed`."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, list[str]]] = []

    def get_caller_identity(self) -> dict:
        return {"Arn": "arn:aws:sts::123456789012:assumed-role/DataScientist/alice"}

    def simulate_principal_policy(self, PolicySourceArn: str, ActionNames: list[str], ResourceArns: list[str]) -> dict:  # noqa: N803
        self.asked.append((PolicySourceArn, ResourceArns))
        return {"EvaluationResults": [{"EvalActionName": action, "EvalDecision": "allowed" if action in self.allowed else "implicitDeny"}
                                      for action in ActionNames]}


def test_doctor_names_every_missing_action_and_the_fix(monkeypatch):
    everything = set(data_role.ROLE_ACTIONS + data_role.PROFILE_ACTIONS + data_role.EC2_ACTIONS)
    fake = FakeIam(everything - {"iam:PassRole", "iam:CreateInstanceProfile"})
    monkeypatch.setattr(aws, "client", lambda service, region: fake)
    check = data_role.doctor("eu-west-1")
    assert not check.ok and check.detail.startswith("not allowed: iam:PassRole, iam:CreateInstanceProfile")
    assert "arn:aws:iam::123456789012:role/gpubox/*" in check.fix and "iam:PassedToService ec2.amazonaws.com" in check.fix
    assert fake.asked[0] == ("arn:aws:iam::123456789012:role/DataScientist",
                             ["arn:aws:iam::123456789012:role/gpubox/gpubox-example-eu-west-1"])
    fake.allowed = everything
    assert data_role.doctor("eu-west-1").ok


# The whole provision path: gpubox/cloud/launch.py (boto3) launches with the profile or associates it
# later; the configuration over SSH is replaced by a stub, since moto's instances are not real hosts.


@pytest.fixture
def no_configure(monkeypatch, tmp_path):
    configured: list[str] = []

    def configure(connection, out, *, extravars=None, tags=None, check=False):
        configured.append(connection.address)
        return ansible.RunResult(ok=True, run_dir=tmp_path, log_path=tmp_path / "log")

    monkeypatch.setattr(provision.workstation, "configure", configure)
    return configured


def provision_with(name: str, data: list[str] | None, image: str):
    target = provision.Target(name=name, user="admin")
    # --connect: the stub would be told this address, never one moto hands out.
    cloud = provision.Cloud(ami=image, allow_cidr="127.0.0.1/32", connect="127.0.0.1:2222", data=data)
    return provision.provision_ec2(provision.plan_ec2(target, cloud), io.StringIO())


def associated(instance_id: str) -> list[str]:
    found = ec2().describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    return [item["IamInstanceProfile"]["Arn"] for item in found if item["State"] == "associated"]


@pytest.mark.integration
def test_provision_attaches_at_launch_replaces_later_and_destroy_removes_only_ours(aws_env, home, no_configure):
    image = ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    # A name of its own: moto's state is shared by the module's tests.
    bystander = iam().create_role(RoleName="someone-elses-role-2", AssumeRolePolicyDocument=json.dumps(data_role.TRUST))["Role"]
    done = provision_with("ws2", ["s3://team-data/churn"], image)
    assert no_configure == ["127.0.0.1"]
    profile = iam().get_instance_profile(InstanceProfileName=f"gpubox-ws2-{REGION}")["InstanceProfile"]
    assert associated(done.instance_id) == [profile["Arn"]]
    instance = ec2().describe_instances(InstanceIds=[done.instance_id])["Reservations"][0]["Instances"][0]
    assert instance["MetadataOptions"]["HttpTokens"] == "required" and instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    # The tags in the metadata: the budget job's warning reaches the workstation (the autostop checker).
    assert instance["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
    assert the_policy(f"gpubox-ws2-{REGION}") == READ_ONLY

    # A later --data on the same workstation: the same instance, the same profile, only the new statements.
    again = provision_with("ws2", ["s3://team-data", "s3://team-scratch/alice:rw"], image)
    assert again.instance_id == done.instance_id and associated(done.instance_id) == [profile["Arn"]]
    assert the_policy(f"gpubox-ws2-{REGION}") == TWO_BUCKETS
    # Without --data the access stays as it is.
    provision_with("ws2", None, image)
    assert the_policy(f"gpubox-ws2-{REGION}") == TWO_BUCKETS and associated(done.instance_id) == [profile["Arn"]]

    lines = list(lifecycle.status(None, "ws2", read_report=lambda alias: None))
    assert lines[1] == "  data access: s3://team-data (read-only), s3://team-scratch/alice (read-write)"

    plan = lifecycle.plan_destroy("ws2", None)
    assert plan.resources["IAM role"] == [f"gpubox-ws2-{REGION} (and its data-access policy)"]
    assert plan.resources["instance profile"] == [f"gpubox-ws2-{REGION}"]
    lifecycle.destroy_ec2(plan, io.StringIO())
    roles = {role["RoleName"] for role in iam().list_roles()["Roles"]}
    assert f"gpubox-ws2-{REGION}" not in roles and bystander["RoleName"] in roles
    assert f"gpubox-ws2-{REGION}" not in {item["InstanceProfileName"] for item in iam().list_instance_profiles()["InstanceProfiles"]}


@pytest.mark.integration
def test_provision_data_without_the_boundary_stops_before_launch_with_the_fix(aws_env, home, no_configure, no_boundary):
    image = ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    with pytest.raises(GpuboxError) as refused:
        provision_with("unbounded", ["s3://team-data/churn"], image)
    assert "does not exist" in refused.value.message and "create-policy" in refused.value.fix
    assert no_configure == []
    launched = ec2().describe_instances(Filters=contract.managed_filters("unbounded"))["Reservations"]
    assert launched == [] and f"gpubox-unbounded-{REGION}" not in {role["RoleName"] for role in iam().list_roles()["Roles"]}


@pytest.mark.integration
def test_data_on_a_workstation_launched_without_it_associates_the_profile(aws_env, home, no_configure):
    image = ec2().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    done = provision_with("ws3", None, image)
    assert associated(done.instance_id) == []
    # Someone raised the hop limit (containers could then reach the role): provision puts it back to 1.
    # (Every option given: moto forgets the ones a modify leaves out, which AWS keeps.)
    ec2().modify_instance_metadata_options(InstanceId=done.instance_id, HttpTokens="optional", HttpPutResponseHopLimit=2,
                                           HttpEndpoint="enabled", HttpProtocolIpv6="disabled", InstanceMetadataTags="disabled")
    provision_with("ws3", ["s3://team-scratch/alice:rw"], image)
    profile = iam().get_instance_profile(InstanceProfileName=f"gpubox-ws3-{REGION}")["InstanceProfile"]
    assert associated(done.instance_id) == [profile["Arn"]]
    assert the_policy(f"gpubox-ws3-{REGION}") == READ_WRITE
    options = ec2().describe_instances(InstanceIds=[done.instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"], options["InstanceMetadataTags"]) == ("required", 1, "enabled")


def test_boto3_reads_through_the_role_from_imdsv2_and_is_refused_elsewhere(monkeypatch):
    """The host side without a host: a fresh Python with no keys, only the endpoints, takes the role's
    credentials from an IMDSv2 stand-in and moto (enforcing IAM) allows exactly the policy."""
    for key in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(key, "/nonexistent")
    # boto3's default session keeps the first credentials it resolved (other tests' keys): a fresh one here.
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with imds.moto_enforcing_iam("127.0.0.1") as (url, admin):
        for key, value in {"AWS_ENDPOINT_URL": url, "AWS_DEFAULT_REGION": REGION, **admin}.items():
            monkeypatch.setenv(key, value)
        for bucket in ("team-data", "other-bucket"):
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
            boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key="churn/x.csv", Body=bucket.encode())
        create_boundary()
        role = data_role.ensure("local", REGION, "scientist", data_access.parse_all(["s3://team-data/churn"]))
        admin_arn = iam().get_user(UserName="admin")["User"]["Arn"]
        # This test plays EC2, which assumes the role for the instance: the trust names the admin here.
        iam().update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}]}))
        arn = iam().get_role(RoleName=role)["Role"]["Arn"]
        credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName="i-local")["Credentials"]
        code = ("import boto3\ns3 = boto3.client('s3')\nprint(s3.get_object(Bucket='team-data', Key='churn/x.csv')['Body'].read().decode())\n"
                "for call in (lambda: s3.get_object(Bucket='other-bucket', Key='churn/x.csv'),\n"
                "             lambda: s3.put_object(Bucket='team-data', Key='churn/y.csv', Body=b'1')):\n"
                "    try:\n        call()\n        print('allowed')\n    except Exception as exc:\n        print(type(exc).__name__, exc)\n")
        with imds.serve("127.0.0.1", role, credentials) as (endpoint, log):
            env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": endpoint, "AWS_ENDPOINT_URL": url,
                   "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
            run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "team-data"
    assert "when calling the GetObject operation: Access Denied" in lines[1]
    assert "when calling the PutObject operation: Access Denied" in lines[2]
    assert log[0] == "PUT /latest/api/token 200" and f"GET {imds.CREDENTIALS_PATH}{role} 200" in log


class NoIam:
    """IAM as it answers a caller without IAM rights (its operations named as IAM's client names them)."""

    meta = boto3.client("iam", region_name=REGION).meta

    def __getattr__(self, action: str):
        def refuse(**kwargs):
            from botocore.exceptions import ClientError  # noqa: PLC0415
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": f"User: x is not authorized to perform: iam:{action}"}},
                              action)
        return refuse


def test_destroy_without_iam_rights_goes_on_and_says_so(monkeypatch):
    monkeypatch.setattr(aws, "client", lambda service, region: NoIam())
    assert data_role.destroy_listing(REGION, "plain") == {}
    note = data_role.delete(REGION, "plain")
    assert note.startswith(f"note: IAM could not be checked for a data-access role gpubox-plain-{REGION}")
    assert "not allowed to call iam:" in note
    assert data_role.status_line(REGION, "plain", "i-0").startswith("data access: could not be read (Your AWS identity is not allowed")


def _refused(text: str) -> GpuboxError:
    """What aws.call raises for an EC2 refusal "Code: message": the GpuboxError, from botocore's ClientError."""
    code, _, message = text.partition(": ")
    try:
        raise ClientError({"Error": {"Code": code, "Message": message}}, "RunInstances")
    except ClientError as exc:
        try:
            raise aws.failure(exc, REGION) from exc
        except GpuboxError as problem:
            return problem


def test_a_profile_ec2_cannot_see_yet_is_retried_and_other_refusals_are_not():
    # IAM's new profile reaches EC2 seconds later; AWS says so with this code (the words are not read).
    fresh = ("InvalidParameterValue: Value (gpubox-a-us-east-1) for parameter iamInstanceProfile.name is invalid. "
             "Invalid IAM Instance Profile name")
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _refused(fresh)
        return "i-1"
    assert launch.with_new_profile(flaky, sleep=slept.append) == "i-1"
    assert len(calls) == 3 and slept == [launch.PROFILE_RETRY_SECONDS] * 2

    def quota() -> str:
        calls.append(1)
        raise _refused("VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit")
    calls.clear()
    with pytest.raises(GpuboxError):
        launch.with_new_profile(quota, sleep=slept.append)
    assert len(calls) == 1

    def never() -> str:
        calls.append(1)
        raise _refused(fresh)
    calls.clear()
    with pytest.raises(GpuboxError):
        launch.with_new_profile(never, sleep=lambda seconds: None)
    assert len(calls) == launch.PROFILE_RETRIES


@pytest.mark.parametrize(("keys", "readable"), [
    (["Name", "gpubox:owner", "gpubox:budget", "cost-center", "team=ml.v2", "a+b,c@d"], "enabled"),
    (["Name", "cost center"], "disabled"),  # EC2 refuses tags in the metadata for a key with a space
    (["Name", "team/ml"], "disabled"),
    (["Name", "_index"], "disabled"),
])
def test_the_tags_go_into_the_metadata_only_where_every_key_can(keys, readable):
    options = launch.metadata_options(keys)
    assert options["InstanceMetadataTags"] == readable
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("required", 1)
