"""The attacker, on a real converged workstation: alice and erin, data scientists without sudo,
plant every class of trap (a symlinked file, a symlinked directory, a dangling symlink, a hard
link, a FIFO, another user's name) wherever root acts: ~/.ssh, the Jupyter token path, Jupyter's
config and runtime paths, the holds directory. Then what acts on them runs for real: IT's next
site.yml (alice's key list changes, erin is revoked), a restart of alice's server, the installed
autostop checker, and runner.py tunnel while dave's server is down and alice tries to stand in for
it. dave is the victim: his JupyterLab and kernels listen on Unix sockets in his private directory
(no TCP port), and alice tries his server's socket, his kernels' endpoints and every TCP listener.
Nothing outside the attackers' own files may change but what the run is meant to change
(compared by a fingerprint), no secret may reach a world-readable file or the journal, the
checker must decide in time and see dave's busy kernel whatever alice does, dave's Jupyter must
stay out of alice's reach, erin must be locked out and IT's login must keep working.

The attack runs once per module (a fixture); each test checks one promise against its record."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gpubox import listener, tunnel
from testhosts import instance, run_playbook, ssh, testinfra_hosts as _hosts

testinfra_hosts = _hosts()
KEYS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "keys"
TOKEN_DIR = ".local/share/gpubox"
TOKEN_FILE = f"{TOKEN_DIR}/jupyter-token"
HOLDS = "/var/lib/gpubox/holds"
STATUS = "/var/lib/gpubox/autostop/status.json"
SECRET = "fedcba9876543210" * 4  # token-shaped, root-only: must never be read, sent or written anywhere
SQUAT_LOG = "/tmp/alice-squat.log"
RUNTIME = "/run/gpubox/jupyter"

# Owner, group, mode, type, link target and sha256 of every entry under these, by a script that
# follows nothing. Left out: Ansible's own temporary files of this run (the admin's and root's
# ~/.ansible), which every run creates and removes.
WATCHED = ("/etc", "/root", "/var/lib/gpubox", "/home/dave")
PRUNED = ("/root/.ansible",)
FINGERPRINT = r'''
import hashlib, json, os, stat, sys
roots, pruned = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
out = {}
def add(path):
    info = os.lstat(path)
    kind = stat.S_IFMT(info.st_mode)
    digest = ""
    if stat.S_ISREG(info.st_mode):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    out[path] = [info.st_uid, info.st_gid, "%o" % stat.S_IMODE(info.st_mode), kind,
                 os.readlink(path) if stat.S_ISLNK(info.st_mode) else "", digest]
for root in roots:
    add(root)
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(top, d) not in pruned]
        for name in dirs + files:
            add(os.path.join(top, name))
print(json.dumps(out))
'''


def admin(name: str) -> str:
    return instance(name)["user"]


def fingerprint(host, roots: tuple[str, ...]) -> dict[str, list]:
    name = host.backend.name
    pruned = [*PRUNED, f"/home/{admin(name)}/.ansible"]
    command = f"python3 -c {shlex.quote(FINGERPRINT)} {shlex.quote(json.dumps(roots))} {shlex.quote(json.dumps(pruned))}"
    return json.loads(host.check_output(command))


def as_user(name: str, user: str, script: str, key: str | None = None):
    """A shell script run by user through a real SSH login with their own key."""
    return ssh(name, script, user=user, key=str(KEYS / (key or user)))


def planted(name: str, user: str, script: str) -> str:
    result = as_user(name, user, "set -e\ncd\n" + script)
    assert result.returncode == 0, result.stderr
    return result.stdout


def jupyter_port(host, user: str) -> int:
    """The user's jupyter_port: the local port their tunnel prefers (nothing listens on it on the host)."""
    settings = host.file(f"/etc/gpubox/jupyter/{user}.env").content_string
    return int(re.search(r"^GPUBOX_JUPYTER_PORT=(\d+)$", settings, re.M).group(1))


def socket_of(user: str) -> str:
    return f"{RUNTIME}/{user}/jupyter.sock"


