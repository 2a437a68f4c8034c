"""The user's config file (gpubox/userconfig.py) and --allow-cidr's ranges: a file's values reach a
provision on moto, flags win over it, `config show` names each source, and a bad file is refused
with its file, key, line and fix before anything runs."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from gpubox import cli, validate, workstation
from gpubox.commands import provision

MOTO_REGION = "eu-west-1"


def write_config(home: Path, text: str) -> Path:
    config = home / ".config" / "gpubox" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    return config


class Configuring(BaseException):
    """Raised where provision would start configuring over SSH: the EC2 part is done by then."""


def test_the_config_files_region_type_and_two_ranges_reach_a_moto_provision(aws_env, home, monkeypatch):
    write_config(home, f'region = "{MOTO_REGION}"\ninstance_type = "g5.xlarge"\n'
                       'allow_cidr = ["198.51.100.0/24", "203.0.113.0/24"]\n')
    ec2 = boto3.client("ec2", region_name=MOTO_REGION)
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]["ImageId"]

    def configure(*_args, **_kwargs):
        raise Configuring

    monkeypatch.setattr(workstation, "configure", configure)
    with pytest.raises(Configuring):
        cli.main(["provision", "--name", "cfg", "--ami", image, "--connect", "127.0.0.1:1"])
    [instance] = [item for reservation in ec2.describe_instances(Filters=[{"Name": "tag:gpubox:name", "Values": ["cfg"]}])["Reservations"]
                  for item in reservation["Instances"]]
    assert instance["InstanceType"] == "g5.xlarge"
    [group] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["gpubox-cfg"]}])["SecurityGroups"]
    ranges = sorted(item["CidrIp"] for rule in group["IpPermissions"] if rule["FromPort"] == 22 for item in rule["IpRanges"])
    assert ranges == ["198.51.100.0/24", "203.0.113.0/24"]


def test_flags_win_over_the_file_and_config_show_names_each_source(home, capsys, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    config = write_config(home, '# mine\nregion = "eu-west-1"\ninstance_type = "g5.xlarge"\n')
    assert cli.main(["config", "show", "--instance-type", "g6.xlarge"]) == 0
    out = capsys.readouterr().out
    shown = dict(zip(out.splitlines()[1::2], out.splitlines()[2::2]))
    assert shown["  region                eu-west-1"].strip() == f"from: {config} line 2"
    assert shown["  instance_type         g6.xlarge"].strip() == "from: command line (--instance-type)"
    assert shown["  data                  (not set)"].strip() == "from: built-in default"


@pytest.mark.parametrize(("text", "line", "words"), [
    ('region = "eu-west-1"\n\nregoin = "eu-west-2"\n', 3, "regoin: unknown key."),
    ('instance_type = "g5.xlarge"\nidle_stop = "ten"\n', 2, "idle_stop: 'ten' is not the right kind of value."),
    ('allow_cidr = ["198.51.100.0/24", "10.0.0.1/8"]\n', 1, "allow_cidr: allow_cidr 10.0.0.1/8 has bits set"),
    ('default_name = "Alice"\n', 1, "default_name: Workstation name 'Alice' is not allowed."),
    ('requester_name = "Alice Martin"\nrequester_email = "alice at example"\n', 2,
     "requester_email: requester_email 'alice at example' is not an e-mail address."),
])
def test_a_bad_config_file_is_refused_with_file_key_line_and_fix(home, capsys, text, line, words):
    config = write_config(home, text)
    assert cli.main(["status", "--local"]) == 2
    error, fix = [row for row in capsys.readouterr().err.splitlines() if row]
    assert error == f"error: {config} line {line}: {words}" or error.startswith(f"error: {config} line {line}: {words}")
    assert fix.startswith("  -> ") and len(fix) > 10


def test_broken_toml_names_the_file_and_line(home, capsys):
    config = write_config(home, 'region = eu-west-1\n')
    assert cli.main(["status", "--local"]) == 2
    assert f"{config} is not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize(("cidr", "open_"), [("0.0.0.0/0", True), ("0.0.0.0/1", True), ("8.0.0.0/7", True), ("1.0.0.0/8", False),
                                             ("10.0.0.0/7", False), ("198.51.100.0/24", False), ("::/0", True),
                                             ("2000::/3", True), ("2001:db8::/32", False)])
def test_a_range_wider_than_a_slash_8_of_public_addresses_is_open(cidr, open_):
    assert validate.too_open(validate.cidr(cidr)) is open_


def test_a_half_internet_range_needs_yes_even_beside_a_narrow_one(home, capsys):
    argv = ["provision", "--name", "wide", "--dry-run", "--allow-cidr", "198.51.100.0/24", "--allow-cidr", "0.0.0.0/1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "0.0.0.0/1" in err and "--yes" in err
    assert cli.main([*argv, "--yes"]) == 0
    assert "SSH (22/tcp) from 198.51.100.0/24, 0.0.0.0/1 only" in capsys.readouterr().out


def test_a_private_range_for_a_public_instance_is_warned_about(home):
    plan = provision.plan_ec2(provision.Target(name="lan"), provision.Cloud(dry_run=True, allow_cidr="10.1.0.0/16,198.51.100.0/24"))
    assert plan.private_ranges == ["10.1.0.0/16"] and not plan.open_to_everyone
    reached_privately = provision.plan_ec2(provision.Target(name="lan"),
                                           provision.Cloud(dry_run=True, allow_cidr="10.1.0.0/16", connect="10.1.2.3:22"))
    assert reached_privately.private_ranges == []


def test_the_config_files_data_is_left_out_of_a_local_provision(home, monkeypatch):
    """data in the config file is for EC2 (an instance role); --local and --host have none, and the
    file's default must not make every local provision fail. A --data typed with --local still is refused."""
    write_config(home, 'data = ["s3://team-data/churn"]\n')
    seen = []
    monkeypatch.setattr("gpubox.commands.provision_cli.cmd_configure", lambda args: seen.append(args.data) or 0)
    assert cli.main(["provision", "--local"]) == 0 and seen == [None]
    assert cli.main(["provision", "--local", "--data", "s3://team-data/x"]) == 2
