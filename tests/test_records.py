"""Where a workstation lives is found from AWS, and restore and prune go by ownership, never by
name (moto in server mode on 127.0.0.1, seeded with the publishers' images, as in test_team_aws.py).

IT's fleet views search every enabled region; a user's snapshots are found in every region they
used after destroy removed the record; a broken or stale record is one line and never hides the
others; --region wins over a stale record; a restore brings back every kept disk and never boots a
restore image someone else planted; prune never touches another owner's images or snapshots; the
one name rule refuses wildcards and a trailing newline.
"""

from __future__ import annotations

import io
import json
import os
import time
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from gpubox import cli, contract, validate
from gpubox.cloud import ec2, images, records, snapshots
from gpubox.commands import image, lifecycle, retention
from gpubox.errors import GpuboxError
from test_team_aws import REGION, Team, client, live, moto_images, request, team  # noqa: F401  (fixtures)

WEST = "eu-west-1"
BASE = "ami-0de13000000000001"  # Debian's image in moto (test_team_aws.IMAGES)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tags(**values: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in values.items()]


def owned(owner: str, name: str) -> list[dict[str, str]]:
    return tags(**{contract.TAG_MANAGED: "true", contract.TAG_NAME: name, contract.TAG_OWNER: owner})


def destroyed_keeping_snapshots(name: str, region: str, owner: str) -> list[snapshots.Snapshot]:
    """What destroy does to AWS and the local record, without the teardown playbook: every disk's
    snapshot completed, the instance terminated, the record removed."""
    plan = lifecycle.plan_destroy(name, region)
    kept = snapshots.keep(region, name, owner, list(plan.disks), io.StringIO())
    client(region).terminate_instances(InstanceIds=[item["InstanceId"] for item in live(name, region)])
    records.record_path(name).unlink()
    return kept


def image_ids(region: str = REGION) -> set[str]:
    return {item["ImageId"] for item in client(region).describe_images(Owners=["self"])["Images"]}


# Regions


def test_it_sees_a_teammates_workstation_in_another_region_and_says_where_it_searched(team, capsys):
    bob = team.be("bob")
    ec2.provision(request(team, "bob-west", region=WEST), io.StringIO())
    team.be("it")  # IT's own laptop: no record of bob's workstation, nothing ever provisioned in eu-west-1
    assert records.used_regions() == []
    code, out, err = run(capsys, "status", "--all")
    assert code == 0, err
    assert f"bob-west: running, g4dn.xlarge in {WEST}" in out and f"owner {bob}" in out
    searched = next(line for line in out.splitlines() if "searched" in line)
    assert WEST in searched and REGION in searched and "ap-southeast-2" in searched
    document = json.loads(run(capsys, "status", "--all", "--json")[1])
    assert WEST in document["regions"] and any(row["name"] == "bob-west" and row["region"] == WEST
                                                        for row in document["workstations"])
    code, out, err = run(capsys, "status")  # IT's own view: theirs only
    assert code == 0 and "bob-west" not in out
    planned = retention.plan_cleanup(None, 1, any_owner=True)
    assert WEST in planned.regions and len(planned.regions) > 10
    code, out, err = run(capsys, "cleanup", "--any-owner", "--days", "1", "--dry-run")
    assert code == 0 and "searched" in out and WEST in out, out + err