def wait_serving(host, user: str, timeout: float = 60) -> bool:
    """Whether the user's JupyterLab listens on its socket, in a directory of theirs alone, within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        facts = host.run(f"stat -c '%U %a' {RUNTIME}/{user} 2>/dev/null && ss -Hlx src {socket_of(user)}").stdout
        if facts.startswith(f"{user} ") and int(facts.split()[1], 8) & 0o077 == 0 and socket_of(user) in facts:
            return True
        time.sleep(0.5)
    return False


def tcp_listeners_of(host, users: tuple[str, ...]) -> list[str]:
    """Every TCP listener, on any address, owned by one of the users (ss: the socket's uid)."""
    uids = {f"uid:{host.user(user).uid}" for user in users}
    return [line for line in host.check_output("ss -Hltnpe").splitlines() if uids & set(line.split())]


@contextlib.contextmanager
def forward(name: str, user: str, target: str):
    """`ssh -N -L` as user with their own key, from a local port to a Unix socket on the host; yields
    the local port and the ssh process."""
    host = instance(name)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
    process = subprocess.Popen(
        ["ssh", "-N", "-L", f"127.0.0.1:{local}:{target}", "-p", str(host["port"]), "-i", str(KEYS / user),
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", f"{user}@{host['address']}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            time.sleep(0.2)
        yield local, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def api_status(local: int, token: str) -> int:
    """GET /api/status through a forward: the HTTP status, or 0 when nothing answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{local}/api/status", headers={"Authorization": f"token {token}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(20):
        try:
            with opener.open(request, timeout=15) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except (OSError, http.client.HTTPException):
            time.sleep(0.5)
    return 0


def run_checker(host) -> tuple[dict, str, float]:
    """The installed service, as its timer starts it: (status file, journal of this run, seconds)."""
    since = host.check_output("date '+%Y-%m-%d %H:%M:%S'")
    time.sleep(1)  # the journal's --since has second resolution
    # The test starts the service once per trap, faster than systemd's default start limit (5 in
    # 10 s) allows; the timer starts it once a minute.
    host.run("systemctl reset-failed gpubox-autostop.service")
    started = time.monotonic()
    result = host.run("timeout 150 systemctl start gpubox-autostop.service")
    seconds = time.monotonic() - started
    assert result.rc == 0, result.stderr
    log = host.check_output(f"journalctl -u gpubox-autostop --no-pager -o cat --since '{since}'")
    return json.loads(host.file(STATUS).content_string), log, seconds


def ssh_alias_home(tmp: Path, name: str, users: list[str]) -> Path:
    """A $HOME for runner.py's code with one SSH alias per user, as `runner.py configure` writes them."""
    target = instance(name)
    ssh_dir = tmp / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True)
    entries = "".join(
        f"Host gpubox-iso-{user}\n  HostName {target['address']}\n  Port {target['port']}\n  User {user}\n"
        f"  IdentityFile {KEYS / user}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
        for user in users)
    (ssh_dir / "config").write_text(entries)
    (ssh_dir / "config").chmod(0o600)
    return tmp


# Root's files a hard link in the holds directory would turn into holds of root's: one secret, two
# that alice may read.
HARD_LINK_TARGETS = ("/etc/shadow", "/etc/gpubox/autostop.json", "/usr/local/lib/gpubox/gpubox_autostop.py")
# Token-file traps for the checker, each planted in turn by alice in place of her token.
TOKEN_TRAPS = {
    "symlink to /etc/shadow": f"ln -sfn /etc/shadow {TOKEN_FILE}",
    "symlink to a root-only secret": f"ln -sfn /root/secret-token {TOKEN_FILE}",
    "symlink to dave's token": f"ln -sfn /home/dave/{TOKEN_FILE} {TOKEN_FILE}",
    "dangling symlink": f"ln -sfn /nonexistent/jupyter-token {TOKEN_FILE}",
    "fifo": f"rm -f {TOKEN_FILE} && mkfifo {TOKEN_FILE}",
    "symlinked directory": f"rm -rf {TOKEN_DIR} && ln -s /root/secret-dir {TOKEN_DIR}",
    "empty": f"rm -f {TOKEN_FILE} && : > {TOKEN_FILE}",
}
# What alice reads back when she tries every way into dave's Jupyter from her own login: his
# server's socket (with her token), his socket directory, each of his kernels' ipc endpoints
# (their names, listed by root, passed in), standing in for his directory, and every TCP listener
# on the host (/api/status with her token and without; 0: no HTTP answer). Her own socket first:
# the probe works.
PROBE = r'''
import json, os, socket, sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1, whatever the login's proxy
token = open(".local/share/gpubox/jupyter-token").read().strip()
runtime, endpoints = sys.argv[1], json.loads(sys.argv[2])
def get_over_unix(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(path)
        s.sendall(("GET /api/status HTTP/1.0\r\nAuthorization: token %s\r\n\r\n" % token).encode())
        return s.recv(12).decode()
    except OSError as error:
        return type(error).__name__
found = {"own": get_over_unix(runtime + "/alice/jupyter.sock"), "dave": get_over_unix(runtime + "/dave/jupyter.sock"),
         "endpoints": {name: get_over_unix(runtime + "/dave/" + name) for name in endpoints}}
try:
    os.listdir(runtime + "/dave")
    found["listdir"] = "listed"
except OSError as error:
    found["listdir"] = type(error).__name__
try:
    os.mkdir(runtime + "/dave-too")
    found["mkdir"] = "made"
except OSError as error:
    found["mkdir"] = type(error).__name__
ports = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        fields = line.split()
        if fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
found["tcp"] = {}
for port in sorted(ports):
    codes = []
    for header in ({"Authorization": "token " + token}, {}):
        try:
            request = urllib.request.Request("http://127.0.0.1:%d/api/status" % port, headers=header)
            with opener.open(request, timeout=30) as response:
                codes.append(response.status)
        except urllib.error.HTTPError as error:
            codes.append(error.code)
        except Exception:
            codes.append(0)
    found["tcp"][port] = codes
print(json.dumps(found))
'''
# dave, from his own login: a kernel started through his socket, then a cell that keeps it busy
# (through the kernel's ipc channels, with the connection file in his private directory).
DAVE_BUSY = r'''
import http.client, json, socket, sys, time
from jupyter_client import BlockingKernelClient
runtime = sys.argv[1]
token = open(".local/share/gpubox/jupyter-token").read().strip()
class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(runtime + "/dave/jupyter.sock")
connection = Unix("localhost", timeout=60)
connection.request("POST", "/api/kernels", body="{}", headers={"Authorization": "token " + token})
kernel = json.loads(connection.getresponse().read())
client = BlockingKernelClient(connection_file="%s/dave/kernel-%s.json" % (runtime, kernel["id"]))
client.load_connection_file()
# No heartbeat channel: its one-second deadline takes a kernel still importing on a loaded host for a
# dead one ("Kernel died before replying to kernel_info", seen at load 10); kernel_info decides.
client.start_channels(hb=False)
client.wait_for_ready(timeout=120)
client.execute("import time; time.sleep(300)")
time.sleep(2)
print(kernel["id"])
'''


@pytest.fixture(scope="module")
def attack(host, tmp_path_factory):
    """Plant, run what acts on the plants, and record what the tests check."""
    name = host.backend.name
    record: dict = {"hardlinks": host.check_output("cat /proc/sys/fs/protected_hardlinks")}
    if not host.file("/etc/ssh/authorized_keys/erin").exists:  # a second verify: give erin back first
        run_playbook(name, "converge.yml")
    host.run(f"rm -rf {HOLDS}/* /root/secret-token /root/secret-dir {SQUAT_LOG}")
    host.check_output(f"install -m 0600 /dev/null /root/secret-token && echo {SECRET} > /root/secret-token && "
                      "mkdir -m 0700 /root/secret-dir && cp /root/secret-token /root/secret-dir/jupyter-token && "
                      "touch /run/gpubox-attack-start")
    assert wait_serving(host, "dave") and wait_serving(host, "alice")
    admin_ssh = f"/home/{admin(name)}/.ssh"
    record["before"] = fingerprint(host, (*WATCHED, admin_ssh))
    record["before_shadow"] = host.check_output("cat /etc/shadow").splitlines()
    record["before_group"] = host.check_output("cat /etc/group").splitlines()
    secrets = [SECRET, host.check_output(f"cat /home/dave/{TOKEN_FILE}").strip()]

    # alice: her key list is about to change; a self-added key; her token directory and Jupyter's
    # config and runtime directories linked to root's; holds that are a FIFO, links, someone
    # else's name and hard links to root's files.
    alice_self = (KEYS / "alice_self.pub").read_text().strip()
    planted(name, "alice", f"""
mkdir -p .ssh && ln -sfn /etc/shadow .ssh/authorized_keys && echo {shlex.quote(alice_self)} > .ssh/authorized_keys2
mv {TOKEN_DIR} {TOKEN_DIR}.mine && ln -s /etc/apt/apt.conf.d {TOKEN_DIR}
rm -rf .jupyter && ln -s /root/.jupyter .jupyter
mkdir -p .local/share/jupyter && rm -rf .local/share/jupyter/runtime
ln -s /var/lib/gpubox/autostop .local/share/jupyter/runtime
mkfifo {HOLDS}/alice
: > {HOLDS}/dave
ln -s /etc/shadow {HOLDS}/root
ln -s /nonexistent/hold {HOLDS}/nobody
""")
    record["hard links"] = {
        target: as_user(name, "alice", f"ln {target} {HOLDS}/linked-{os.path.basename(target)}")
        for target in HARD_LINK_TARGETS}
    # erin, about to be revoked: ~/.ssh linked to the admin's, a token linked to /etc/shadow, a
    # hold without expiry, and a process of hers running.
    planted(name, "erin", f"""
rm -rf .ssh && ln -s {admin_ssh} .ssh
ln -sfn /etc/shadow {TOKEN_FILE}
: > {HOLDS}/erin
setsid nohup sleep 900 >/dev/null 2>&1 < /dev/null &
""")

    # IT's next run over all of it.
    started = time.monotonic()
    record["run_output"], record["run_changed"] = run_playbook(name, "next_run.yml")
    record["run_seconds"] = time.monotonic() - started
    record["apt_dir_after_run"] = host.check_output("ls -A /etc/apt/apt.conf.d")
    # systemd restarts alice's server (as after a crash) with her Jupyter directories linked to root's.
    planted(name, "alice", f"rm {TOKEN_DIR} && mv {TOKEN_DIR}.mine {TOKEN_DIR}")
    host.run("systemctl restart jupyter@alice")
    time.sleep(15)
    planted(name, "alice", "rm .jupyter .local/share/jupyter/runtime")
    host.run("systemctl reset-failed jupyter@alice; systemctl restart jupyter@alice")
    record["alice_back"] = wait_serving(host, "alice", timeout=120)
    secrets.append(host.check_output(f"cat /home/alice/{TOKEN_FILE}").strip())

    # The checker over each token trap of alice's, with the holds above in place.
    host.check_output(f"cp -a /home/alice/{TOKEN_FILE} /root/alice-token.bak")
    record["checks"] = {}
    for trap, plant in TOKEN_TRAPS.items():
        planted(name, "alice", plant)
        try:
            record["checks"][trap] = run_checker(host)
        finally:
            host.run(f"cd /home/alice && if [ -L {TOKEN_DIR} ]; then rm {TOKEN_DIR} && "
                     f"runuser -u alice -- mkdir -m 0700 {TOKEN_DIR}; fi; "
                     f"rm -f {TOKEN_FILE} && cp -a /root/alice-token.bak {TOKEN_FILE}")
    host.run("rm -f /root/alice-token.bak")

    # dave's server is down (a crash, a restart, a boot): alice tries to stand in for it, at his
    # socket directory and at his old TCP port (which nothing asks any more).
    host.run("systemctl stop jupyter@dave")
    dave_port = jupyter_port(host, "dave")
    squatter = ("import os, socket\n"
                f"log = open('{SQUAT_LOG}', 'ab', buffering=0)\n"
                f"try: os.mkdir('{RUNTIME}/dave'); log.write(b'made his directory\\n')\n"
                "except OSError as error: log.write(type(error).__name__.encode() + b'\\n')\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('127.0.0.1', {dave_port})); s.listen()\n"
                "log.write(b'listening\\n')\n"
                "while True:\n    c, _ = s.accept(); c.settimeout(3); log.write(b'connection\\n')\n"
                "    try: log.write(c.recv(65536))\n    except OSError: pass\n    c.close()\n")
    planted(name, "alice", f"setsid nohup python3 -c {shlex.quote(squatter)} >/dev/null 2>&1 < /dev/null &")
    home = ssh_alias_home(tmp_path_factory.mktemp("home"), name, ["dave"])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "listening" not in host.run(f"cat {SQUAT_LOG}").stdout:
            time.sleep(0.3)
        record["squatted_check"] = run_checker(host)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(home))
            try:
                tunnel.jupyter_endpoint("gpubox-iso-dave", None)
                record["squatted_tunnel"] = "opened"
            except listener.NothingListens as refused:
                record["squatted_tunnel"] = f"not running: {refused}"
        record["squat_log"] = host.run(f"cat {SQUAT_LOG}").stdout
        record["dave_dir_while_down"] = host.run(f"stat -c '%U %a' {RUNTIME}/dave").stdout.strip()
    finally:
        host.run(f"pkill -u alice -f {shlex.quote(SQUAT_LOG)}")
        host.run("systemctl start jupyter@dave")
    assert wait_serving(host, "dave", timeout=120)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        record["dave_endpoint"] = tunnel.jupyter_endpoint_when_up("gpubox-iso-dave", None)
    secrets.append(record["dave_endpoint"].token)
    record["after_restart_check"] = run_checker(host)

    # dave's tunnel, as runner.py opens it (ssh -L to his socket), reaches his server; alice's
    # forward to the same socket from her own login reaches nothing.
    with forward(name, "dave", record["dave_endpoint"].socket) as (local, _):
        record["dave_through_tunnel"] = api_status(local, record["dave_endpoint"].token)
    with forward(name, "alice", record["dave_endpoint"].socket) as (local, process):
        record["alice_through_tunnel"] = api_status(local, record["dave_endpoint"].token)
        record["alice_tunnel_alive"] = process.poll() is None

    # dave's kernel is busy (a long cell); alice tries his server and its kernels from her login,
    # and every TCP listener; the checker runs while she does.
    busy = as_user(name, "dave", f"cd && /opt/gpubox/jupyter/bin/python -c {shlex.quote(DAVE_BUSY)} {RUNTIME}")
    assert busy.returncode == 0, busy.stderr
    record["dave_kernel"] = busy.stdout.strip().splitlines()[-1]
    endpoints = sorted(entry for entry in host.check_output(f"ls -A {RUNTIME}/dave").split()
                       if entry.startswith(f"kernel-{record['dave_kernel']}-ipc-") or entry.startswith("kernel-pipe-"))
    record["dave_endpoints"] = endpoints
    record["tcp_listeners"] = tcp_listeners_of(host, ("alice", "dave", "erin"))
    record["alice_probe"] = json.loads(planted(name, "alice", f"python3 -c {shlex.quote(PROBE)} {RUNTIME} "
                                               f"{shlex.quote(json.dumps(endpoints))}"))
    record["busy_check"] = run_checker(host)
    record["alice_reads_dave"] = as_user(name, "alice", f"cat /home/dave/{TOKEN_FILE}; ls /home/dave")

    record["logins"] = {
        "erin": as_user(name, "erin", "id -un"),
        "alice_self": as_user(name, "alice", "id -un", key="alice_self"),
        "alice2": as_user(name, "alice", "id -un", key="alice2"),
        "admin": ssh(name, "id -un"),
    }
    record["after"] = fingerprint(host, (*WATCHED, admin_ssh))
    record["after_shadow"] = host.check_output("cat /etc/shadow").splitlines()
    record["after_group"] = host.check_output("cat /etc/group").splitlines()
    record["secrets"] = secrets + [line for line in record["after_shadow"] + record["before_shadow"] if line.strip()]
    yield record
    host.run(f"rm -rf {HOLDS}/* /root/secret-token /root/secret-dir {SQUAT_LOG} /run/gpubox-attack-start")


def changes(before: dict[str, list], after: dict[str, list]) -> dict[str, tuple]:
    return {path: (before.get(path), after.get(path)) for path in sorted(set(before) | set(after))
            if before.get(path) != after.get(path)}


def test_nothing_outside_the_attackers_files_changed_but_what_the_run_changes(host, attack):
    """Every difference in /etc, /root, /var/lib/gpubox, dave's home and the admin's .ssh must be one
    the run makes on purpose; each allowed entry says why, and what may differ (content, or
    existence), never owner, group, mode or type."""
    uid = {user: host.user(user).uid for user in ("alice", "erin", "dave")}
    # Content only: owner, group, mode and type stay.
    content = {
        "/etc/ssh/authorized_keys/alice": "IT's next run lists a second key of alice's",
        "/etc/shadow": "erin's account is locked and expired (line by line below)",
        "/etc/shadow-": "shadow-utils' backup of the above",
        "/etc/group": "erin leaves the data scientists' group (line by line below)",
        "/etc/group-": "shadow-utils' backup of the above",
        "/etc/gshadow": "erin leaves the data scientists' group",
        "/etc/gshadow-": "shadow-utils' backup of the above",
        "/var/lib/gpubox/autostop/state.json": "the checker's own state, rewritten by every check",
        "/var/lib/gpubox/autostop/status.json": "the checker's own status, rewritten by every check",
        "/var/lib/gpubox/converged/ssh_access.json": "ssh_access ran its body (new users): a new record of it",
        "/var/lib/gpubox/converged/ssh_access.ledger": "the files ssh_access wrote in that run (alice's new key)",
        "/var/lib/gpubox/converged/jupyter.json": "jupyter ran its body (erin's server goes): a new record of it",
        "/var/lib/gpubox/converged/jupyter.ledger": "the files jupyter wrote in that run (erin's settings go)",
    }
    # Removed, and nothing else.
    removed = {
        "/etc/ssh/authorized_keys/erin": "erin is revoked: IT's key file for her goes",
        "/etc/gpubox/jupyter/erin.env": "erin's Jupyter settings go with her",
        "/etc/systemd/system/jupyter@erin.service.d/50-gpubox-slice.conf": "so does her server's place in her user slice",
        "/etc/systemd/system/multi-user.target.wants/jupyter@erin.service": "erin's Jupyter is disabled",
    }
    unexpected = {}
    for path, (before, after) in changes(attack["before"], attack["after"]).items():
        if path in content and before and after and before[:5] == after[:5]:
            continue
        if path in removed and before and after is None:
            continue
        # The attackers' own new files in the world-writable holds directory (a link or FIFO is
        # theirs too; a hard link to a root file would show root as its owner).
        if path.startswith(HOLDS + "/") and before is None and after[0] in (uid["alice"], uid["erin"]):
            continue
        # dave's own server, started again after the squat, writes its config-migration marker and
        # his kernel its IPython profile, as dave, in their own directories of his home.
        if (path.startswith(("/home/dave/.local/share/jupyter", "/home/dave/.jupyter", "/home/dave/.ipython",
                             "/home/dave/.cache"))
                and all(side is None or side[0] == uid["dave"] for side in (before, after))):
            continue
        unexpected[path] = (before, after)
    assert unexpected == {}, json.dumps(unexpected, indent=1)
    for path, why in {**content, **removed}.items():
        assert path in attack["before"], f"{path} ({why}) was not there before the run"


def test_only_erins_account_lines_changed(host, attack):
    def differing(before: list[str], after: list[str]) -> list[str]:
        return sorted({line.split(":")[0] for line in set(before) ^ set(after)})

    assert differing(attack["before_shadow"], attack["after_shadow"]) == ["erin"]
    assert differing(attack["before_group"], attack["after_group"]) == ["gpubox"]
    (line,) = [line for line in attack["after_group"] if line.startswith("gpubox:")]
    assert sorted(line.split(":")[3].split(",")) == ["alice", "dave"]
    erin = next(line for line in attack["after_shadow"] if line.startswith("erin:")).split(":")
    assert erin[1].startswith("!") and erin[7] == "0"  # locked, and expired since 1970-01-01


def test_nothing_in_the_attackers_homes_belongs_to_anyone_else(host, attack):
    for user in ("alice", "erin"):
        foreign = host.check_output(f"find /home/{user} ! -user {user} -printf '%p %u\\n'")
        assert foreign == "", foreign


def test_root_wrote_no_token_through_the_linked_directory(attack):
    assert "jupyter-token" not in attack["apt_dir_after_run"]
    assert attack["alice_back"]  # her server starts again once her own directories are back
    print(f"IT's next run over the plants: {attack['run_seconds']:.0f} s, changed={attack['run_changed']}; checker runs: "
          + ", ".join(f"{seconds:.1f} s" for _, _, seconds in attack["checks"].values()))
    assert attack["run_changed"] > 0  # the run did act: alice's keys, erin's revocation


def test_hard_links_to_root_files_are_refused(host, attack):
    """A hard link keeps its target's owner and content: in the world-writable holds directory it
    would be a hold of root's (the host held forever) or a root file under a user's name."""
    assert attack["hardlinks"] == "1"  # the kernel's protection the hardening role sets
    for target, result in attack["hard links"].items():
        assert result.returncode != 0 and "Operation not permitted" in result.stderr, (target, result.stderr)
        assert not host.file(f"{HOLDS}/linked-{os.path.basename(target)}").exists


# On a loaded CI machine dave's server may miss the checker's 5 s per user: that is no doing of alice's.
SLOW_DAVE = ("jupyter of dave: timeout",)
TRAP_CODES = {
    "symlink to /etc/shadow": "token-not-regular",
    "symlink to a root-only secret": "token-not-regular",
    "symlink to dave's token": "token-not-regular",
    "dangling symlink": "token-not-regular",
    "fifo": "token-not-regular",
    "symlinked directory": "token-unsafe-directory",
    "empty": "token-malformed",
}


@pytest.mark.parametrize("trap", list(TOKEN_TRAPS))
def test_the_checker_decides_in_time_and_counts_each_trap_as_nothing(attack, trap):
    status, log, seconds = attack["checks"][trap]
    assert seconds < 30, seconds
    # The three holds alice planted that are no regular file are hers and ignored; the empty file
    # she named after dave is her hold, not dave's; erin, revoked, holds nothing any more: her
    # revocation swept her holds away (it used to leave them, read as "account-expired").
    expected = [f"jupyter of alice: {TRAP_CODES[trap]}", *["hold of alice: not-regular"] * 3]
    assert sorted(note for note in status["ignored"] if note not in SLOW_DAVE) == sorted(expected), status
    holds = [reason for reason in status["reasons"] if reason.startswith("held")]
    assert holds == ["held by alice"], status
    assert f"autostop: ignored jupyter of alice: {TRAP_CODES[trap]}" in log


def test_nobody_can_stand_in_for_daves_server_while_it_is_down(attack):
    """While dave's server is down, alice can make nothing under /run/gpubox/jupyter, his tunnel
    says his server is not running (it would go nowhere else), and the checker, finding nothing of
    his to ask, says nothing about him; back up, his tunnel reaches his own server."""
    status, _, seconds = attack["squatted_check"]
    assert seconds < 30
    assert [note for note in status["ignored"] if note.startswith("jupyter of dave")] == [], status
    assert attack["squat_log"].splitlines()[:2] == ["PermissionError", "listening"]  # no directory of hers in his place
    assert "connection" not in attack["squat_log"]  # nothing of gpubox connected to her listener on his old port
    assert attack["dave_dir_while_down"] == ""  # systemd removed his directory with the service; nobody made one
    assert attack["squatted_tunnel"].startswith("not running") and "no socket in /run/gpubox/jupyter/dave" in attack["squatted_tunnel"]
    endpoint = attack["dave_endpoint"]
    assert endpoint.user == "dave" and endpoint.socket == "/run/gpubox/jupyter/dave/jupyter.sock"
    assert re.fullmatch(r"[0-9a-f]{64}", endpoint.token)
    dave_notes = [note for note in attack["after_restart_check"][0]["ignored"] if note.startswith("jupyter of dave")]
    assert [note for note in dave_notes if note not in SLOW_DAVE] == []


def test_no_tcp_listener_of_a_data_scientists_jupyter_or_kernel(attack):
    """ss, as root, on every address: no TCP listener owned by alice, dave or erin, while dave's
    server and a kernel of his run (the kernel's ipc endpoints and its subprocess pipe are there)."""
    assert attack["tcp_listeners"] == []
    assert any(name.endswith("-ipc-1") for name in attack["dave_endpoints"])  # ipc channels: the kernel is up
    assert any(name.startswith("kernel-pipe-") for name in attack["dave_endpoints"])


def test_alice_cannot_reach_daves_server_or_kernels(attack):
    probe = attack["alice_probe"]
    assert probe["own"].startswith("HTTP/1.1 200")  # the probe works: her own server answers her
    assert probe["dave"] == "PermissionError"  # his server's socket: the kernel refuses her
    assert probe["endpoints"] and set(probe["endpoints"].values()) == {"PermissionError"}  # his kernels' channels too
    assert probe["listdir"] == "PermissionError" and probe["mkdir"] == "PermissionError"
    # Every TCP listener she can see, with her token or none, lets in nobody: no Jupyter is on TCP.
    assert [port for port, codes in probe["tcp"].items() if 200 in codes] == []
    # Through SSH: dave's forward to his socket reaches his server; hers to the same socket, nothing.
    assert attack["dave_through_tunnel"] == 200
    assert attack["alice_through_tunnel"] == 0
    refused = attack["alice_reads_dave"]
    assert refused.returncode != 0 and "Permission denied" in refused.stderr and not re.search(r"[0-9a-f]{64}", refused.stdout)


def test_the_checker_sees_daves_busy_kernel_whatever_alice_does(attack):
    status, _, seconds = attack["busy_check"]
    assert seconds < 30
    assert "kernel executing (dave's kernel gpubox-tensorflow)" in status["reasons"], status
    assert [note for note in status["ignored"] if note.startswith("jupyter of dave")] == [], status


def test_revoked_erin_cannot_log_in_and_it_still_can(host, attack):
    logins = attack["logins"]
    assert logins["erin"].returncode == 255 and "Permission denied" in logins["erin"].stderr
    assert logins["alice_self"].returncode == 255 and "Permission denied" in logins["alice_self"].stderr
    assert logins["alice2"].returncode == 0 and logins["alice2"].stdout.strip() == "alice"
    assert logins["admin"].returncode == 0 and logins["admin"].stdout.strip() == admin(host.backend.name)
    assert host.run("pgrep -u erin").rc == 1
    assert host.file("/home/erin/.ssh").is_symlink  # revocation left her home alone


def test_no_secret_in_a_world_readable_file_the_journal_or_ansibles_output(host, attack):
    secrets = attack["secrets"]
    assert len(secrets) > 3
    host.run("install -o nobody -m 0400 /dev/null /run/gpubox-secrets")
    try:
        host.run(f"cat > /run/gpubox-secrets <<'EOF'\n{chr(10).join(secrets)}\nEOF")
        # Every file written since the attack began that an account owning none of them (nobody)
        # can read: a token in a 0644 file of a 0700 directory is not world-readable.
        found = host.run(
            "find / -xdev \\( -path /proc -o -path /sys \\) -prune -o -type f -perm -0004 -newer /run/gpubox-attack-start "
            "-print0 | runuser -u nobody -- xargs -0 -r grep -lsF -f /run/gpubox-secrets")
        assert found.stdout == "", found.stdout
        # The same search does find a secret where nobody can read it.
        host.run(f"head -1 /run/gpubox-secrets > {HOLDS}/planted-secret && chmod 0644 {HOLDS}/planted-secret")
        probe = host.run(f"runuser -u nobody -- grep -lsF -f /run/gpubox-secrets {HOLDS}/planted-secret")
        host.run(f"rm -f {HOLDS}/planted-secret")
        assert probe.stdout.strip() == f"{HOLDS}/planted-secret"
        journal = host.run("journalctl --no-pager -o cat --since \"$(date -r /run/gpubox-attack-start '+%Y-%m-%d %H:%M:%S')\" "
                           "| grep -cF -f /run/gpubox-secrets")
        assert journal.stdout.strip() == "0"
    finally:
        host.run("rm -f /run/gpubox-secrets")
    assert not [secret for secret in secrets if secret in attack["run_output"]]
    for trap, (status, log, _) in attack["checks"].items():
        assert "Traceback" not in log and not [secret for secret in secrets if secret in log + json.dumps(status)], trap


def test_the_checker_service_is_bounded(host):
    # Each wait inside the checker has its own limit; this one catches anything else.
    assert host.check_output("systemctl show -P TimeoutStartUSec gpubox-autostop.service") == "2min"
