"""Filters for the ssh_access role: the data scientists' list checked against the key policy.

Everything wrong is reported at once, each problem naming the user and the fix, so one run tells
IT all it must change; the role stops before any change when the list is not empty.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct

USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Accounts that exist on every image or belong to the system: never managed as data scientists.
RESERVED = {
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "systemd-network", "systemd-resolve",
    "messagebus", "sshd", "_apt", "syslog", "admin", "ubuntu", "ec2-user",
}
ALLOWED_TYPES = {
    "ssh-ed25519", "sk-ssh-ed25519@openssh.com",
    "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
}
ADVICE = "use ed25519 (ssh-keygen -t ed25519), ecdsa, or RSA of at least {bits} bits"
# authorized_keys options may precede the key type; they are not allowed here (the list is exact).
KEY_LINE = re.compile(r"^(?P<type>[a-z0-9@.-]+)\s+(?P<blob>[A-Za-z0-9+/=]+)(?:\s+(?P<comment>.*))?$")


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    (length,) = struct.unpack(">I", blob[offset:offset + 4])
    start = offset + 4
    if start + length > len(blob):
        raise ValueError("truncated key")
    return blob[start:start + length], start + length


def ssh_key_info(line: str) -> dict:
    """Type, size and validity of one public key line (`type base64 [comment]`)."""
    match = KEY_LINE.match(line.strip()) if isinstance(line, str) else None
    if not match:
        return {"valid": False, "type": "", "bits": 0, "problem": "is not a public key line ('type base64 comment')"}
    key_type = match.group("type")
    try:
        blob = base64.b64decode(match.group("blob"), validate=True)
        embedded, offset = _read_string(blob, 0)
    except (binascii.Error, ValueError, struct.error):
        return {"valid": False, "type": key_type, "bits": 0, "problem": "is malformed (its base64 data does not decode)"}
    if embedded.decode(errors="replace") != key_type:
        return {"valid": False, "type": key_type, "bits": 0, "problem": f"is malformed (says {key_type}, contains {embedded.decode(errors='replace')})"}
    bits = 0
    try:
        if key_type == "ssh-rsa":
            _, offset = _read_string(blob, offset)  # public exponent
            modulus, offset = _read_string(blob, offset)
            bits = int.from_bytes(modulus, "big").bit_length()
        elif key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
            point, offset = _read_string(blob, offset)
            if len(point) != 32:
                raise ValueError("bad ed25519 key")
            bits = 256
        elif key_type.startswith(("ecdsa-", "sk-ecdsa-")):
            curve, offset = _read_string(blob, offset)
            _, offset = _read_string(blob, offset)
            bits = {b"nistp256": 256, b"nistp384": 384, b"nistp521": 521}.get(curve, 0)
        elif key_type == "ssh-dss":
            prime, offset = _read_string(blob, offset)
            bits = int.from_bytes(prime, "big").bit_length()
    except (ValueError, struct.error):
        return {"valid": False, "type": key_type, "bits": 0, "problem": "is malformed (truncated key data)"}
    return {"valid": True, "type": key_type, "bits": bits, "problem": ""}


def ssh_access_problems(users, min_rsa_bits: int = 3072) -> list[str]:
    """Every problem with the gpubox_users list, as sentences naming the user and the fix."""
    problems: list[str] = []
    if not isinstance(users, list):
        return [f"gpubox_users must be a list of users, got {type(users).__name__}"]
    seen: set[str] = set()
    for index, user in enumerate(users, start=1):
        if not isinstance(user, dict) or "name" not in user:
            problems.append(f"gpubox_users entry {index} has no name: give each user a name and ssh_keys")
            continue
        name = str(user["name"])
        where = f"user '{name}'"
        if not USER_NAME.match(name):
            problems.append(f"{where}: invalid user name; use lower-case letters, digits, '_' or '-', starting with a letter (at most 32)")
        elif name in RESERVED:
            problems.append(f"{where}: is a system or image account and cannot be a data scientist; choose another name")
        if name in seen:
            problems.append(f"{where}: is listed more than once; keep one entry per user")
        seen.add(name)
        state = user.get("state", "present")
        if state not in ("present", "absent"):
            problems.append(f"{where}: state '{state}' is not present or absent")
        keys = user.get("ssh_keys", [])
        if isinstance(keys, str) or not isinstance(keys, list):
            problems.append(f"{where}: ssh_keys must be a list of public key lines")
            continue
        if state == "present" and not keys:
            problems.append(f"{where}: has no ssh_keys; add the user's public key (or set state: absent)")
        for number, key in enumerate(keys, start=1):
            info = ssh_key_info(key)
            label = f"{where}: key {number}"
            if not info["valid"]:
                problems.append(f"{label} {info['problem']}; paste the whole line of the .pub file")
            elif info["type"] == "ssh-dss":
                problems.append(f"{label} is DSA, which is broken and refused; {ADVICE.format(bits=min_rsa_bits)}")
            elif info["type"] not in ALLOWED_TYPES:
                problems.append(f"{label} has type {info['type']}, which is not allowed; {ADVICE.format(bits=min_rsa_bits)}")
            elif info["type"] == "ssh-rsa" and info["bits"] < min_rsa_bits:
                problems.append(f"{label} is RSA of {info['bits']} bits, below the {min_rsa_bits}-bit minimum; {ADVICE.format(bits=min_rsa_bits)}")
    return problems


def ssh_access_account_changes(present: list[dict], seen: dict[str, dict], shell: str, home_mode: str) -> list[dict]:
    """The present users whose account differs from the list: missing, outside the group, another
    shell, an expiry date (a revoked account) or a home of another mode.

    `seen` is the probe's `users` (name -> what the host has); only these users are touched, so a
    no-change run does no per-user work.
    """
    changes = []
    for user in present:
        account = seen[user["name"]]
        if (not account["exists"] or not account["in_group"] or account["shell"] != shell
                or account["expire"] != -1 or account["home_mode"] != home_mode):
            changes.append(user)
    return changes


def ssh_access_key_changes(present: list[dict], seen: dict[str, dict]) -> list[dict]:
    """The present users whose authorized_keys lines are not exactly their listed keys (order and
    surrounding blanks aside); `seen` is the probe's `users`."""
    return [user for user in present
            if sorted(seen[user["name"]]["key_lines"]) != sorted(key.strip() for key in user.get("ssh_keys", []))]


def ssh_access_with_owner(users, owner_name: str = "") -> list:
    """The team list with the workstation's owner given sudo: the entry named `owner_name` (the
    instance's owner tag, composed by inventory/aws_ec2.yml), when it is present.

    The tag only selects among users IT listed: an owner who is not listed, or is listed as absent,
    gets nothing (no keys, no account), so whoever can tag an instance cannot create an account.
    Anything that is not a list is returned as it is, for ssh_access_problems to report.
    """
    if not owner_name or not isinstance(users, list):
        return users
    return [{**user, "sudo": True}
            if isinstance(user, dict) and user.get("name") == owner_name and user.get("state", "present") == "present"
            else user
            for user in users]


class FilterModule:
    def filters(self):
        return {
            "ssh_key_info": ssh_key_info,
            "ssh_access_problems": ssh_access_problems,
            "ssh_access_account_changes": ssh_access_account_changes,
            "ssh_access_key_changes": ssh_access_key_changes,
            "ssh_access_with_owner": ssh_access_with_owner,
        }
