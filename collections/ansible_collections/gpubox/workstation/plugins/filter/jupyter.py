"""Filters for the jupyter role: each user's service (port, notebook directory) and its settings file.

Pure functions of the user list and the role's probe, so the plan can be tested without a host.
"""

from __future__ import annotations

import json

KERNEL_DIR = "/usr/local/share/jupyter/kernels"


def jupyter_services(present: list[dict], seen: dict[str, dict], port_base: int, notebook_dir: str) -> list[dict]:
    """One service per present user whose account exists: name, port, notebook root and uid.

    `seen` is the probe's `users` (name -> exists, uid, home). The port is the user's
    `jupyter_port`, else `port_base + uid - 1000`, so it stays the same across runs and hosts
    with the same uids. The root is the home, or `notebook_dir` (absolute, or relative to the home).
    Users without an account yet (a fresh host in --check mode) get no service.
    """
    services = []
    for user in present:
        account = seen[user["name"]]
        if not account["exists"]:
            continue
        home = account["home"]
        if not notebook_dir:
            root = home
        elif notebook_dir.startswith("/"):
            root = notebook_dir
        else:
            root = f"{home}/{notebook_dir}"
        port = user["jupyter_port"] if "jupyter_port" in user else port_base + account["uid"] - 1000
        services.append({"name": user["name"], "port": port, "root": root, "uid": account["uid"]})
    return services


def jupyter_revoked(running: list[str], present: list[dict]) -> list[str]:
    """Users with an enabled or active Jupyter (`running`, duplicates allowed) who are no longer
    present, each once, in the order first seen."""
    names = {user["name"] for user in present}
    revoked: list[str] = []
    for name in running:
        if name not in names and name not in revoked:
            revoked.append(name)
    return revoked


def jupyter_env_files(services: list[dict], revoked: list[str], config_dir: str, header: str) -> list[dict]:
    """The files for gpubox.workstation.config_files, per user: `<config_dir>/<user>.env` with the
    port and root that the unit reads, and a drop-in that runs the server in the user's own slice
    (`user-<uid>.slice`), so the memory and task limits of their logins and jobs cover their
    notebooks too; the removal of both for revoked users."""
    files: list[dict] = []
    for service in services:
        files.append({"path": f"{config_dir}/{service['name']}.env",
                      "content": f"# {header}\nGPUBOX_JUPYTER_PORT={service['port']}\nGPUBOX_JUPYTER_ROOT={service['root']}\n"})
        files.append({"path": slice_dropin(service["name"]),
                      "content": f"# {header}\n[Service]\nSlice=user-{int(service['uid'])}.slice\n"})
    for name in revoked:
        files += [{"path": f"{config_dir}/{name}.env", "state": "absent"}, {"path": slice_dropin(name), "state": "absent"}]
    return files


def slice_dropin(name: str) -> str:
    return f"/etc/systemd/system/jupyter@{name}.service.d/50-gpubox-slice.conf"


def jupyter_restart_users(services: list[dict], active: list[str], shared_changed: bool, changed_paths: list[str],
                          new_tokens: list[str], config_dir: str) -> list[str]:
    """The running servers to restart: every one when something they share changed (JupyterLab, the
    unit, the server configuration, a restart owed by an earlier run), else only those whose own
    inputs changed (their settings, slice or token). A roster change restarts nobody else."""
    running = [service["name"] for service in services if service["name"] in active]
    if shared_changed:
        return running
    changed = set(changed_paths)
    own = {name for name in running
           if f"{config_dir}/{name}.env" in changed or slice_dropin(name) in changed or name in new_tokens}
    return [name for name in running if name in own]


def jupyter_kernel_files(kernels: list[dict], frameworks: list[str], launcher: str) -> list[dict]:
    """The kernel specs for gpubox.workstation.config_files: one `<KERNEL_DIR>/<name>/kernel.json`
    per kernel whose framework is in `frameworks`, the removal of the others' (the launcher then
    lists exactly the chosen frameworks). Each runs its virtualenv's Python with -P through the
    launcher, without the debugger (debugpy listens on a loopback TCP port any account can reach)."""
    files = []
    for kernel in kernels:
        path = f"{KERNEL_DIR}/{kernel['name']}/kernel.json"
        if kernel["framework"] not in frameworks:
            files.append({"path": path, "state": "absent"})
            continue
        spec = {"argv": [f"{kernel['venv']}/bin/python", "-P", launcher, "-f", "{connection_file}"],
                "display_name": kernel["display_name"], "language": "python", "metadata": {"debugger": False}}
        files.append({"path": path, "content": json.dumps(spec, indent=4, sort_keys=True)})
    return files


def jupyter_kernels_needing_pip(kernels: list[dict], installed: dict, ipykernel_version: str) -> list[str]:
    """The kernels' virtualenvs (the chosen frameworks') whose ipykernel is missing or not
    `ipykernel_version` (`installed`: the probe's `kernels`, virtualenv -> name -> version, null
    without a Python)."""
    return [kernel["venv"] for kernel in kernels
            if (installed.get(kernel["venv"]) or {}).get("ipykernel") != ipykernel_version]


class FilterModule:
    def filters(self):
        return {
            "jupyter_services": jupyter_services,
            "jupyter_revoked": jupyter_revoked,
            "jupyter_env_files": jupyter_env_files,
            "jupyter_kernel_files": jupyter_kernel_files,
            "jupyter_kernels_needing_pip": jupyter_kernels_needing_pip,
            "jupyter_restart_users": jupyter_restart_users,
        }
