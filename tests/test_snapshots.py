"""Data that outlives the machine (moto in server mode on 127.0.0.1, seeded with the publishers'
images, as in test_team_aws.py): destroy keeps a completed, tagged snapshot of the right volume
before anything is terminated, and a bystander's snapshots and volumes are never touched;
--no-snapshot deletes without one; a snapshot that fails and a destroy that is killed leave the
disk; provision --from-snapshot boots a new instance from it; prune keeps exactly N; cleanup
selects only workstations stopped longer than the limit; spot launches are persistent and stop.

moto completes every snapshot at once. A real snapshot of a big disk takes minutes to hours, and
can fail: `Faulty` is a proxy between runner.py and moto that reports snapshots as `pending` or
`error` in DescribeSnapshots answers, so the waiting and failing paths run against moto's state.
Nothing here connects to an address moto hands out.
"""

from __future__ import annotations

import dataclasses
import http.client
import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from conftest import PROJECT, run_env
from gpubox import contract, status
from gpubox.cloud import aws, cleanup, ec2, snapshots
from gpubox.commands import lifecycle, retention
from gpubox.errors import GpuboxError
from test_team_aws import REGION, Team, client, live, moto_images, request, team  # noqa: F401  (fixtures)


class Faulty:
    """A proxy in front of moto; `snapshot_state` (when set) replaces 'completed' in the snapshot
    states DescribeSnapshots reports."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.snapshot_state = ""
        faulty = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (botocore's EC2 calls are POSTs)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                upstream = http.client.HTTPConnection(faulty.upstream.hostname, faulty.upstream.port, timeout=30)
                headers = {key: value for key, value in self.headers.items() if key.lower() not in ("host", "content-length")}
                upstream.request("POST", self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                if faulty.snapshot_state and b"Action=DescribeSnapshots" in body:
                    data = data.replace(b"<status>completed</status>", f"<status>{faulty.snapshot_state}</status>".encode())
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def faulty(team, monkeypatch):
    proxy = Faulty(team.endpoint)
    yield proxy
    proxy.close()


def volumes_of(instance: dict) -> list[str]:
    return [mapping["Ebs"]["VolumeId"] for mapping in instance["BlockDeviceMappings"]]


def tagged_snapshots(name: str) -> list[dict]:
    return client().describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:gpubox:name", "Values": [name]}])["Snapshots"]


def state_of(instance_id: str) -> str:
    return aws.instance_state(REGION, instance_id)


def volume_exists(volume_id: str) -> bool:
    return bool(client().describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"])


def provisioned(team: Team, name: str, *, spot: bool = False, **options) -> dict:
    ec2.provision(dataclasses.replace(request(team, name, **options), spot=spot), io.StringIO())
    [instance] = live(name)
    return instance


def bystander(team: Team) -> tuple[str, str]:
    """Bob's own workstation and snapshot in the same account: (volume, snapshot)."""
    bob = team.be("bob")
    instance = provisioned(team, "bobs")
    [volume] = volumes_of(instance)
    tags = [{"Key": contract.TAG_MANAGED, "Value": "true"}, {"Key": contract.TAG_NAME, "Value": "bobs"},
            {"Key": contract.TAG_OWNER, "Value": bob}]
    snap = client().create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])["SnapshotId"]
    return volume, snap


# destroy