def test_after_destroy_in_another_region_its_snapshot_is_listed_and_restored_without_region(team, capsys, sent):
    carol = team.be("carol")
    ec2.provision(request(team, "far", region=WEST), io.StringIO())
    [kept] = destroyed_keeping_snapshots("far", WEST, carol)
    assert not records.record_path("far").exists()

    code, out, err = run(capsys, "snapshots", "list")
    assert code == 0 and f"snapshot {kept.snapshot_id} of far" in out and f"in {WEST}" in out, out + err
    code, out, err = run(capsys, "status")
    assert code == 0 and kept.snapshot_id in out, out + err
    code, out, err = run(capsys, "provision", "--name", "far", "--from-snapshot", "latest", "--dry-run")
    assert code == 0, err
    assert f"in {WEST}" in out and f"made from snapshot {kept.snapshot_id}" in out and "nothing was created" in out

    sent.clear()
    ec2.provision(request(team, "far", region=WEST, from_snapshot="latest"), io.StringIO())
    [launched] = [params for operation, params in sent if operation == "RunInstances"]
    assert launched["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == kept.snapshot_id
    assert live("far", WEST)


# Records


def test_broken_and_stale_records_are_one_line_each_and_the_others_are_listed(team, capsys):
    team.be("dora")
    ec2.provision(request(team, "fine"), io.StringIO())
    ec2.provision(request(team, "ghost"), io.StringIO())
    ghost = records.load_record("ghost")["instance_id"]
    client().terminate_instances(InstanceIds=[ghost])  # destroyed from another laptop: the record stays here
    folder = records.record_path("x").parent
    whole = json.dumps({"region": REGION, "account": "123456789012", "instance_id": "i-0123456789abcdef0"})
    (folder / "cut.json").write_text(whole[: len(whole) // 2])  # an older gpubox, killed mid-write
    (folder / "mars.json").write_text(json.dumps({"region": "mars-1\nus-east-1", "account": "123456789012"}))

    code, out, err = run(capsys, "status")
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("fine: running") for line in lines)
    for name, words in (("cut", "not complete JSON"), ("mars", "is not an AWS region name"), ("ghost", "is stale")):
        [line] = [line for line in lines if str(folder / f"{name}.json") in line]
        assert words in line and ("rm " in line or "--region" in line), line
    assert ghost in next(line for line in lines if "ghost.json" in line)

    document = json.loads(run(capsys, "status", "--json")[1])
    assert [row["name"] for row in document["workstations"]] == ["fine"]
    assert len(document["record_problems"]) == 3 and document["ec2_error"] is None

    code, out, err = run(capsys, "stop", "--name", "cut")
    assert code == 2 and str(folder / "cut.json") in err and "not complete JSON" in err and "rm " in err


def test_a_stale_record_gives_way_to_region_without_a_loop(team, capsys):
    erin = team.be("erin")
    ec2.provision(request(team, "moved", region=WEST), io.StringIO())  # where it lives now
    gone = client().run_instances(ImageId=BASE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    client().terminate_instances(InstanceIds=[gone])
    account = boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]
    records.save_record("moved", {"region": REGION, "account": account, "instance_id": gone})  # an old laptop's view

    code, out, err = run(capsys, "provision", "--name", "moved", "--region", WEST, "--dry-run")
    assert code == 0 and "is stale" in err and f"in {WEST}" in out, out + err
    assert records.load_record("moved")["region"] == REGION  # a dry run leaves even a stale record as it is
    code, out, err = run(capsys, "stop", "--name", "moved")
    assert code == 1 and "is stale" in err and gone in err and "Pass --region" in err
    code, out, err = run(capsys, "stop", "--name", "moved", "--region", WEST)
    assert code == 0, err
    assert "is stale" in out and f"following --region {WEST}" in out and "moved is stopped." in out
    assert live("moved", WEST)[0]["State"]["Name"] == "stopped"
    assert records.load_record("moved")["region"] == WEST
    code, out, err = run(capsys, "start", "--name", "moved")  # the record follows: no --region needed any more
    assert code == 0, err


def test_records_are_written_whole_or_not_at_all(home, monkeypatch):
    records.save_record("keep", {"region": REGION, "instance_id": "i-0123456789abcdef0"})

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        records.save_record("keep", {"region": WEST, "instance_id": "i-0fedcba9876543210"})
    assert records.load_record("keep") == {"region": REGION, "instance_id": "i-0123456789abcdef0"}
    assert [path.name for path in records.record_path("keep").parent.iterdir()] == ["keep.json"]  # no temporary left
    assert records.used_regions() == [REGION]


# Restore


def test_a_restore_brings_back_every_kept_disk(team, sent):
    gina = team.be("gina")
    ec2.provision(request(team, "twin"), io.StringIO())
    [instance] = live("twin")
    data = client().create_volume(AvailabilityZone=instance["Placement"]["AvailabilityZone"], Size=500, VolumeType="gp3",
                                  TagSpecifications=[{"ResourceType": "volume", "Tags": owned(gina, "twin")}])["VolumeId"]
    client().attach_volume(VolumeId=data, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    kept = destroyed_keeping_snapshots("twin", REGION, gina)
    assert len(kept) == 2
    by_device = {snap.device: snap.snapshot_id for snap in kept}

    sent.clear()
    out = io.StringIO()
    ec2.provision(request(team, "twin", from_snapshot="latest"), out)
    [launched] = [params for operation, params in sent if operation == "RunInstances"]
    mapped = {mapping["DeviceName"]: mapping["Ebs"].get("SnapshotId") for mapping in launched["BlockDeviceMappings"]}
    assert mapped["/dev/sdf"] == by_device["/dev/sdf"] and by_device["/dev/sdf"] in out.getvalue()
    assert set(mapped.values()) == set(by_device.values())
    [new] = live("twin")
    volumes = [mapping["Ebs"]["VolumeId"] for mapping in new["BlockDeviceMappings"]]
    restored = {item["SnapshotId"] for item in client().describe_volumes(VolumeIds=volumes)["Volumes"]}
    assert restored == set(by_device.values())


def test_a_planted_restore_image_of_another_owner_is_not_used(team, sent):
    mallory = team.be("mallory")
    ec2.provision(request(team, "mal"), io.StringIO())
    [mine_of_mallory] = destroyed_keeping_snapshots("mal", REGION, mallory)
    frank = team.be("frank")
    ec2.provision(request(team, "phoenix"), io.StringIO())
    [root] = destroyed_keeping_snapshots("phoenix", REGION, frank)

    def plant(owner: str, snapshot_id: str, suffix: str = "") -> str:
        planted = client().register_image(
            Name=f"gpubox-restore-{root.snapshot_id}{suffix}", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
            Architecture="x86_64", BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}])["ImageId"]
        client().create_tags(Resources=[planted], Tags=owned(owner, "phoenix"))
        return planted
    theirs = plant(mallory, mine_of_mallory.snapshot_id)  # the name gpubox used to trust, mallory's image
    wrong_disk = plant(frank, mine_of_mallory.snapshot_id, "-x")  # frank's tag, but another disk

    sent.clear()
    ec2.provision(request(team, "phoenix", from_snapshot="latest"), io.StringIO())
    [launched] = [params for operation, params in sent if operation == "RunInstances"]
    assert launched["ImageId"] not in (theirs, wrong_disk)
    [registered] = [params for operation, params in sent if operation == "RegisterImage"]
    assert registered["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == root.snapshot_id
    assert registered["Name"] != f"gpubox-restore-{root.snapshot_id}"  # the plain name is mallory's
    made = client().describe_images(ImageIds=[launched["ImageId"]])["Images"][0]
    assert {"Key": contract.TAG_OWNER, "Value": frank} in made["Tags"]


def image_of(owner: str, snapshot_id: str, image_id: str = "ami-1") -> dict:
    return {"ImageId": image_id, "Tags": owned(owner, "x"), "State": "available",
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot_id}}]}


