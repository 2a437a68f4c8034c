"""`sync`: a project to and from ~/work/<dir> on a workstation, with rsync over its SSH entry.

What git ignores stays behind (the repository's own rules, asked of git itself where the folder
is in a repository, else each folder's .gitignore read by rsync), and so do .git's internals.
Modes, times and nested folders travel. Nothing on the receiving side is ever deleted unless
--delete asks for it. --pull brings the workstation's copy back into LOCAL_DIR.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from gpubox import ssh
from gpubox.errors import GpuboxError

REMOTE_ROOT = "work"  # under the login user's home
# rsync pattern characters that must be escaped for a path to match only itself.
RSYNC_SPECIAL = str.maketrans({"*": "\\*", "?": "\\?", "[": "\\[", "\\": "\\\\"})


def ignored_paths(local_dir: Path) -> list[str] | None:
    """Paths under local_dir that git ignores (folders end in '/'), relative to it; None when it
    is not in a git work tree (or git is missing)."""
    if not shutil.which("git"):
        return None
    inside = subprocess.run(["git", "-C", str(local_dir), "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True, check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    listed = subprocess.run(["git", "-C", str(local_dir), "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
                            capture_output=True, text=True, check=True)
    return [path for path in listed.stdout.split("\0") if path]


def filter_rules(local_dir: Path, pull: bool) -> list[str]:
    """rsync filter rules: .git's internals always out; git's ignore list anchored at the top (on
    --pull too, so the local ignored files are neither overwritten nor sent for); without git, each
    folder's .gitignore as rsync reads it."""
    rules = ["- /.git/", "- .git/"]
    ignored = ignored_paths(local_dir)
    if ignored is None:
        rules.append(":- .gitignore")
    else:
        rules.extend("- /" + path.translate(RSYNC_SPECIAL) for path in ignored)
        if pull:
            rules.append(":- .gitignore")  # files created there that the same rules would ignore
    return rules


def rsync_argv(local_dir: Path, alias: str, remote_dir: str, rules_file: Path, *, pull: bool, delete: bool, dry_run: bool) -> list[str]:
    """-a: modes, times, links and nested folders; -s: the remote path reaches rsync as one
    argument, spaces and all; no --delete unless asked."""
    # rsync splits -e on spaces and honours quotes: a config path with spaces stays one argument.
    shell = shlex.join(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
    local, remote = f"{local_dir.resolve()}/", f"{alias}:{remote_dir}/"
    return ["rsync", "-a", "-s", "--itemize-changes", "-e", shell, f"--filter=merge {rules_file}",
            *(["--delete"] if delete else []), *(["--dry-run"] if dry_run else []),
            *([remote, local] if pull else [local, remote])]


def remote_dir_for(local_dir: Path) -> str:
    name = local_dir.resolve().name
    if not name or name.startswith(".") or "/" in name:
        raise GpuboxError(f"{local_dir} has no folder name to use under ~/{REMOTE_ROOT}/.",
                          "Run sync from (or name) a project folder.", exit_code=2)
    return f"{REMOTE_ROOT}/{name}"


def sync(local_dir: Path, alias: str, *, pull: bool = False, delete: bool = False, dry_run: bool = False) -> subprocess.CompletedProcess[str]:
    """Run rsync; its itemized changes are the output. Raises with rsync's words on failure."""
    if not local_dir.is_dir():
        raise GpuboxError(f"{local_dir} is not a folder.", "Give the project folder to sync (default: the current one).", exit_code=2)
    if not shutil.which("rsync"):
        raise GpuboxError("rsync is not installed on this machine.", "Install it (Debian/Ubuntu: apt install rsync; macOS has it).")
    remote_dir = remote_dir_for(local_dir)
    home = Path.home().resolve()
    if pull and delete and local_dir.resolve() in (home, *home.parents):
        raise GpuboxError(f"--pull --delete into {local_dir.resolve()} would delete everything there that the workstation's "
                          f"~/{remote_dir} lacks.", "Run it from the project folder itself (e.g. ~/code/model).", exit_code=2)
    if not pull:
        made = subprocess.run(["ssh", *ssh.client_config_args(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", alias,
                               f"mkdir -p -- {shlex.quote(remote_dir)}"], capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
        if made.returncode != 0:
            raise GpuboxError(f"Could not reach {alias}: {made.stderr.strip()[-300:]}", "Check `python runner.py status`; is it running?")
    with tempfile.TemporaryDirectory(prefix="gpubox-sync-") as scratch:
        rules = Path(scratch) / "filter"
        rules.write_text("\n".join(filter_rules(local_dir, pull)) + "\n")
        result = subprocess.run(rsync_argv(local_dir, alias, remote_dir, rules, pull=pull, delete=delete, dry_run=dry_run),
                                capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise GpuboxError(f"rsync failed ({result.returncode}): {result.stderr.strip()[-500:]}",
                          f"Is rsync installed on the workstation, and ~/{remote_dir} there" + (" (for --pull)?" if pull else "?"))
    return result
