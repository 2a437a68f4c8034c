"""The user's side of SSH: the login key, known hosts, and `~/.ssh/config` entries that make
`ssh gpubox-NAME` (and VS Code Remote-SSH) work."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from gpubox import safe_write
from gpubox.errors import GpuboxError
from gpubox.paths import config_dir, ssh_dir



@dataclass(frozen=True)
class Connection:
    """How to reach a workstation over SSH."""

    alias: str
    address: str
    port: int
    user: str
    key: Path

    def ssh_options(self) -> list[str]:
        """Options shared by every OpenSSH client gpubox starts (ssh itself and Ansible)."""
        return [
            "-o", "IdentitiesOnly=yes",
            "-o", f"HostKeyAlias={self.alias}",
            "-o", f"UserKnownHostsFile={known_hosts_file()}",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", "ServerAliveInterval=30",
            "-o", "LogLevel=ERROR",  # no sshd banner ("Authorized access only") in gpubox's output or Ansible's
        ]

    def ssh_command(self, *remote: str) -> list[str]:
        return ["ssh", "-p", str(self.port), "-i", str(self.key), *self.ssh_options(), f"{self.user}@{self.address}", *remote]


def known_hosts_file() -> Path:
    return config_dir() / "known_hosts"


def require_ssh_client() -> None:
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise GpuboxError(f"The OpenSSH client ('{tool}') is not installed.", "Install it: sudo apt-get install openssh-client")


def ensure_key(preferred: Path | None = None) -> Path:
    """The private key to log in with: the given one, the user's ed25519 key, or a new one."""
    require_ssh_client()
    if preferred is not None:
        if not preferred.exists():
            raise GpuboxError(f"SSH key {preferred} does not exist.", "Pass the path of an existing private key with --key.")
        _check_key_permissions(preferred)
        return preferred
    for candidate in (ssh_dir() / "id_ed25519", ssh_dir() / "gpubox_ed25519"):
        if candidate.exists() and candidate.with_suffix(".pub").exists():
            _check_key_permissions(candidate)
            return candidate
    key = ssh_dir() / "gpubox_ed25519"
    ssh_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"gpubox {os.environ.get('USER', 'user')}", "-f", str(key)],
        check=True,
    )
    key.chmod(0o600)
    return key


def _check_key_permissions(key: Path) -> None:
    mode = key.stat().st_mode & 0o777
    if mode & 0o077:
        raise GpuboxError(
            f"SSH key {key} is readable by others (mode {mode:o}); OpenSSH refuses to use it.",
            f"Fix it with: chmod 600 {key}",
        )


def public_key_path(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def public_key(key: Path) -> str:
    pub = public_key_path(key)
    if not pub.exists():
        raise GpuboxError(f"No public key next to {key}.", f"Recreate it with: ssh-keygen -y -f {key} > {pub}")
    return pub.read_text().strip()


def quoted(value: str, *, tokens: bool = True) -> str:
    """A value as OpenSSH's config parser reads it back: in double quotes (spaces stay part of it),
    with `%` doubled where OpenSSH expands %-tokens. OpenSSH has no escape for `"` or a line
    break inside quotes, so such a value is refused."""
    if any(char in value for char in '"\n\r'):
        raise GpuboxError(f"The path {value!r} cannot be written into an SSH config file (it contains a quote or a line break).",
                          "Move the key or home directory to a path without quotes or line breaks.")
    return '"' + (value.replace("%", "%%") if tokens else value) + '"'


def config_entry(connection: Connection) -> str:
    return "\n".join([
        "# Written by gpubox; `python runner.py destroy` removes it.",
        f"Host {connection.alias}",
        f"    HostName {connection.address}",
        f"    Port {connection.port}",
        f"    User {connection.user}",
        f"    IdentityFile {quoted(str(connection.key))}",
        "    IdentitiesOnly yes",
        f"    HostKeyAlias {connection.alias}",
        f"    UserKnownHostsFile {quoted(str(known_hosts_file()))}",
        "    StrictHostKeyChecking accept-new",
        "    ServerAliveInterval 30",
        "",
    ])


def entries_dir() -> Path:
    """Where gpubox keeps one SSH config file per workstation."""
    return ssh_dir() / "gpubox"


def config_entry_path(alias: str) -> Path:
    return entries_dir() / f"{alias}.conf"


def write_config_entry(connection: Connection) -> Path:
    """Write the workstation's entry into its own file, included once from ~/.ssh/config."""
    known_hosts_file().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    entries_dir().mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = config_entry_path(connection.alias)
    safe_write.atomic_write(entry, config_entry(connection))
    _ensure_include()
    return entry


def include_line() -> str:
    return f"Include {quoted(f'{entries_dir()}/*.conf', tokens=False)}"


def _ensure_include() -> None:
    # Include must come before any Host block to apply everywhere, so it goes on top. An older
    # gpubox wrote it unquoted (broken when the home has a space): that line is replaced.
    config = ssh_dir() / "config"
    target = config.resolve() if config.is_symlink() else config  # a dotfiles link stays a link
    current = target.read_text() if target.exists() else ""
    wanted, old = include_line(), f"Include {entries_dir()}/*.conf"
    lines = current.splitlines()
    if wanted in (line.strip() for line in lines):
        return
    if current:
        safe_write.backup_once(target)
    kept = "\n".join(line for line in lines if line.strip() != old).lstrip("\n")
    safe_write.atomic_write(target, f"{wanted}\n\n{kept}\n" if kept else f"{wanted}\n")


def remove_config_entry(alias: str) -> bool:
    entry = config_entry_path(alias)
    forget_host_key(alias)
    if entry.exists():
        entry.unlink()
        return True
    return False


def forget_host_key(alias: str) -> None:
    """A re-created workstation has new host keys; drop the old ones so `accept-new` takes them."""
    known = known_hosts_file()
    if known.exists():
        subprocess.run(["ssh-keygen", "-R", alias, "-f", str(known)], capture_output=True, check=False)


def client_config_args() -> list[str]:
    """`-F ~/.ssh/config` where $HOME is not the account's home: OpenSSH reads the passwd home,
    gpubox writes its entries under $HOME, and the two must agree for `ssh gpubox-NAME`."""
    if Path.home() == Path(pwd.getpwuid(os.getuid()).pw_dir):
        return []
    return ["-F", str(ssh_dir() / "config")]