def test_a_restore_image_is_the_callers_only_when_tagged_theirs_and_mapping_that_snapshot(monkeypatch):
    """moto's RegisterImage keeps neither the mapping nor the tags it is given (AWS keeps both), so
    reuse and prune are checked here against the images AWS would describe."""
    me, other = "arn:aws:iam::123456789012:user/me", "arn:aws:iam::123456789012:user/other"
    described = [image_of(other, "snap-1", "ami-planted"), image_of(me, "snap-2", "ami-other-disk"), image_of(me, "snap-1", "ami-mine")]
    calls: list[tuple[str, dict]] = []

    def fake(region: str, operation: str, **arguments) -> dict:
        calls.append((operation, arguments))
        return {"Images": described} if operation == "describe_images" else {}
    monkeypatch.setattr(snapshots, "_call", fake)
    assert [item["ImageId"] for item in snapshots.restore_images(REGION, "snap-1", me)] == ["ami-mine"]
    snap = snapshots.Snapshot("snap-1", "x", me, "vol-1", "/dev/xvda", 100, "completed", None)
    assert snapshots.restore_image(REGION, snap, {contract.TAG_OWNER: me}) == "ami-mine"
    assert not [1 for operation, _ in calls if operation == "register_image"]
    calls.clear()
    snapshots.delete(REGION, [snap])
    assert [(operation, arguments) for operation, arguments in calls if operation != "describe_images"] == [
        ("deregister_image", {"ImageId": "ami-mine"}), ("delete_snapshot", {"SnapshotId": "snap-1"})]


# Prune


