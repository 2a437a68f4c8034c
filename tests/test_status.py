"""runner.py status for every workstation: local containers and SSH hosts from their SSH entries,
EC2 from AWS (moto), in text and JSON. The workstations' own answers (report, autostop,
JupyterLab) come from gpubox.status's probe, whose parsing is tested here on recorded output;
test_demo.py asks a real workstation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT
from gpubox import contract, status
from gpubox.cloud import records
from gpubox.errors import GpuboxError
from test_commands import image, launch, ssh_entry  # noqa: F401  (image is a fixture)

REPORT = {"ok": True, "tensorflow": {"version": "2.20.0"}, "gpus": ["Tesla T4"], "matmul": {"gflops": 812.5},
          "inputs": {"driver": "550.54"}}
AUTOSTOP = {"idle_limit": 60, "busy": False, "idle_minutes": 23, "stops_in_minutes": 37}


def recorded(report: str, autostop: str, jupyter: str) -> str:
    return f"{report}\n{status.SEPARATOR}\n{autostop}\n{status.SEPARATOR}\n{jupyter}"


def test_probe_output_is_read():
    health = status.parse_probe(recorded(json.dumps(REPORT), json.dumps(AUTOSTOP), "active\nanswers\n"))
    assert health == status.Health(reachable=True, jupyter="ready", report=REPORT, autostop=AUTOSTOP)
    starting = status.parse_probe(recorded("", "", "activating\n"))
    assert starting == status.Health(reachable=True, jupyter="starting", report=None, autostop=None)
    down = status.parse_probe(recorded("not json", "[1]", "inactive\n"))
    assert (down.jupyter, down.report, down.autostop) == ("not running", None, None)
    assert status.parse_probe("").jupyter == "not running"


def test_the_probe_is_read_only_and_never_reads_the_token():
    assert "jupyter-token" not in status.PROBE and ">" not in status.PROBE.replace("2>/dev/null", "")
    assert contract.REPORT_PATH in status.PROBE and contract.AUTOSTOP_STATUS_PATH in status.PROBE


def test_the_probe_runs_in_a_shell(tmp_path):
    """The remote command is valid sh, and says 'not running' where nothing is set up; it succeeds
    there (probe() takes a failed command for an unreachable workstation)."""
    result = subprocess.run(["sh", "-c", status.PROBE], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert status.parse_probe(result.stdout).jupyter == "not running"


def test_the_probe_asks_the_users_socket(tmp_path):
    """'answers' comes from an HTTP 200 on the user's Unix socket (here: this account's, moved to tmp)."""
    import getpass
    import http.server
    import socketserver
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            self.send_response(200 if self.path == "/api" else 404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def address_string(self):
            return "unix"

        def log_message(self, *args):
            pass

    (tmp_path / getpass.getuser()).mkdir()
    server = socketserver.UnixStreamServer(str(tmp_path / getpass.getuser() / contract.JUPYTER_SOCKET_NAME), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        probe = status.PROBE.replace(contract.JUPYTER_RUNTIME_ROOT, str(tmp_path))
        assert probe != status.PROBE
        result = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=False, cwd=tmp_path)
        assert "answers" in result.stdout.split()
    finally:
        server.shutdown()
        server.server_close()


def healthy(alias: str) -> status.Health:
    return status.Health(reachable=True, jupyter="ready", report=REPORT, autostop=AUTOSTOP)


def fake_containers(alias: str) -> str | None:
    return {"gpubox-box": "running", "gpubox-parked": "exited"}.get(alias)


def test_local_and_host_workstations_from_their_entries(home):
    for name in ("box", "parked", "lab1"):
        ssh_entry(home, name, port=2201)
    records.save_record("cloud", {"region": "us-east-1"})
    ssh_entry(home, "cloud", port=2202)  # EC2's: listed from AWS, not here
    asked = []

    def ask(alias: str) -> status.Health:
        asked.append(alias)
        return healthy(alias) if alias == "gpubox-box" else status.Health()

    rows = status.on_this_machine(None, ask=ask, container=fake_containers)
    assert [(row.name, row.kind, row.state) for row in rows] == [
        ("box", "local", "running"), ("lab1", "host", "unreachable"), ("parked", "local", "exited")]
    assert asked == ["gpubox-box", "gpubox-lab1"]  # a stopped container is not asked
    lines = [line for row in rows for line in status.describe(row)]
    assert lines == [
        "box: running, local container at 127.0.0.1:2201, Jupyter ready",
        "  TensorFlow 2.20.0 (ok), Tesla T4, 812.5 GFLOP/s",
        "  autostop: idle 23 min, stops in 37 min",
        "lab1: unreachable, SSH host at 127.0.0.1:2201",
        "parked: exited, local container at 127.0.0.1:2201",
    ]
    assert [row.name for row in status.on_this_machine("lab1", ask=ask, container=fake_containers)] == ["lab1"]


def test_text_lists_local_hosts_then_ec2(home, monkeypatch):
    ssh_entry(home, "box", port=2201)
    monkeypatch.setattr(status, "probe", healthy)
    monkeypatch.setattr(status, "container_state", fake_containers)
    lines = list(status.text(None, None, ec2_lines=lambda region, name: iter(["ws1: running, g4dn.xlarge"])))
    assert lines[0].startswith("box: running, local container") and lines[-1] == "ws1: running, g4dn.xlarge"
    assert list(status.text(None, None, local_only=True, ec2_lines=pytest.fail))[0].startswith("box: running")


def test_an_aws_failure_still_shows_the_rest_and_is_the_old_error_alone(home, monkeypatch):
    def no_credentials(region, name):
        raise GpuboxError("No AWS credentials found.", "Run `aws configure`.")
        yield  # a generator, like lifecycle.status

    monkeypatch.setattr(status, "probe", lambda alias: status.Health())
    monkeypatch.setattr(status, "container_state", lambda alias: None)
    with pytest.raises(GpuboxError, match="No AWS credentials"):
        list(status.text(None, None, ec2_lines=no_credentials))
    ssh_entry(home, "lab1", port=2201)
    lines = list(status.text(None, None, ec2_lines=no_credentials))
    assert lines == ["lab1: unreachable, SSH host at 127.0.0.1:2201",
                     "EC2: not listed: No AWS credentials found. -> Run `aws configure`."]
    assert list(status.text(None, None, local_only=True, ec2_lines=no_credentials)) == lines[:1]
    monkeypatch.setenv("HOME", str(home / "empty"))
    assert list(status.text(None, None, local_only=True)) == ["No local or SSH-host workstations set up on this machine."]


def test_json_has_every_workstation_with_ec2_price_and_cost(aws_env, home, image, monkeypatch):  # noqa: F811
    instance = launch(image, "cloudy")
    ssh_entry(home, "box", port=2201)
    ssh_entry(home, "lab1", port=2202)
    monkeypatch.setattr(status, "probe", lambda alias: healthy(alias) if alias == "gpubox-box" else status.Health())
    monkeypatch.setattr(status, "container_state", fake_containers)
    document = status.as_document(None, None)
    assert document["ec2_error"] is None and document["region"] == "us-east-1"
    by_name = {row["name"]: row for row in document["workstations"]}
    assert {name: row["kind"] for name, row in by_name.items()} == {"box": "local", "lab1": "host", "cloudy": "ec2"}
    assert by_name["box"] | {"address": "?"} == {
        "name": "box", "kind": "local", "state": "running", "address": "?", "ssh": "gpubox-box", "reachable": True,
        "jupyter": "ready",
        "autostop": {"state": "idle", "idle_minutes": 23, "stops_in_minutes": 37, "idle_limit_minutes": 60, "reasons": []},
        "audit": [],
        "tensorflow": {"ok": True, "version": "2.20.0", "gpus": ["Tesla T4"], "gflops": 812.5}}
    assert by_name["lab1"]["state"] == "unreachable" and by_name["lab1"]["tensorflow"] is None
    cloudy = by_name["cloudy"]
    assert cloudy["instance_id"] == instance["InstanceId"] and cloudy["state"] == "running"
    assert cloudy["hourly_price_usd"] == 0.526 and cloudy["cost_so_far_usd"] >= 0 and cloudy["reachable"] is False
    json.dumps(document)  # all of it serialisable


def test_runner_status_text_and_json_with_moto(aws_env, home, image):  # noqa: F811
    """The CLI end to end, with real (unreachable) SSH probes and podman asked for real."""
    launch(image, "clirun")
    ssh_entry(home, "lab2", port=2203)

    def runner(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "runner.py", "status", *args], cwd=PROJECT, env=aws_env,
                              capture_output=True, text=True, timeout=120, check=False)

    shown = runner()
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("lab2: unreachable, SSH host at 127.0.0.1:")
    assert any(line.startswith("clirun: running, g4dn.xlarge") for line in lines)
    document = json.loads(runner("--json").stdout)
    assert {row["name"] for row in document["workstations"]} >= {"lab2", "clirun"}
    local_only = json.loads(runner("--local", "--json").stdout)
    assert [row["name"] for row in local_only["workstations"]] == ["lab2"] and local_only["region"] is None


def test_the_report_line_names_what_is_missing():
    assert status.report_line({}) == "TensorFlow ? (FAILED), no GPU seen, ? GFLOP/s"


AUDIT = [{"tool": "chkrootkit", "finished": "2026-12-07T03:12:00+00:00", "result": "success", "finding_lines": 1},
         {"tool": "dailyaidecheck", "finished": "2026-12-07T03:20:00+00:00", "result": "success", "finding_lines": 0}]


def test_the_audit_tools_figures_reach_status_text_and_json(tmp_path):
    """The hardening role's summaries (roles/hardening/files/audit-summary) are read by the same probe,
    from the files it names, and shown as one line and as fields; a line that is not a summary is left out."""
    directory = tmp_path / "audit"
    directory.mkdir()
    for item in AUDIT:
        (directory / f"{item['tool']}.json").write_text(json.dumps(item) + "\n")
    (directory / "junk.json").write_text("[not, a, summary]\n")
    probe = status.PROBE.replace(contract.AUDIT_SUMMARY_DIR, str(directory))
    assert probe != status.PROBE
    result = subprocess.run(["sh", "-c", probe], capture_output=True, text=True, check=False, cwd=tmp_path)
    health = status.parse_probe(result.stdout)
    assert [item["tool"] for item in health.audit] == ["chkrootkit", "dailyaidecheck"]
    row = status.Row("box", "host", "reachable", "192.0.2.7", health)
    lines = list(status.describe(row))
    assert ("  audit: chkrootkit 1 line of findings (2026-12-07T03:12:00+00:00); dailyaidecheck no findings "
            "(2026-12-07T03:20:00+00:00) -> `python runner.py report` shows them") in lines, lines
    assert status.as_json(row)["audit"] == AUDIT


def test_a_failed_audit_run_is_said_and_no_summary_means_no_line():
    from gpubox import workstation

    failed = workstation.audit_line([{**AUDIT[1], "result": "exit-code"}])
    assert failed == "audit: dailyaidecheck no findings (2026-12-07T03:20:00+00:00, run exit-code)"
    assert workstation.audit_line([]) is None


def test_the_ec2_report_command_succeeds_where_nothing_is_there_yet(tmp_path):
    """status reads an EC2 workstation's report with this command; a failing exit code hides the
    report (seen: no audit summary yet made the whole command fail)."""
    from gpubox import workstation

    result = subprocess.run(["sh", "-c", workstation.report_command()], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("--gpubox--") == 2
