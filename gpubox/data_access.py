"""`provision --data s3://BUCKET[/PREFIX][:rw]`: the grants a data scientist asks for, checked
before anything is created, and the one IAM policy document that allows exactly them.

Read-only unless `:rw`: list on the prefix, get below it; `:rw` adds put and delete, nothing more.
No AWS call here: gpubox/cloud/data_role.py puts the document on the workstation's role.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gpubox.errors import GpuboxError

SCHEME = "s3://"
READ_ACTIONS = ["s3:GetObject"]
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject"]
LIST_ACTION = "s3:ListBucket"
# IAM's limit on a role's inline policies, in characters without white space.
MAX_POLICY_CHARS = 10240
EXAMPLE = "--data s3://my-team-data/projects/churn (read-only) or --data s3://my-team-scratch/alice:rw"

# S3's rules for general purpose bucket names (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
BUCKET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# IAM reads these as wildcards or policy variables in a resource or condition: a prefix holding one
# would grant more than it names.
WILDCARDS = ("*", "?", "${")
SID_PATTERN = re.compile(r"^(List|Read|Write)([0-9]+)$")


@dataclass(frozen=True)
class Grant:
    """One bucket (and key prefix, "" for the whole bucket) the workstation may read, or also write."""

    bucket: str
    prefix: str = ""
    write: bool = False

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"

    @property
    def objects_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}/{self.prefix}/*" if self.prefix else f"arn:aws:s3:::{self.bucket}/*"

    @property
    def bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"

    def __str__(self) -> str:
        return f"{self.url} ({'read-write' if self.write else 'read-only'})"


def _refuse(value: str, why: str, fix: str = EXAMPLE) -> GpuboxError:
    return GpuboxError(f"--data {value}: {why}", fix, exit_code=2)


def bucket_problem(bucket: str) -> str:
    """Why S3 would refuse this bucket name ("" when it would not)."""
    if not 3 <= len(bucket) <= 63:
        return f"bucket name '{bucket}' is {len(bucket)} characters long; S3 bucket names have 3 to 63"
    if not BUCKET_PATTERN.match(bucket):
        return (f"bucket name '{bucket}' is not one S3 allows: lowercase letters, digits, '.' and '-' only, "
                "starting and ending with a letter or digit")
    if ".." in bucket:
        return f"bucket name '{bucket}' has two periods in a row, which S3 does not allow"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return f"bucket name '{bucket}' looks like an IP address, which S3 does not allow"
    reserved = [part for part in BUCKET_RESERVED_PREFIXES if bucket.startswith(part)]
    reserved += [part for part in BUCKET_RESERVED_SUFFIXES if bucket.endswith(part)]
    if reserved:
        return f"bucket name '{bucket}' uses '{reserved[0]}', which S3 reserves"
    return ""


def parse(value: str) -> Grant:
    """s3://BUCKET[/PREFIX][:rw] as a Grant; anything else is refused with the value and the fix."""
    if any(mark in value for mark in WILDCARDS):
        raise _refuse(value, "wildcards ('*', '?', '${') are not allowed; name the bucket and prefix exactly",
                      "Drop the wildcard: a prefix already covers everything below it, e.g. --data s3://my-team-data/projects")
    if not value.startswith(SCHEME):
        raise _refuse(value, f"not an S3 URL (it must start with {SCHEME})")
    rest, write = value[len(SCHEME):], False
    if rest.endswith((":rw", ":ro")):
        rest, write = rest[:-3], rest.endswith(":rw")
    if ":" in rest:
        raise _refuse(value, "':' is only allowed as the :rw (read-write) or :ro (read-only) ending")
    if any(ord(char) < 32 or ord(char) == 127 for char in rest) or " " in rest:
        raise _refuse(value, "spaces and control characters are not allowed")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise _refuse(value, "no bucket name after s3://")
    problem = bucket_problem(bucket)
    if problem:
        raise _refuse(value, problem, "Use the bucket's name exactly as S3 shows it, e.g. " + EXAMPLE)
    prefix = prefix.rstrip("/")
    if prefix.startswith("/") or "//" in prefix:
        raise _refuse(value, "the prefix has an empty path segment ('//')")
    if any(part in (".", "..") for part in prefix.split("/")):
        raise _refuse(value, "'.' and '..' are not allowed as prefix segments")
    return Grant(bucket=bucket, prefix=prefix, write=write)


def parse_all(values: Iterable[str] | None) -> tuple[Grant, ...]:
    """Every --data value, checked; the same bucket and prefix twice with different access is refused."""
    grants: dict[tuple[str, str], Grant] = {}
    for value in values or ():
        grant = parse(value)
        key = (grant.bucket, grant.prefix)
        if key in grants and grants[key].write != grant.write:
            raise _refuse(value, f"{grant.url} is given twice, once read-only and once read-write",
                          f"Give it once: --data {grant.url}:rw for read-write, --data {grant.url} for read-only.")
        grants[key] = grant
    found = tuple(grants.values())
    if found and len(json.dumps(policy(found), separators=(",", ":"))) > MAX_POLICY_CHARS:
        raise GpuboxError(f"{len(found)} --data locations make a policy larger than IAM allows ({MAX_POLICY_CHARS} characters).",
                          "Grant fewer, broader prefixes (a prefix covers everything below it).", exit_code=2)
    return found


def statements(grant: Grant, number: int) -> list[dict]:
    """The statements of one grant: list on its prefix, get below it, and put/delete for :rw."""
    listing: dict = {"Sid": f"List{number}", "Effect": "Allow", "Action": LIST_ACTION, "Resource": grant.bucket_arn}
    if grant.prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [grant.prefix, f"{grant.prefix}/*"]}}
    made = [listing, {"Sid": f"Read{number}", "Effect": "Allow", "Action": list(READ_ACTIONS), "Resource": grant.objects_arn}]
    if grant.write:
        made.append({"Sid": f"Write{number}", "Effect": "Allow", "Action": list(WRITE_ACTIONS), "Resource": grant.objects_arn})
    return made


def policy(grants: Iterable[Grant]) -> dict:
    """The whole policy document: the statements of every grant, numbered from 1, and nothing else."""
    return {"Version": "2012-10-17",
            "Statement": [statement for number, grant in enumerate(grants, 1) for statement in statements(grant, number)]}


def statement_lines(grants: Iterable[Grant]) -> list[str]:
    """Each statement on one line, for --dry-run and `plan`."""
    lines = []
    for statement in policy(grants)["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        condition = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        where = f" where s3:prefix is {' or '.join(condition)}" if condition else ""
        lines.append(f"Allow {', '.join(actions)} on {statement['Resource']}{where}")
    return lines


def grants_of(document: dict) -> list[Grant]:
    """The grants a policy document built by `policy` allows (for `status`); others' statements are skipped."""
    found: dict[int, Grant] = {}
    for statement in document.get("Statement", []):
        sid = SID_PATTERN.match(str(statement.get("Sid", "")))
        resource = statement.get("Resource")
        if not sid or sid.group(1) == "List" or not isinstance(resource, str) or not resource.startswith("arn:aws:s3:::"):
            continue
        bucket, _, prefix = resource.removeprefix("arn:aws:s3:::").removesuffix("/*").partition("/")
        number = int(sid.group(2))
        write = sid.group(1) == "Write" or (number in found and found[number].write)
        found[number] = Grant(bucket=bucket, prefix=prefix, write=write)
    return [found[number] for number in sorted(found)]
