"""Baked AMIs (gpubox/cloud/images.py, gpubox/commands/image.py) against moto in this process: only
gpubox's images are listed, pruned and picked, and only the caller's unless IT asks for all."""

from __future__ import annotations

import io

import boto3
import pytest
from moto import mock_aws

from gpubox import bake, contract
from gpubox.cloud import images
from gpubox.commands import image, provision
from gpubox.errors import GpuboxError

REGION = "us-east-1"
ME = "AKIAIOSFODNN7EXAMPLE"  # moto's caller: the owner is its STS UserId (gpubox/cloud/ownership.py)


@pytest.fixture
def ec2(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


def _instance(ec2) -> str:
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    return ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]


def _image(ec2, name: str, tags: dict[str, str]) -> str:
    made = ec2.create_image(InstanceId=_instance(ec2), Name=name)["ImageId"]
    if tags:
        ec2.create_tags(Resources=[made], Tags=[{"Key": key, "Value": value} for key, value in tags.items()])
    return made


def _gpubox(series: str, owner: str = ME, roles: str = "0" * 12) -> dict[str, str]:
    return {contract.TAG_MANAGED: "true", contract.TAG_OWNER: owner, contract.TAG_IMAGE: series, "gpubox:roles": roles}


def test_only_the_callers_gpubox_images_are_listed_newest_first(ec2):
    bystander = _image(ec2, "someone-elses", {"team": "x"})
    theirs = _image(ec2, "gpubox-default-theirs", _gpubox("default", owner="arn:aws:iam::123456789012:user/bob"))
    older = _image(ec2, "gpubox-default-1", _gpubox("default"))
    newer = _image(ec2, "gpubox-default-2", _gpubox("default"))
    mine = [item.image_id for item in images.baked(REGION, ME)]
    assert set(mine) == {older, newer} and bystander not in mine and theirs not in mine
    assert {item.image_id for item in images.baked(REGION, None)} == {older, newer, theirs}
    assert images.baked(REGION, ME)[0].created >= images.baked(REGION, ME)[1].created


def test_beyond_keeps_the_newest_of_each_series():
    def made(series: str, created: str) -> images.Baked:
        return images.Baked(f"ami-{series}{created}", "", series, created, ME, {}, ())
    found = [made("a", "3"), made("b", "3"), made("a", "2"), made("a", "1"), made("b", "1")]
    assert [item.image_id for item in images.beyond(found, 1)] == ["ami-a2", "ami-a1", "ami-b1"]
    assert images.beyond(found, 2) == [found[3]]
    assert images.beyond(found, 0) == found


def test_prune_deregisters_only_the_callers_old_images_and_their_snapshots(ec2):
    bystander = _image(ec2, "someone-elses", {})
    theirs = _image(ec2, "gpubox-default-theirs", _gpubox("default", owner="arn:aws:iam::123456789012:user/bob"))
    made = [_image(ec2, f"gpubox-default-{number}", _gpubox("default")) for number in range(3)]
    snapshots = {item.image_id: item.snapshots for item in images.baked(REGION, ME)}
    assert all(snapshots[image_id] for image_id in made)  # the test proves something about snapshots
    would = image.prune(REGION, 1, dry_run=True)
    assert len(would.removed) == 2 and len(images.baked(REGION, ME)) == 3  # a dry run removes nothing
    pruned = image.prune(REGION, 1)
    left = {item["ImageId"] for item in ec2.describe_images(Owners=["self"])["Images"]}
    assert left == {bystander, theirs, pruned.kept[0].image_id}
    gone = [snapshot for item in pruned.removed for snapshot in item.snapshots]
    existing = {item["SnapshotId"] for item in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert gone and not set(gone) & existing
    with pytest.raises(GpuboxError, match="negative"):
        image.prune(REGION, -1)


def test_provision_image_latest_starts_from_the_callers_newest(ec2, tmp_path):
    _image(ec2, "gpubox-default-theirs", _gpubox("default", owner="arn:aws:iam::123456789012:user/bob"))
    _image(ec2, "gpubox-default-1", _gpubox("default"))
    newest = _image(ec2, "gpubox-gpu-2", _gpubox("gpu", roles=bake.roles_digest()))
    key = tmp_path / "id_ed25519"
    key.write_text("unused")
    key.chmod(0o600)
    plan = provision.plan_ec2(provision.Target(name="ws", key=key),
                              provision.Cloud(image="latest", dry_run=True, allow_cidr="127.0.0.1/32"))
    assert plan.request.ami == newest and plan.image_roles == bake.roles_digest()
    assert f"instance gpubox-ws: g4dn.xlarge in {REGION}, {newest}" in "\n".join(plan.lines)
    series = provision.plan_ec2(provision.Target(name="ws", key=key),
                                provision.Cloud(image="latest:default", dry_run=True, allow_cidr="127.0.0.1/32"))
    assert series.request.ami != newest and series.image_roles == "0" * 12
    with pytest.raises(GpuboxError, match="not a gpubox baked image"):
        images.baked_image(REGION, ME, ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    with pytest.raises(GpuboxError, match="no baked gpubox image of series nope"):
        images.baked_image(REGION, ME, "latest:nope")


def test_per_instance_work_only_on_an_image_of_these_roles():
    out = io.StringIO()
    assert bake.provision_tags(bake.roles_digest(), out, "ami-1") == bake.PER_INSTANCE_TAGS
    assert "only per-instance work runs" in out.getvalue()
    assert bake.provision_tags("0" * 12, out, "ami-1") is None
    assert "all of site.yml runs" in out.getvalue()


def test_the_roles_digest_follows_the_roles(tmp_path):
    for entry in ("site.yml", "roles/base/tasks/main.yml"):
        (tmp_path / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry).write_text("a")
    first = bake.roles_digest(tmp_path)
    assert bake.roles_digest(tmp_path) == first
    (tmp_path / "roles/base/README.md").write_text("documentation changes no host")
    assert bake.roles_digest(tmp_path) == first
    (tmp_path / "roles/base/tasks/main.yml").write_text("b")
    assert bake.roles_digest(tmp_path) != first


def test_a_failed_smoke_test_is_never_imaged():
    with pytest.raises(GpuboxError, match="smoke test failed"):
        bake.read_report('{"ok": false, "error": "no GPU"}')
    with pytest.raises(GpuboxError, match="no readable TensorFlow report"):
        bake.read_report("")
    assert bake.read_report('{"ok": true}') == {"ok": True}