def test_snapshots_prune_never_touches_another_owners_image_or_snapshot(team, capsys):
    ivan = team.be("ivan")
    ec2.provision(request(team, "many"), io.StringIO())
    [volume] = [mapping["Ebs"]["VolumeId"] for mapping in live("many")[0]["BlockDeviceMappings"]]
    made = []
    for _ in range(2):
        made.append(client().create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot",
                                                                                   "Tags": owned(ivan, "many")}])["SnapshotId"])
        time.sleep(1.1)  # distinct start times (seconds in moto's answers): which one is older is the test's premise
    old = made[0]
    judy = team.be("judy")
    planted = client().register_image(Name=f"gpubox-restore-{old}-judy", RootDeviceName="/dev/xvda", VirtualizationType="hvm",
                                      BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": old}}])["ImageId"]
    client().create_tags(Resources=[planted], Tags=owned(judy, "many"))
    judys = client().create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": owned(judy, "many")}])[
        "SnapshotId"]

    team.be("ivan")
    code, out, err = run(capsys, "snapshots", "prune", "--keep", "1", "--yes")
    assert code == 0 and "Deleted 1 snapshot(s)." in out, out + err
    left = {item["SnapshotId"] for item in client().describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert old not in left and made[1] in left and judys in left
    assert planted in image_ids()


def baked(owner: str, series: str, when: str) -> str:
    instance = client().run_instances(ImageId=BASE, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    made = client().create_image(InstanceId=instance, Name=f"gpubox-{series}-{instance}")["ImageId"]
    client().create_tags(Resources=[made], Tags=tags(**{contract.TAG_MANAGED: "true", contract.TAG_OWNER: owner,
                                                        contract.TAG_IMAGE: series, "gpubox:when": when}))
    client().terminate_instances(InstanceIds=[instance])
    return made


def test_image_prune_asks_goes_by_owner_and_never_touches_another_owners(team, capsys, monkeypatch):
    kate, leo = team.be("kate"), team.be("leo")
    kates = [baked(kate, "default", "1"), baked(kate, "default", "2")]
    leos = [baked(leo, "default", "3"), baked(leo, "default", "4")]
    found = {item.image_id: item for item in images.baked(REGION, None)}
    order = sorted(found.values(), key=lambda item: (item.created, item.image_id), reverse=True)
    assert {item.image_id for item in images.beyond(order, 1)} == {min(kates, key=lambda i: (found[i].created, i)),
                                                                   min(leos, key=lambda i: (found[i].created, i))}

    team.be("kate")
    before = image_ids()
    code, out, err = run(capsys, "image", "prune", "--keep", "0")  # no terminal, no --yes
    assert code == 2 and "--yes" in err and image_ids() == before
    assert all(image_id in out for image_id in kates) and not any(image_id in out for image_id in leos)
    code, out, err = run(capsys, "image", "prune", "--keep", "0", "--yes")
    assert code == 0 and "2 deregistered" in out, out + err
    assert not set(kates) & image_ids() and set(leos) <= image_ids()

    team.be("it")
    planned = image.plan_prune(None, 1, everyone=True)
    assert [item.image_id for item in planned.removed] == [min(leos, key=lambda i: (found[i].created, i))]


# Names


@pytest.mark.parametrize("args", [
    ["snapshots", "prune", "--keep", "1", "--name", "al*"], ["snapshots", "list", "--name", "bob\n"],
    ["status", "--name", "al*"], ["status", "--json", "--name", "bob\n"], ["stop", "--name", "bob\n"],
    ["destroy", "--name", "al*", "--yes"], ["provision", "--name", "bob\n", "--dry-run"],
    ["provision", "--name", "a?", "--from-snapshot", "latest", "--dry-run"]])
def test_a_wildcard_or_a_trailing_newline_is_not_a_name(home, capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2, out + err
    assert repr(args[args.index("--name") + 1]) in err and "is not allowed" in err


def test_the_one_name_rule_is_a_full_match():
    assert validate.name("alice-gpu") == "alice-gpu"
    for refused in ("bob\n", "al*", "a?", "", "x" * 32, "Alice", "a b"):
        with pytest.raises(GpuboxError):
            validate.name(refused)
    assert validate.optional_name(None) is None
    with pytest.raises(GpuboxError):
        validate.region("us-east-1\n")


def test_a_disk_that_cannot_be_restored_is_named_with_how_to_attach_it(monkeypatch):
    """moto completes every snapshot at once; here one data disk's snapshot is still pending."""
    me = "arn:aws:iam::123456789012:user/me"
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)

    def snap(snapshot_id: str, device: str, state: str, minute: int, instance: str = "i-1") -> snapshots.Snapshot:
        return snapshots.Snapshot(snapshot_id, "box", me, f"vol-{snapshot_id}", device, 50, state, start + timedelta(minutes=minute),
                                  instance)
    root = snap("snap-root", "/dev/xvda", "completed", 0)
    kept = [root, snap("snap-g-old", "/dev/sdg", "completed", 1), snap("snap-g", "/dev/sdg", "completed", 2),
            snap("snap-f", "/dev/sdf", "pending", 3), snap("snap-other-instance", "/dev/sdh", "completed", 4, "i-2")]
    monkeypatch.setattr(snapshots, "listed", lambda region, owner, name=None: kept)
    data, left = snapshots.kept_with(REGION, root, me)
    assert [item.snapshot_id for item in data] == ["snap-g"]
    assert [item.snapshot_id for item in left] == ["snap-f"]
    hint = snapshots.attach_hint(REGION, left[0], "box")
    assert "aws ec2 create-volume" in hint and "--snapshot-id snap-f" in hint and "--device /dev/sdf" in hint
