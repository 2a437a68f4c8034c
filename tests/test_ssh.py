"""The user's SSH side: keys, config entries and the Include line."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from gpubox import ssh
from gpubox.errors import GpuboxError


def connection(home: Path, alias: str = "gpubox-alice") -> ssh.Connection:
    return ssh.Connection(alias=alias, address="203.0.113.7", port=2222, user="admin", key=home / ".ssh" / "k")


def test_new_key_is_ed25519_and_private(home):
    key = ssh.ensure_key()
    assert key == home / ".ssh" / "gpubox_ed25519"
    assert key.stat().st_mode & 0o777 == 0o600
    assert ssh.public_key(key).startswith("ssh-ed25519 ")
    assert ssh.ensure_key() == key  # reused, not regenerated


def test_existing_ed25519_key_is_preferred(home):
    (home / ".ssh").mkdir(mode=0o700)
    key = home / ".ssh" / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    assert ssh.ensure_key() == key


def test_key_readable_by_others_is_refused_with_the_fix(home):
    key = home / "loose"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key.chmod(0o644)
    with pytest.raises(GpuboxError) as error:
        ssh.ensure_key(key)
    assert f"chmod 600 {key}" in error.value.fix


def test_missing_key_is_named(home):
    with pytest.raises(GpuboxError, match="does not exist"):
        ssh.ensure_key(home / "nope")


def test_config_entry_is_included_once_on_top_and_keeps_user_config(home):
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "config").write_text("Host work\n    User me\n")
    entry = ssh.write_config_entry(connection(home))
    ssh.write_config_entry(connection(home, "gpubox-bob"))
    config = (home / ".ssh" / "config").read_text()
    include = f'Include "{home}/.ssh/gpubox/*.conf"'
    assert config.splitlines()[0] == include
    assert config.count(include) == 1
    assert "Host work\n    User me\n" in config
    assert entry.stat().st_mode & 0o777 == 0o600
    text = entry.read_text()
    for line in ("Host gpubox-alice", "HostName 203.0.113.7", "Port 2222", "User admin", "HostKeyAlias gpubox-alice"):
        assert f"{line}\n" in text


def test_openssh_reads_the_entry(home):
    ssh.write_config_entry(connection(home))
    result = subprocess.run(["ssh", "-G", "-F", str(home / ".ssh" / "config"), "gpubox-alice"],
                            capture_output=True, text=True, check=True)
    settings = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert settings["hostname"] == "203.0.113.7"
    assert settings["port"] == "2222"
    assert settings["user"] == "admin"
    assert settings["stricthostkeychecking"] == "accept-new"


def test_paths_with_spaces_and_percent_signs_are_quoted_as_openssh_reads_them(tmp_path, monkeypatch):
    home = tmp_path / "my home %d"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    key = home / ".ssh" / "key with space"
    # A listener that never answers: ssh reads its identity files once connected, then waits for a banner.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        ssh.write_config_entry(ssh.Connection(alias="gpubox-alice", address="127.0.0.1", port=port, user="admin", key=key))
        ssh.write_config_entry(ssh.Connection(alias="gpubox-bob", address="203.0.113.8", port=22, user="bob", key=key))
        result = subprocess.run(["ssh", "-v", "-F", str(home / ".ssh" / "config"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
                                 "gpubox-alice", "true"], capture_output=True, text=True, timeout=30, check=False)
    assert f"Connecting to 127.0.0.1 [127.0.0.1] port {port}." in result.stderr  # the Include was followed
    assert f"identity file {key} type -1" in result.stderr, result.stderr  # spaces and % survive


def test_a_quote_in_a_path_is_refused():
    with pytest.raises(GpuboxError, match="cannot be written into an SSH config file"):
        ssh.quoted('/home/a"b/key')


def test_the_users_config_is_backed_up_once_and_replaced_atomically(home):
    config = home / ".ssh" / "config"
    config.parent.mkdir(mode=0o700)
    config.write_text(f"Include {home}/.ssh/gpubox/*.conf\n\nHost work\n    User me\n")  # an older gpubox's unquoted line
    ssh.write_config_entry(connection(home))
    backup = home / ".ssh" / "config.before-gpubox"
    assert backup.read_text() == f"Include {home}/.ssh/gpubox/*.conf\n\nHost work\n    User me\n"
    assert config.read_text() == f'Include "{home}/.ssh/gpubox/*.conf"\n\nHost work\n    User me\n'
    config.write_text(config.read_text() + "Host later\n")
    ssh.write_config_entry(connection(home, "gpubox-bob"))
    assert "Host later" not in backup.read_text()  # the first backup is the user's own file, kept
    assert sorted(path.name for path in config.parent.iterdir()) == ["config", "config.before-gpubox", "gpubox"]  # no temp files


def test_a_symlinked_config_stays_a_link(home, tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    (dotfiles / "ssh_config").write_text("Host work\n")
    (home / ".ssh").mkdir(mode=0o700)
    (home / ".ssh" / "config").symlink_to(dotfiles / "ssh_config")
    ssh.write_config_entry(connection(home))
    assert (home / ".ssh" / "config").is_symlink() and "Include" in (dotfiles / "ssh_config").read_text()


def test_remove_config_entry(home):
    ssh.write_config_entry(connection(home))
    assert ssh.remove_config_entry("gpubox-alice") is True
    assert ssh.remove_config_entry("gpubox-alice") is False
