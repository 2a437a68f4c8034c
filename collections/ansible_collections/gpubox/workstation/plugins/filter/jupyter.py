"""Filters for the jupyter role: each user's service (port, notebook directory) and its settings file.

Pure functions of the user list and the role's probe, so the plan can be tested without a host.
"""

from __future__ import annotations


def jupyter_services(present: list[dict], seen: dict[str, dict], port_base: int, notebook_dir: str) -> list[dict]:
    """One service per present user whose account exists: name, port and notebook root.

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
        services.append({"name": user["name"], "port": port, "root": root})
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
    """The files for gpubox.workstation.config_files: `<config_dir>/<user>.env` with the port and
    root that the unit reads for each service, and the removal of revoked users' files."""
    files = [{"path": f"{config_dir}/{service['name']}.env",
              "content": f"# {header}\nGPUBOX_JUPYTER_PORT={service['port']}\nGPUBOX_JUPYTER_ROOT={service['root']}\n"}
             for service in services]
    return files + [{"path": f"{config_dir}/{name}.env", "state": "absent"} for name in revoked]


class FilterModule:
    def filters(self):
        return {
            "jupyter_services": jupyter_services,
            "jupyter_revoked": jupyter_revoked,
            "jupyter_env_files": jupyter_env_files,
        }
