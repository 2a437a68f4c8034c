"""gpubox's notices in JupyterLab, server half: the idle stop coming and the team's budget warning
for a data scientist who works only in the browser (the checker's `wall` reaches terminals only).

Every jupyter@<user> server loads it (jupyter_server_config.py); it runs as that user, behind the
server's own token authentication, and adds two routes under the server's base URL:
  GET  gpubox/notices  {"notices": [{"id", "type", "message", "hold"}]}, from the autostop
                       checker's status file (root-owned, 0644, the same facts `runner.py status` reads)
  POST gpubox/hold     {"hours": H}: the user's own hold, as `runner.py hold --hours H` places it
The browser half (labextension/static/remoteEntry.js) polls the first and shows each notice as a
JupyterLab notification, with a button that posts to the second.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone

STATUS_FILE = "/var/lib/gpubox/autostop/status.json"
HOLDS_DIR = "/var/lib/gpubox/holds"
MAX_STATUS_BYTES = 256 * 1024
# A verdict older than this, or than 2.5 checker intervals where IT runs it less often than every
# minute, is not news (a stopped timer, a host just up).
FRESH_SECONDS = 300
# What the browser's button may ask for; the checker bounds every hold anyway (autostop_hold_max_hours).
MIN_HOLD_HOURS = 0.25
MAX_HOLD_HOURS = 24.0
MAX_HOLD_BYTES = 64


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def read_status(path: str | None = None) -> dict | None:
    """The checker's last verdict; None when there is none or it cannot be read."""
    try:
        with open(path or STATUS_FILE, "rb") as handle:
            data = handle.read(MAX_STATUS_BYTES + 1)
        status = json.loads(data) if len(data) <= MAX_STATUS_BYTES else None
    except (OSError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def notices(status: dict | None, now: datetime) -> list[dict]:
    """What the browser should show now: the idle stop once it is within the warning minutes of a
    fresh verdict, and the budget warning while there is one."""
    if not status:
        return []
    found = []
    try:
        age = (now - parse_time(str(status["checked_at"]))).total_seconds()
    except (KeyError, ValueError):
        age = None
    stops_in, warn, limit, idle = (status.get(key) for key in ("stops_in_minutes", "warn_minutes", "idle_limit", "idle_minutes"))
    interval = status.get("check_interval_seconds")
    fresh_for = max(FRESH_SECONDS, 2.5 * interval) if _number(interval) else FRESH_SECONDS
    if age is not None and 0 <= age <= fresh_for and all(map(_number, (stops_in, warn, limit, idle))) and limit > 0 and stops_in <= warn:
        # As of now, not of the check: the page asks more often than the checker runs.
        remaining, idle = stops_in - age / 60, idle + age / 60
        when = "now" if remaining < 1 else f"in {remaining:.0f} min"
        found.append({
            # One notification per idle period: its text is updated, not shown again, as minutes pass.
            "id": f"idle-{status.get('idle_since', '')}",
            "type": "warning",
            # Short enough for the pop-up (JupyterLab cuts a longer text there at 140 characters).
            "message": f"gpubox: idle {idle:.0f} min, this workstation stops {when}. Run a cell or keep it up; your files stay.",
            "hold": True,
        })
    budget = status.get("budget")
    if isinstance(budget, str) and budget.strip():
        found.append({
            "id": "budget-" + hashlib.sha256(budget.encode()).hexdigest()[:16],
            "type": "warning",
            "message": f"gpubox budget: {budget.strip()} (`python runner.py cost` shows the spend)",
            "hold": False,
        })
    return found


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _own_holds(directory: str, me: int) -> list[tuple[str, str]]:
    """(path, its text) of each regular file of the caller's in the holds directory."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != me:
                    continue
                descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(descriptor, "rb") as handle:
                    found.append((entry.path, handle.read(MAX_HOLD_BYTES).decode("ascii", "replace").strip()))
            except OSError:
                continue  # released while we looked
    return found


def place_hold(hours: float, now: datetime, directory: str | None = None) -> str:
    """The caller's hold until now + hours (UTC, as the checker reads it): a new file of theirs in the
    sticky directory (any name there may already be someone else's), then their older ones removed.
    A hold of theirs that already lasts as long or longer (or until released, "") is kept as it is
    (a page a minute late must not cut short `runner.py hold --hours 8`). Returns the expiry in force."""
    if not MIN_HOLD_HOURS <= hours <= MAX_HOLD_HOURS:  # also refuses nan and inf
        raise ValueError(f"hours must be from {MIN_HOLD_HOURS:g} to {MAX_HOLD_HOURS:g}")
    until = (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    directory = directory or HOLDS_DIR
    me = os.getuid()
    existing = _own_holds(directory, me)
    for _path, text in existing:
        try:
            if not text or parse_time(text) >= parse_time(until):
                return text
        except ValueError:
            continue  # a malformed hold of theirs: replaced below
    user = os.environ.get("USER") or str(me)
    descriptor, path = tempfile.mkstemp(prefix=f"{user}.", dir=directory)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(until + "\n")
    for older, _text in existing:
        try:
            os.unlink(older)
        except FileNotFoundError:
            pass
    return until


def _load_jupyter_server_extension(serverapp) -> None:
    # Imported here: the functions above are tested without a Jupyter server installed.
    from jupyter_server.base.handlers import APIHandler
    from jupyter_server.utils import url_path_join
    from tornado import web

    class NoticesHandler(APIHandler):
        # The page asks every 20 s: that is not the user's activity (Jupyter's own idle culling).
        _track_activity = False

        @web.authenticated
        def get(self) -> None:
            self.finish(json.dumps({"notices": notices(read_status(), datetime.now(timezone.utc))}))

    class HoldHandler(APIHandler):
        @web.authenticated
        def post(self) -> None:
            try:
                hours = float(self.get_json_body().get("hours", 1))
                until = place_hold(hours, datetime.now(timezone.utc))
            except (AttributeError, TypeError, ValueError) as error:
                raise web.HTTPError(400, f"not a hold: {error}") from None
            except OSError as error:
                raise web.HTTPError(500, f"could not place the hold in {HOLDS_DIR}: {error.strerror}") from None
            self.finish(json.dumps({"until": until}))

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "gpubox/notices"), NoticesHandler),
        (url_path_join(base, "gpubox/hold"), HoldHandler),
    ])


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "gpubox_notices"}]
