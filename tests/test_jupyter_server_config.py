"""The jupyter role's server configuration, rendered with the role's variables and executed as
Jupyter executes it: one kernel in the launcher, and no request of the server's own to the
internet unless jupyter_network_checks asks for it. (The live server's answers through the
tunnel are checked in test_demo.py.)"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest

from conftest import PROJECT
from test_contract import render, role_variables

TEMPLATE = PROJECT / "roles" / "jupyter" / "templates" / "etc" / "gpubox" / "jupyter" / "jupyter_server_config.py.j2"


def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, token: str = "ab" * 32 + "\n",
           **overrides: Any) -> dict[str, dict[str, Any]]:
    """What the rendered file sets, section by section (as traitlets' Config would hold it)."""
    variables = role_variables("jupyter")
    # A templated variable plain Jinja does not resolve: the default choice, TensorFlow alone.
    variables["jupyter_kernels_present"] = [{"framework": "tensorflow", "name": variables["jupyter_kernel_name"]}]
    variables |= overrides
    home = tmp_path / "home"
    token_file = home / variables["jupyter_token_file"]
    token_file.parent.mkdir(parents=True)
    token_file.write_text(token)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GPUBOX_JUPYTER_PORT", "8801")
    monkeypatch.setenv("GPUBOX_JUPYTER_SOCKET", "/run/gpubox/jupyter/alice/jupyter.sock")
    monkeypatch.setenv("GPUBOX_JUPYTER_ROOT", str(home))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file adds to the import path: undone after each test
    config: dict[str, Any] = collections.defaultdict(collections.OrderedDict)

    class Section:
        def __init__(self, name: str) -> None:
            object.__setattr__(self, "_name", name)

        def __setattr__(self, key: str, value: Any) -> None:
            config[self._name][key] = value

    class Config:
        def __getattr__(self, name: str) -> Section:
            return Section(name)

    exec(compile(render(TEMPLATE.read_text(), variables), str(TEMPLATE), "exec"), {"get_config": Config})  # noqa: S102
    return config


TENSORFLOW = {"framework": "tensorflow", "name": "gpubox-tensorflow"}
PYTORCH = {"framework": "pytorch", "name": "gpubox-pytorch"}


@pytest.mark.parametrize(("present", "default"), [([TENSORFLOW, PYTORCH], "gpubox-tensorflow"), ([PYTORCH], "gpubox-pytorch")])
def test_the_default_kernel_is_a_chosen_frameworks(tmp_path, monkeypatch, present, default):
    """With PyTorch alone, TensorFlow's kernel spec is removed: the default must not name it."""
    assert loaded(tmp_path, monkeypatch, jupyter_kernels_present=present)["MultiKernelManager"]["default_kernel_name"] == default


def test_the_launcher_offers_only_the_tensorflow_kernel(tmp_path, monkeypatch):
    config = loaded(tmp_path, monkeypatch, jupyter_kernels_present=[TENSORFLOW])
    assert config["KernelSpecManager"]["ensure_native_kernel"] is False
    assert config["MultiKernelManager"]["default_kernel_name"] == role_variables("jupyter")["jupyter_kernel_name"]
    install = (PROJECT / "roles" / "jupyter" / "tasks" / "install.yml").read_text()
    assert 'path: "{{ jupyter_venv }}/share/jupyter/kernels/python3/kernel.json"\n        state: absent' in install


def lab_overrides(network_checks: bool) -> dict[str, Any]:
    """The settings defaults the role writes to JupyterLab's overrides.json."""
    expression = role_variables("jupyter")["jupyter_lab_overrides"].strip()
    assert expression.startswith("{{") and expression.endswith("}}")
    return jinja2.Environment().compile_expression(expression[2:-2])(jupyter_network_checks=network_checks)


def test_news_and_update_checks_are_off_by_default(tmp_path, monkeypatch):
    assert role_variables("jupyter")["jupyter_network_checks"] is False
    lab = loaded(tmp_path, monkeypatch)["LabApp"]
    assert lab["news_url"] is None
    assert lab["check_for_updates_class"] == "jupyterlab.NeverCheckForUpdate"
    assert lab["extension_manager"] == "readonly"
    # and the browser neither asks about news nor checks for updates
    notification = {"fetchNews": "false", "checkForUpdates": False}
    assert lab_overrides(False) == {"@jupyterlab/apputils-extension:notification": notification}


def test_network_checks_can_be_turned_back_on(tmp_path, monkeypatch):
    config = loaded(tmp_path, monkeypatch, jupyter_network_checks=True)
    assert "LabApp" not in config  # JupyterLab's own defaults: news, update check, PyPI
    assert lab_overrides(True) == {}
    assert config["KernelSpecManager"]["ensure_native_kernel"] is False


@pytest.mark.parametrize("token", ["", "ab" * 31, "AB" * 32])
def test_the_server_refuses_to_start_without_a_valid_token(tmp_path, monkeypatch, token):
    with pytest.raises(SystemExit, match="no valid Jupyter token"):
        loaded(tmp_path, monkeypatch, token=token)


def test_the_server_and_its_kernels_listen_on_no_tcp_port(tmp_path, monkeypatch):
    """A Unix socket in the user's private directory, ipc kernels, and no address or port set."""
    config = loaded(tmp_path, monkeypatch)
    assert config["ServerApp"]["sock"] == "/run/gpubox/jupyter/alice/jupyter.sock"
    assert config["ServerApp"]["sock_mode"] == "0600"
    assert not {"ip", "port", "port_retries"} & set(config["ServerApp"])  # jupyter_server refuses --port with --sock
    assert config["KernelManager"]["transport"] == "ipc"
    variables = role_variables("jupyter")
    unit = render((PROJECT / "roles" / "jupyter" / "templates" / "etc" / "systemd" / "system" / "jupyter@.service.j2").read_text(),
                  variables)
    socket = f"{'/run/' + variables['jupyter_runtime_directory']}/%i/{variables['jupyter_socket_name']}"
    assert f"--ServerApp.sock={socket} --ServerApp.sock_mode=0600" in unit
    assert f"Environment=GPUBOX_JUPYTER_SOCKET={socket}" in unit
    assert f"Environment=JUPYTER_RUNTIME_DIR={'/run/' + variables['jupyter_runtime_directory']}/%i" in unit
    assert "RuntimeDirectory=gpubox/jupyter/%i\nRuntimeDirectoryMode=0700" in unit
    assert "ServerApp.ip" not in unit and "ServerApp.port" not in unit


def test_the_kernel_does_not_import_from_its_working_directory():
    from ansible_collections.gpubox.workstation.plugins.filter.jupyter import jupyter_kernel_files
    kernels = [{"framework": "tensorflow", "name": "gpubox-tensorflow", "display_name": "Python 3 (TensorFlow)", "venv": "/opt/tf"},
               {"framework": "pytorch", "name": "gpubox-pytorch", "display_name": "Python 3 (PyTorch)", "venv": "/opt/pt"}]
    specs = jupyter_kernel_files(kernels, ["tensorflow", "pytorch"], "/usr/local/lib/gpubox/jupyter_kernel.py")
    assert [json.loads(spec["content"])["argv"] for spec in specs] == [
        [f"{venv}/bin/python", "-P", "/usr/local/lib/gpubox/jupyter_kernel.py", "-f", "{connection_file}"] for venv in ("/opt/tf", "/opt/pt")]
    launcher = (PROJECT / "roles" / "jupyter" / "files" / "jupyter_kernel.py").read_text()
    assert "launch_new_instance()" in launcher and 'pipe_in.bind(self._gpubox_pipe)' in launcher
    assert role_variables("jupyter")["jupyter_kernel_launcher"].startswith("/usr/local/lib/gpubox/")
    assert all(json.loads(spec["content"])["metadata"] == {"debugger": False} for spec in specs)


def test_every_server_loads_gpubox_notices_from_the_directory_the_role_fills(tmp_path, monkeypatch):
    """The browser's notices (roles/jupyter/files/gpubox_notices.py): each server enables the
    extension and imports it from the root-owned directory the role writes it to."""
    before = list(sys.path)
    config = loaded(tmp_path, monkeypatch)
    assert config["ServerApp"]["jpserver_extensions"] == {"gpubox_notices": True}
    directory = role_variables("jupyter")["__jupyter_server_extension_dir"]
    assert [entry for entry in sys.path if entry not in before] == [directory]
    install = (PROJECT / "roles" / "jupyter" / "tasks" / "install.yml").read_text()
    assert 'path: "{{ __jupyter_server_extension_dir }}/gpubox_notices.py"' in install