def test_destroy_keeps_a_completed_tagged_snapshot_of_the_disk_before_terminating(team, monkeypatch):
    bob_volume, bob_snapshot = bystander(team)
    alice = team.be("alice")
    instance = provisioned(team, "keeper")
    [volume] = volumes_of(instance)
    plan = lifecycle.plan_destroy("keeper", None)
    assert plan.resources["volumes"] == [f"{volume} (100 GB, root disk /dev/xvda of {instance['InstanceId']})"]
    assert plan.kept == [f"a snapshot of {volume} (100 GB, root disk): up to ~$5.00/month until you prune it"]

    at_teardown = []
    teardown = ec2.teardown

    def watched(name: str, region: str, out) -> None:  # the real teardown, after a look at what it starts from
        at_teardown.append((state_of(instance["InstanceId"]), [(snap["VolumeId"], snap["State"]) for snap in tagged_snapshots("keeper")]))
        teardown(name, region, out)
    monkeypatch.setattr(ec2, "teardown", watched)
    out = io.StringIO()
    lifecycle.destroy_ec2(plan, out)

    assert at_teardown == [("stopped", [(volume, "completed")])], out.getvalue()
    [snap] = tagged_snapshots("keeper")
    tags = {tag["Key"]: tag["Value"] for tag in snap["Tags"]}
    assert tags[contract.TAG_MANAGED] == "true" and tags[contract.TAG_OWNER] == alice and tags[snapshots.TAG_VOLUME] == volume
    assert tags[snapshots.TAG_DATE].startswith(f"{datetime.now().year}-") and tags["Name"].startswith("gpubox-keeper /dev/xvda ")
    assert state_of(instance["InstanceId"]) == "terminated" and f"Kept: {snap['SnapshotId']} (completed)" in out.getvalue()
    # Bob's disk and snapshot are as they were.
    assert volume_exists(bob_volume) and client().describe_snapshots(SnapshotIds=[bob_snapshot])["Snapshots"]
    shown = "\n".join(lifecycle.status(None, None, read_report=lambda alias: None))
    assert f"snapshot {snap['SnapshotId']} of keeper (100 GB, completed" in shown and bob_snapshot not in shown


