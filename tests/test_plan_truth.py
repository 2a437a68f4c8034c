"""`plan` tells the truth about what provision makes and destroy keeps (issue 31): every option
provision takes, any instance type (an unknown price reads "unknown"), the snapshot destroy keeps
and its monthly cost, an SSH range open to the internet as a warning, the region's own prices, and
the same spec and launch facts the real run reads. Read from the rendered page, no AWS."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gpubox import cli, plan, render, settings, validate
from gpubox.cloud import cost as region_cost
from gpubox.cloud import launch, snapshots
from gpubox.cloud.spec import DEFAULTS, OPERATING_SYSTEMS
from gpubox.commands import lifecycle
from gpubox.document import money
from test_plan import NO_AWS


@pytest.fixture
def offline(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """runner.py's own main() in this process, with no credentials and AWS unreachable."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in NO_AWS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.chdir(home)
    return home


def page(home: Path, *options: str) -> str:
    """`plan` as the CLI runs it; the Markdown page it wrote."""
    written = home / "plan.md"
    assert cli.main(["plan", "--name", "alice", "--format", "md", "--output", str(written), *options]) == 0
    return written.read_text()


def refused(capsys: pytest.CaptureFixture[str], *options: str) -> str:
    assert cli.main(["plan", "--name", "alice", "--format", "md", *options]) == 2
    return capsys.readouterr().err


def row(text: str, label: str) -> str:
    """The value of the page's row `label` (the first one)."""
    found = re.search(rf"^\| \*\*{re.escape(label)}\*\* \| (.*) \|$", text, re.MULTILINE)
    assert found, f"no row {label!r} in:\n{text}"
    return found.group(1)


