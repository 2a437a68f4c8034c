"""The role filters as Ansible resolves them (gpubox.workstation.<name>), through a real template:
a filter left out of its FilterModule, or a name the roles misspell, fails here."""

from __future__ import annotations

import json
import subprocess

from conftest import PROJECT, VENV_BIN

TEMPLATE = """{{ {
  'accounts': users | gpubox.workstation.ssh_access_account_changes(seen, '/bin/bash', '0750') | map(attribute='name'),
  'keys': users | gpubox.workstation.ssh_access_key_changes(seen) | map(attribute='name'),
  'login_defs': {'UMASK': '027', 'PASS_MAX_DAYS': 365} | gpubox.workstation.hardening_login_defs_wrong({'UMASK': '022', 'PASS_MAX_DAYS': '365'}),
  'modes': {'/etc/crontab': '0600'} | gpubox.workstation.hardening_file_modes_wrong({'/etc/crontab': '0644'}),
  'ca': {'corp': 'PEM '} | gpubox.workstation.base_ca_files('/ca', ['/ca/old.crt']),
  'services': users | gpubox.workstation.jupyter_services(seen, 8888, 'nb'),
  'revoked': ['bob', 'mallory'] | gpubox.workstation.jupyter_revoked(users),
  'env': [] | gpubox.workstation.jupyter_env_files(['mallory'], '/etc/gpubox/jupyter', 'h'),
  'restart': users | gpubox.workstation.jupyter_services(seen, 8888, 'nb')
             | gpubox.workstation.jupyter_restart_users(['bob'], false, [], ['bob'], '/etc/gpubox/jupyter'),
} | to_json }}"""

EXTRA = {
    "users": [{"name": "alice", "ssh_keys": ["ssh-ed25519 AAAA a"]}, {"name": "bob", "ssh_keys": ["ssh-ed25519 BBBB b"]}],
    "seen": {
        "alice": {"exists": True, "in_group": True, "shell": "/bin/bash", "expire": -1, "home_mode": "0750",
                  "key_lines": ["ssh-ed25519 AAAA a"], "uid": 1001, "home": "/home/alice"},
        "bob": {"exists": True, "in_group": False, "shell": "/bin/bash", "expire": -1, "home_mode": "0750",
                "key_lines": [], "uid": 1002, "home": "/home/bob"},
    },
}


def test_every_role_filter_resolves_and_renders():
    run = subprocess.run(
        [str(VENV_BIN / "ansible"), "localhost", "-c", "local", "-o", "-m", "ansible.builtin.debug",
         "-a", f"msg={TEMPLATE}", "-e", json.dumps(EXTRA)],
        cwd=PROJECT, env={"ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"), "PATH": f"{VENV_BIN}:/usr/bin:/bin",
                          "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"},
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rendered = json.loads(json.loads(run.stdout.split(" => ", 1)[1])["msg"])
    assert rendered == {
        "accounts": ["bob"],
        "keys": ["bob"],
        "login_defs": {"UMASK": "027"},
        "modes": {"/etc/crontab": "0600"},
        "ca": [{"path": "/ca/corp.crt", "content": "PEM\n"}, {"path": "/ca/old.crt", "state": "absent"}],
        "services": [{"name": "alice", "port": 8889, "root": "/home/alice/nb", "uid": 1001},
                     {"name": "bob", "port": 8890, "root": "/home/bob/nb", "uid": 1002}],
        "revoked": ["mallory"],
        "env": [{"path": "/etc/gpubox/jupyter/mallory.env", "state": "absent"},
                {"path": "/etc/systemd/system/jupyter@mallory.service.d/50-gpubox-slice.conf", "state": "absent"}],
        "restart": ["bob"],
    }