def test_no_snapshot_says_the_disk_is_deleted_for_good_and_takes_none(team):
    team.be("carol")
    instance = provisioned(team, "gone")
    [volume] = volumes_of(instance)
    listed = team.runner("destroy", "--name", "gone", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert f"volumes: {volume} (100 GB, root disk" in listed.stdout and "up to ~$5.00/month" in listed.stdout
    result = team.runner("destroy", "--name", "gone", "--no-snapshot", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no snapshot is taken; the volumes above and everything on them are deleted for good" in result.stdout
    assert tagged_snapshots("gone") == [] and state_of(instance["InstanceId"]) == "terminated"


def test_a_volume_that_outlives_termination_is_not_listed_as_deleted(team):
    """A data disk attached later (DeleteOnTermination off, as attach-volume makes it) survives the
    teardown: the listing says so instead of calling it deleted (for good, with --no-snapshot)."""
    team.be("nina")
    instance = provisioned(team, "attached")
    zone = instance["Placement"]["AvailabilityZone"]
    data = client().create_volume(AvailabilityZone=zone, Size=50)["VolumeId"]
    client().attach_volume(VolumeId=data, InstanceId=instance["InstanceId"], Device="/dev/sdf")
    plan = lifecycle.plan_destroy("attached", None, snapshot=False)
    [root] = [line for line in plan.resources["volumes"] if "root disk" in line]
    assert data not in root and "stays" not in root
    kept = [line for kinds in plan.resources.values() for line in kinds if data in line]
    assert kept == [f"{data} (50 GB, data disk /dev/sdf of {instance['InstanceId']}): NOT deleted (DeleteOnTermination off): "
                    "it stays, detached, and bills until you delete it"]
    lifecycle.destroy_ec2(plan, io.StringIO())
    assert volume_exists(data) and state_of(instance["InstanceId"]) == "terminated"


def test_a_snapshot_that_fails_deletes_nothing(team, faulty, monkeypatch):
    team.be("dave")
    instance = provisioned(team, "fragile")
    [volume] = volumes_of(instance)
    plan = lifecycle.plan_destroy("fragile", None)
    monkeypatch.setattr(ec2, "teardown", lambda *args: pytest.fail("teardown ran after a failed snapshot"))

    # AWS refuses to start it (injected into botocore: the answer CreateSnapshot gets is an error) ...
    def refuse(model, **kwargs):
        if model.name == "CreateSnapshot":
            response = type("Response", (), {"status_code": 500, "headers": {}})()
            return response, {"Error": {"Code": "InternalError", "Message": "snapshot service unavailable"}}
        return None
    made = aws.client
    monkeypatch.setattr(aws, "client", lambda service, region: _with(made(service, region), "before-call.ec2.*", refuse))
    with pytest.raises(GpuboxError, match="snapshot service unavailable"):
        lifecycle.destroy_ec2(plan, io.StringIO())
    assert state_of(instance["InstanceId"]) == "stopped" and volume_exists(volume) and tagged_snapshots("fragile") == []
    monkeypatch.setattr(aws, "client", made)

    # ... or it starts and ends in `error`.
    faulty.snapshot_state = "error"
    monkeypatch.setenv("AWS_ENDPOINT_URL", faulty.endpoint)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    with pytest.raises(GpuboxError) as failed:
        lifecycle.destroy_ec2(plan, io.StringIO())
    assert "is error. Nothing was deleted" in failed.value.message and "--no-snapshot" in failed.value.fix
    assert state_of(instance["InstanceId"]) == "stopped" and volume_exists(volume)


def _with(made, event: str, handler):
    made.meta.events.register(event, handler)
    return made


def test_a_killed_destroy_leaves_the_disk_and_the_next_one_reuses_its_snapshot(team, faulty):
    team.be("erin")
    instance = provisioned(team, "killed")
    [volume] = volumes_of(instance)
    faulty.snapshot_state = "pending"  # as a real snapshot of a big disk is for a while
    env = {**run_env(Path(team.env["HOME"])), **team.env, "AWS_ENDPOINT_URL": faulty.endpoint}
    destroying = subprocess.Popen([sys.executable, "runner.py", "destroy", "--name", "killed", "--yes"], cwd=PROJECT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not tagged_snapshots("killed"):
            time.sleep(0.2)
        time.sleep(2)  # well into its wait
        assert destroying.poll() is None, destroying.communicate()[0]
    finally:
        os.killpg(destroying.pid, signal.SIGKILL)
        printed = destroying.communicate(timeout=30)[0]
    assert "waiting (Ctrl-C is safe" in printed, printed
    assert state_of(instance["InstanceId"]) == "stopped" and volume_exists(volume)
    [first] = tagged_snapshots("killed")

    faulty.snapshot_state = ""
    again = team.runner("destroy", "--name", "killed", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Reusing the snapshot an earlier destroy started: {first['SnapshotId']}" in again.stdout
    assert [snap["SnapshotId"] for snap in tagged_snapshots("killed")] == [first["SnapshotId"]]
    assert state_of(instance["InstanceId"]) == "terminated"


def test_a_snapshot_from_before_the_workstation_was_used_again_is_not_reused(team, monkeypatch):
    """A destroy whose teardown failed leaves a completed snapshot and a stopped instance; the owner
    starts it and works on. The next destroy must snapshot the disk as it is now, not reuse the old one."""
    team.be("olga")
    instance = provisioned(team, "reborn")
    plan = lifecycle.plan_destroy("reborn", None)
    teardown = ec2.teardown

    def broken(*args) -> None:
        raise GpuboxError("teardown failed", "retry")
    monkeypatch.setattr(ec2, "teardown", broken)
    with pytest.raises(GpuboxError, match="teardown failed"):
        lifecycle.destroy_ec2(plan, io.StringIO())
    [old] = tagged_snapshots("reborn")
    client().start_instances(InstanceIds=[instance["InstanceId"]])
    time.sleep(1.5)  # the owner works on; EC2 records stop times to the second
    monkeypatch.setattr(ec2, "teardown", teardown)

    out = io.StringIO()
    lifecycle.destroy_ec2(lifecycle.plan_destroy("reborn", None), out)
    assert "Reusing" not in out.getvalue(), out.getvalue()
    newer = [snap for snap in tagged_snapshots("reborn") if snap["SnapshotId"] != old["SnapshotId"]]
    assert len(newer) == 1 and newer[0]["StartTime"] > old["StartTime"] and newer[0]["State"] == "completed"
    assert state_of(instance["InstanceId"]) == "terminated"


# IT's door: playbooks/teardown.yml (AWX's destroy template) keeps the same final snapshots.


def teardown_playbook(env: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/teardown.yml", "-e", f"gpubox_name={name}",
                           "-e", f"gpubox_region={REGION}"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)


def test_the_teardown_playbook_snapshots_first_and_deletes_nothing_when_a_snapshot_fails(team, faulty):
    kim = team.be("kim")
    instance = provisioned(team, "played")
    [volume] = volumes_of(instance)
    env = {**run_env(Path(team.env["HOME"])), **team.env, "AWS_ENDPOINT_URL": faulty.endpoint}
    faulty.snapshot_state = "error"
    failed = teardown_playbook(env, "played")
    assert failed.returncode != 0 and "is error" in failed.stdout and "Nothing was deleted" in failed.stdout, failed.stdout
    assert state_of(instance["InstanceId"]) == "stopped" and volume_exists(volume)

    faulty.snapshot_state = ""
    done = teardown_playbook(env, "played")
    assert done.returncode == 0, done.stdout + done.stderr
    [snap] = [snap for snap in tagged_snapshots("played") if snap["State"] == "completed"]
    tags = {tag["Key"]: tag["Value"] for tag in snap["Tags"]}
    assert (snap["VolumeId"], tags[contract.TAG_OWNER], tags[snapshots.TAG_VOLUME], tags[contract.TAG_MANAGED]) == (volume, kim, volume, "true")
    assert len(tagged_snapshots("played")) == 1  # moto had completed it (only the proxy said error): reused, not taken twice
    assert state_of(instance["InstanceId"]) == "terminated"


def test_the_teardown_playbook_does_not_reuse_a_snapshot_from_before_the_last_stop(team):
    lena = team.be("lena")
    instance = provisioned(team, "replayed")
    [disk] = lifecycle.plan_destroy("replayed", None).disks
    old, _ = snapshots.start(REGION, "replayed", lena, disk)  # an earlier teardown's, then the owner worked on
    time.sleep(1.5)  # EC2 records stop times to the second
    done = teardown_playbook({**run_env(Path(team.env["HOME"])), **team.env}, "replayed")
    assert done.returncode == 0, done.stdout + done.stderr
    newer = [snap for snap in tagged_snapshots("replayed") if snap["SnapshotId"] != old.snapshot_id]
    assert len(newer) == 1 and newer[0]["State"] == "completed" and newer[0]["StartTime"] > old.started
    assert state_of(instance["InstanceId"]) == "terminated"



# provision --from-snapshot


def test_provision_from_a_snapshot_boots_a_new_instance_from_it(team, sent):
    frank = team.be("frank")
    instance = provisioned(team, "phoenix", instance_type="g5.xlarge")
    [volume] = volumes_of(instance)
    old = lifecycle.plan_destroy("phoenix", None)
    taken = snapshots.keep(REGION, "phoenix", frank, list(old.disks), io.StringIO())
    with pytest.raises(GpuboxError, match="still exists"):
        ec2.provision(request(team, "phoenix", from_snapshot="latest"), io.StringIO())
    client().terminate_instances(InstanceIds=[instance["InstanceId"]])
    sent.clear()

    ec2.provision(request(team, "phoenix", from_snapshot="latest"), io.StringIO())
    [launch] = [params for name, params in sent if name == "RunInstances"]
    [mapping] = launch["BlockDeviceMappings"]
    assert mapping["Ebs"]["SnapshotId"] == taken[0].snapshot_id and "Encrypted" not in mapping["Ebs"]
    [register] = [params for name, params in sent if name == "RegisterImage"]
    assert launch["ImageId"] != instance["ImageId"] and register["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == taken[0].snapshot_id
    [new] = live("phoenix")
    [new_volume] = volumes_of(new)
    assert new["InstanceId"] != instance["InstanceId"] and new_volume != volume
    assert client().describe_volumes(VolumeIds=[new_volume])["Volumes"][0]["SnapshotId"] == taken[0].snapshot_id

    # Someone else's snapshot is refused by ID.
    team.be("grace")
    with pytest.raises(GpuboxError, match="not one of your gpubox snapshots"):
        snapshots.resolve(REGION, "phoenix", "arn:aws:iam::123456789012:user/grace", taken[0].snapshot_id)


def test_spot_is_persistent_and_stops_on_interruption(team, sent):
    team.be("heidi")
    instance = provisioned(team, "cheap", spot=True)
    [launch] = [params for name, params in sent if name == "RunInstances"]
    assert launch["InstanceMarketOptions"] == {"MarketType": "spot", "SpotOptions": {
        "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"}}
    assert instance.get("InstanceLifecycle") == "spot"
    # Its request carries gpubox's tags: the teardown may cancel it (the IAM policy allows only that).
    [request_tags] = [spec["Tags"] for spec in launch["TagSpecifications"] if spec["ResourceType"] == "spot-instances-request"]
    assert {"Key": contract.TAG_MANAGED, "Value": "true"} in request_tags


# prune, cleanup


def test_prune_keeps_exactly_n_of_mine_and_touches_no_one_elses(team):
    _, bob_snapshot = bystander(team)
    ivan = team.be("ivan")
    [volume] = volumes_of(provisioned(team, "many"))
    tags = [{"Key": contract.TAG_MANAGED, "Value": "true"}, {"Key": contract.TAG_NAME, "Value": "many"},
            {"Key": contract.TAG_OWNER, "Value": ivan}]
    made = []
    for _ in range(4):
        made.append(client().create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tags}])["SnapshotId"])
        time.sleep(1.1)  # distinct start times, newest last
    untagged = client().create_snapshot(VolumeId=volume)["SnapshotId"]

    listed = team.runner("snapshots", "prune", "--keep", "2", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert all(f"snapshot {snap} of many (100 GB" in listed.stdout for snap in made[:2])
    assert made[2] not in listed.stdout and bob_snapshot not in listed.stdout
    pruned = team.runner("snapshots", "prune", "--keep", "2", "--yes")
    assert pruned.returncode == 0 and "Deleted 2 snapshot(s)." in pruned.stdout, pruned.stdout + pruned.stderr
    remaining = {snap["SnapshotId"] for snap in client().describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert set(made[2:]) <= remaining and not set(made[:2]) & remaining
    assert {bob_snapshot, untagged} <= remaining
    assert retention.plan_prune(None, "many", 2)[0].doomed == []


def stop_time(instance_id: str) -> datetime:
    item = next(item for item in aws.workstations(REGION) if item.instance_id == instance_id)
    since = cleanup.stopped_since(item)
    assert since is not None, item.transition_reason
    return since


def test_cleanup_selects_only_workstations_stopped_longer_than_the_limit(team):
    bob = team.be("bob")
    bobs = provisioned(team, "bob-idle")
    judy = team.be("judy")
    old, new, busy = (provisioned(team, name) for name in ("judy-old", "judy-new", "judy-busy"))
    client().stop_instances(InstanceIds=[old["InstanceId"]])
    time.sleep(1.2)  # EC2 records stop times to the second
    client().stop_instances(InstanceIds=[new["InstanceId"], bobs["InstanceId"]])
    now = stop_time(old["InstanceId"]) + timedelta(days=14, seconds=0.5)
    assert stop_time(new["InstanceId"]) > stop_time(old["InstanceId"])

    planned = retention.plan_cleanup(None, None, now=now)
    assert [entry.workstation.name for entry in planned.overdue] == ["judy-old"] and planned.days == 14
    assert planned.plans[0].kept and planned.plans[0].owner == judy
    everyone = retention.plan_cleanup(None, 14, any_owner=True, now=now + timedelta(seconds=10))
    assert {"judy-old", "judy-new", "bob-idle"} <= {entry.workstation.name for entry in everyone.overdue}
    assert busy["InstanceId"] not in str(everyone.plans) and bob in {entry.workstation.owner for entry in everyone.overdue}

    shown = list(lifecycle.status(None, None, now=now, read_report=lambda alias: None))
    warned = [line for line in shown if "longer than autostop_stopped_days" in line]
    assert len(warned) == 1 and "destroy --name judy-old" in warned[0]

    rows = {row.name: row.ec2 for row in status.on_ec2(None, None, ask=lambda alias: status.Health())}
    assert rows["judy-old"]["stopped_since"] == stop_time(old["InstanceId"]).isoformat() and rows["judy-busy"]["stopped_since"] is None
    assert rows["judy-old"]["spot_interrupted"] is False

    # The command lists first; a dry run deletes nothing.
    dry = team.runner("cleanup", "--days", "1", "--dry-run")
    assert dry.returncode == 0 and "No workstation of yours has been stopped longer than 1 days." in dry.stdout, dry.stdout


def test_cleanup_skips_a_workstation_started_again_after_it_was_listed(team):
    team.be("mia")
    idle = provisioned(team, "mia-idle")
    client().stop_instances(InstanceIds=[idle["InstanceId"]])
    planned = retention.plan_cleanup(None, 14, now=stop_time(idle["InstanceId"]) + timedelta(days=15))
    assert [entry.workstation.name for entry in planned.overdue] == ["mia-idle"]
    client().start_instances(InstanceIds=[idle["InstanceId"]])  # its owner is back while IT reads the list

    out = io.StringIO()
    assert retention.run_cleanup(planned, out) == []
    assert state_of(idle["InstanceId"]) == "running" and tagged_snapshots("mia-idle") == []
    assert "mia-idle is no longer stopped since" in out.getvalue(), out.getvalue()


def test_a_spot_interruption_is_told_apart_from_a_stop():
    interrupted = aws.Workstation("w", "i-1", "stopped", "g4dn.xlarge", "", None, "me", "us-east-1a",
                                  state_reason="Server.SpotInstanceShutdown",
                                  transition_reason="Service initiated (2026-11-02 03:04:05 GMT)", lifecycle="spot")
    stopped = aws.Workstation("w", "i-2", "stopped", "g4dn.xlarge", "", None, "me", "us-east-1a",
                              state_reason="Client.UserInitiatedShutdown", transition_reason="User initiated (2026-11-02 03:04:05 GMT)")
    assert cleanup.interrupted(interrupted) and not cleanup.interrupted(stopped)
    assert cleanup.stopped_since(stopped) == cleanup.stopped_since(interrupted) == datetime(2026, 11, 2, 3, 4, 5, tzinfo=cleanup.timezone.utc)
    lines = lifecycle.stopped_lines(interrupted, 14, datetime(2026, 11, 3, tzinfo=cleanup.timezone.utc))
    assert len(lines) == 1 and "interrupted: AWS reclaimed the spot capacity" in lines[0] and "runner.py start --name w" in lines[0]
    assert lifecycle.stopped_lines(stopped, 14, datetime(2026, 11, 3, tzinfo=cleanup.timezone.utc)) == []
    assert len(lifecycle.stopped_lines(stopped, 14, datetime(2026, 11, 17, tzinfo=cleanup.timezone.utc))) == 1
    with pytest.raises(GpuboxError):
        cleanup.overdue([stopped], 0)


def test_prune_arithmetic():
    def snap(name: str, minute: int) -> snapshots.Snapshot:
        return snapshots.Snapshot(f"snap-{name}{minute}", name, "me", "vol", "/dev/xvda", 10, "completed",
                                  datetime(2026, 11, 1, 0, minute, tzinfo=cleanup.timezone.utc))
    mine = sorted([snap("a", 1), snap("a", 2), snap("a", 3), snap("b", 1)], key=lambda item: item.started)
    assert [item.snapshot_id for item in snapshots.to_prune(mine, 1)] == ["snap-a1", "snap-a2"]
    assert [item.snapshot_id for item in snapshots.to_prune(mine, 0)] == ["snap-a1", "snap-a2", "snap-a3", "snap-b1"]
    assert snapshots.to_prune(mine, 3) == []
    with pytest.raises(GpuboxError):
        snapshots.to_prune(mine, -1)


def test_prune_keeps_n_of_each_disk_not_n_of_the_workstation():
    """A destroy of a workstation with a root and a data disk keeps two snapshots; --keep 1 keeps both."""
    def snap(device: str, minute: int) -> snapshots.Snapshot:
        return snapshots.Snapshot(f"snap-{device[-4:]}{minute}", "two", "me", f"vol-{device[-4:]}", device, 10, "completed",
                                  datetime(2026, 11, 1, 0, minute, tzinfo=cleanup.timezone.utc))
    mine = [snap("/dev/xvda", 1), snap("/dev/sdf", 2), snap("/dev/xvda", 3), snap("/dev/sdf", 4)]
    assert [item.snapshot_id for item in snapshots.to_prune(mine, 1)] == ["snap-xvda1", "snap-/sdf2"]


def test_prune_counts_only_completed_snapshots_and_never_deletes_a_pending_one():
    """A failed destroy's `error` snapshot is newer than the last good one: --keep 1 must keep the good one;
    a `pending` one (a destroy waiting on it) is never deleted."""
    def snap(minute: int, state: str) -> snapshots.Snapshot:
        return snapshots.Snapshot(f"snap-{state}{minute}", "w", "me", "vol", "/dev/xvda", 10, state,
                                  datetime(2026, 11, 1, 0, minute, tzinfo=cleanup.timezone.utc))
    mine = [snap(1, "completed"), snap(2, "completed"), snap(3, "error"), snap(4, "pending")]
    assert [item.snapshot_id for item in snapshots.to_prune(mine, 1)] == ["snap-completed1", "snap-error3"]
    assert [item.snapshot_id for item in snapshots.to_prune(mine, 0)] == ["snap-completed1", "snap-completed2", "snap-error3"]


def test_the_teardown_cancels_the_persistent_spot_request_first_and_only_its_own(team):
    """A persistent spot request whose instance is terminated launches a new one (an empty disk, a
    bill): teardown cancels the workstation's request, and no one else's."""
    owner = team.be("mia")
    image = client().describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def spot_request() -> tuple[str, str]:
        [made] = client().request_spot_instances(Type="persistent", InstanceInterruptionBehavior="stop",
                                                 LaunchSpecification={"ImageId": image, "InstanceType": "t3.micro"},
                                                 )["SpotInstanceRequests"]
        [found] = client().describe_spot_instance_requests(SpotInstanceRequestIds=[made["SpotInstanceRequestId"]])["SpotInstanceRequests"]
        return found["SpotInstanceRequestId"], found["InstanceId"]

    mine, instance_id = spot_request()
    client().create_tags(Resources=[instance_id], Tags=[{"Key": contract.TAG_MANAGED, "Value": "true"},
                                                        {"Key": contract.TAG_NAME, "Value": "spotty"},
                                                        {"Key": contract.TAG_OWNER, "Value": owner}])
    theirs, their_instance = spot_request()
    done = teardown_playbook({**run_env(Path(team.env["HOME"])), **team.env}, "spotty")
    assert done.returncode == 0, done.stdout + done.stderr
    states = {request["SpotInstanceRequestId"]: request["State"]
              for request in client().describe_spot_instance_requests()["SpotInstanceRequests"]}
    assert states.get(mine, "cancelled") == "cancelled" and states[theirs] == "active", states  # moto forgets cancelled ones
    assert state_of(instance_id) == "terminated" and state_of(their_instance) == "running"