def section(text: str, title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return found.group(1) if found else ""


def build(**options) -> plan.Request:
    return plan.Request(name="alice", owner="alice", region=options.pop("region", "us-east-1"), **options)


def markdown(request: plan.Request) -> str:
    return render.render(plan.build(request, settings.load()), "md")


def test_an_instance_type_without_a_price_reads_unknown(offline):
    text = page(offline, "--instance-type", "m5.large")
    assert row(text, "Hourly price").startswith("unknown: gpubox has no price for m5.large")
    worst = row(text, "Worst case per month")
    assert worst.startswith("cannot be priced: 24 h a day") and "$" not in worst
    assert row(text, "Expected per month").startswith("unknown:")
    assert row(text, "GPU") == "unknown"
    assert "Unknown price" in section(text, "Warnings")
    assert "price unknown (gpubox has no price for m5.large), so the worst case cannot be priced" in text.splitlines()[2]
    # Figures that do not need the instance's price are still given: 100 GB x $0.08.
    assert row(text, "Disk per month").startswith("$8.00 ")
    # A known type has no such warning and a price.
    known = page(offline, "--instance-type", "g5.xlarge")
    assert "## Warnings" not in known and row(known, "Hourly price").startswith("$1.006 per hour")


def test_plan_refuses_what_provision_refuses(offline, capsys):
    """The same rules as provision's dry run (commands/provision.check_cloud, check_start)."""
    assert "is not an EC2 instance type" in refused(capsys, "--instance-type", "g4dn")
    assert "--deadman-minutes" in refused(capsys, "--deadman-minutes", "5")
    assert "--image and --ami both" in refused(capsys, "--image", "latest", "--ami", "ami-0123456789abcdef0")
    assert "both choose the disk to start from" in refused(capsys, "--image", "latest", "--from-snapshot", "latest")
    assert "--from-snapshot nope" in refused(capsys, "--from-snapshot", "nope")
    assert "has bits set after the /8 prefix" in refused(capsys, "--allow-cidr", "203.0.113.7/8")


def test_plan_describes_os_deadman_image_and_snapshot_workstations(offline):
    ubuntu = OPERATING_SYSTEMS["ubuntu-24.04"]
    text = page(offline, "--os", "ubuntu-24.04", "--deadman-minutes", "45")
    image = row(text, "Image")
    assert f"AWS account {ubuntu.owner}, name {ubuntu.name_pattern}" in image and "not exercised by the test suite" in image
    assert "powers itself off after 45 min" in image
    assert "--os ubuntu-24.04" in row(text, "Once approved") and "--deadman-minutes 45" in row(text, "Once approved")

    default = OPERATING_SYSTEMS[DEFAULTS.os]
    text = page(offline)
    assert f"AWS account {default.owner}, name {default.name_pattern}" in row(text, "Image")
    assert f"powers itself off after {DEFAULTS.deadman_minutes} min" in row(text, "Image")

    text = page(offline, "--image", "latest:cuda")
    assert row(text, "Image").startswith("the baked image latest:cuda")
    assert "--image latest:cuda" in row(text, "Once approved")

    text = page(offline, "--from-snapshot", "latest")
    assert row(text, "Image").startswith("an image of the newest snapshot of alice (what destroy kept)")
    assert row(text, "Disk").startswith("made from snapshot latest")
    assert "--from-snapshot latest" in row(text, "Once approved")


def test_the_page_says_destroy_keeps_a_snapshot_and_what_it_costs(offline):
    for disk_gb in (100, 250):
        text = page(offline, "--disk-gb", str(disk_gb))
        # In us-east-1, exactly what `destroy` prints for the snapshot it keeps (snapshots.monthly_cost):
        # by hand, 100 GB x $0.05 = $5.00 and 250 GB x $0.05 = $12.50.
        kept = {100: "$5.00", 250: "$12.50"}[disk_gb]
        assert money(snapshots.monthly_cost(disk_gb, "us-east-1")) == kept
        assert row(text, "After destroy per month").startswith(f"at most {kept}: the final snapshot `destroy` keeps")
        disk = row(text, "Disk")
        assert f"`destroy` first keeps a final snapshot of it (at most {kept} a month" in disk
        assert "deleted with the instance" not in text
        assert "keeps a final snapshot of it (unless --no-snapshot)" in row(text, "Data")
    # Elsewhere at that region's snapshot price: eu-central-1, 100 GB x $0.05 x 1.25 = $6.25, and
    # destroy quotes the same figure for the snapshot it keeps there.
    assert row(page(offline, "--region", "eu-central-1"), "After destroy per month").startswith("at most $6.25")
    disk = snapshots.Disk(volume_id="vol-0123456789abcdef0", size_gb=100, device="/dev/xvda", instance_id="i-0", root=True)
    destroy = lifecycle.DestroyPlan(name="alice", region="eu-central-1", resources={}, disks=(disk,))
    assert destroy.kept == ["a snapshot of vol-0123456789abcdef0 (100 GB, root disk): up to ~$6.25/month until you prune it"]


@pytest.mark.parametrize(("ranges", "open_ones"), [
    ("0.0.0.0/0", ["0.0.0.0/0"]),
    ("2.0.0.0/7", ["2.0.0.0/7"]),  # two /8s of public addresses
    ("4.0.0.0/8", []),  # one /8: the widest range that is not a warning
    ("203.0.113.0/24,0.0.0.0/1", ["0.0.0.0/1"]),
    ("203.0.113.0/24", []),
    ("10.0.0.0/8", []),  # private: no public address at all
])
def test_an_ssh_range_open_to_the_internet_is_a_warning(ranges, open_ones):
    request = build(allow_cidr=ranges)
    text = markdown(request)
    warned = section(text, "Warnings")
    for wide in open_ones:
        assert f"--allow-cidr {wide} admits more public addresses than a /8" in warned
        assert f"(WARNING: {wide} is open to the whole internet)" in row(text, "Network")
    assert bool(warned) == bool(open_ones)
    assert f"{len(open_ones)} warning(s)" in text if open_ones else "warning" not in text.splitlines()[2]
    # The rule is the CLI's own (validate.too_open), not a second copy of it.
    assert [str(net) for net in validate.cidrs(ranges) if validate.too_open(net)] == open_ones
    html = render.render(plan.build(request, settings.load()), "html")
    assert ("<h2>Warnings</h2>" in html) == bool(open_ones)
    if open_ones:  # first on the page, before the request itself
        assert html.index("<h2>Warnings</h2>") < html.index("<h2>Request</h2>")


def test_plan_with_an_open_range_on_the_command_line(offline):
    text = page(offline, "--allow-cidr", "0.0.0.0/0")
    assert "Open SSH range" in section(text, "Warnings")
    assert "--allow-cidr 0.0.0.0/0" in row(text, "Once approved")


def test_each_region_is_priced_at_its_own_price(offline):
    east, frankfurt = page(offline, "--region", "us-east-1"), page(offline, "--region", "eu-central-1")
    assert row(east, "Hourly price").startswith("$0.526 per hour")
    # g4dn.xlarge: $0.526 x eu-central-1's factor 1.25 = $0.6575 an hour; disk 100 GB x $0.08 x 1.25 = $10.00.
    assert region_cost.hourly("g4dn.xlarge", "eu-central-1") == pytest.approx(0.6575)
    assert row(frankfurt, "Hourly price").startswith(f"${0.526 * 1.25:.3f} per hour")
    assert row(east, "Hourly price") != row(frankfurt, "Hourly price")
    assert row(frankfurt, "Disk per month").startswith("$10.00 ")
    assert "(this request)" in row(frankfurt, "eu-central-1") and "(this request)" not in row(frankfurt, "us-east-1")


def test_the_page_reads_the_spec_and_the_launch_facts_of_the_real_run(monkeypatch):
    request = build()
    for field in ("instance_type", "disk_gb", "os", "spot", "deadman_minutes"):
        assert getattr(request, field) == getattr(DEFAULTS, field), field
    spec = launch.Spec(name="alice", region="us-east-1", instance_type=request.instance_type, disk_gb=request.disk_gb,
                       spot=request.spot, allow_cidr="", ami="", os=request.os, public_key="", login_name="alice",
                       deadman_minutes=request.deadman_minutes)
    disk = launch.root_disk(spec)
    text = markdown(request)
    assert row(text, "Disk").startswith(f"{disk['VolumeSize']} GB {disk['VolumeType']}, encrypted")
    assert row(text, "On shutdown").startswith(launch.SHUTDOWN_BEHAVIOUR)
    assert f"SSH ({launch.SSH_PORT}/tcp)" in row(text, "Network")
    # The page follows launch.py when it changes, rather than a copy of its own.
    monkeypatch.setattr(launch, "VOLUME_TYPE", "io2")
    monkeypatch.setattr(launch, "SHUTDOWN_BEHAVIOUR", "terminate")
    monkeypatch.setattr(launch, "METADATA", {**launch.METADATA, "HttpPutResponseHopLimit": 2})
    changed = markdown(request)
    assert row(changed, "Disk").startswith(f"{disk['VolumeSize']} GB io2, encrypted")
    assert row(changed, "On shutdown").startswith("terminate")
    assert "hop limit 2" in row(changed, "Instance metadata")


def test_the_approved_command_is_what_provision_parses_back(offline):
    """The page's "Once approved" line, read by provision's own parser, asks for what the page shows."""
    text = page(offline, "--region", "eu-central-1", "--instance-type", "g5.xlarge", "--disk-gb", "150", "--os", "ubuntu-24.04",
                "--deadman-minutes", "45", "--from-snapshot", "latest", "--allow-cidr", "203.0.113.0/24")
    command = shlex.split(row(text, "Once approved").strip("`"))
    assert command[:3] == ["python", "runner.py", "provision"]
    args = cli.build_parser().parse_args(command[2:])
    assert (args.region, args.instance_type, args.disk_gb, args.os, args.deadman_minutes, args.from_snapshot, args.allow_cidr) == (
        "eu-central-1", "g5.xlarge", 150, "ubuntu-24.04", 45, "latest", ["203.0.113.0/24"])
    assert args.plan_ref == row(text, "Reference")
