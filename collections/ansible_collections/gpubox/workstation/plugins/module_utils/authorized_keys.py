# Copyright: gpubox
# Apache-2.0
"""Which keys an account logs in with: IT's root-owned file for the data scientists' group (sshd's
`Match Group ... AuthorizedKeysFile /etc/ssh/authorized_keys/%u`), the home's files for everyone
else. Read without following links (module_utils.safe_files), so no user can point root elsewhere."""

from __future__ import annotations

import grp
import pwd

from ansible_collections.gpubox.workstation.plugins.module_utils.safe_files import read_user_file

MANAGED_KEYS_DIR = "/etc/ssh/authorized_keys"
HOME_KEY_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")


def managed_keys(name: str) -> str | None:
    """The text of MANAGED_KEYS_DIR/NAME when it is a root-owned regular file reached without links."""
    # The anchor is /etc/ssh and every step must be root's: nothing a user controls is followed.
    return read_user_file(MANAGED_KEYS_DIR, name, 0)


def key_blobs(text: str) -> list[str]:
    """The base64 field of every key line (options may precede the key type)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        for index, part in enumerate(parts[:-1]):
            if part.startswith(("ssh-", "ecdsa-", "sk-")):
                found.append(parts[index + 1])
                break
    return found


def groups_of(entry: pwd.struct_passwd) -> set[str]:
    """Every group of the account, its primary group included (as sshd's Match Group sees it)."""
    return {group.gr_name for group in grp.getgrall() if entry.pw_name in group.gr_mem} | {grp.getgrgid(entry.pw_gid).gr_name}


def login_key_blobs(entry: pwd.struct_passwd, managed_group: str) -> list[str]:
    """The key blobs sshd lets the account log in with: only IT's file for a member of
    managed_group (none without one: its home's keys do not count there), else its home's files."""
    if managed_group and managed_group in groups_of(entry):
        return key_blobs(managed_keys(entry.pw_name) or "")
    return key_blobs("\n".join(read_user_file(entry.pw_dir, relative, entry.pw_uid) or "" for relative in HOME_KEY_FILES))
