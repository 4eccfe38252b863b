"""Logging (docs/API.md, Logging): one line per request, text or JSON, a request id, and never a
token or a feed secret, in the app's log nor in the servers' own (gunicorn, ``flask run``)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytm4srv import create_app
from pytm4srv.db import WRITE, database
from pytm4srv.logs import mask_path, mask_secrets
from pytm4srv.models import Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import REPO, migrated_database

HOLDS = "/api/machines/holds/"
FEED_SECRET = "fEEdS3cr3tThatMustNotLeak_0123456789"
QUERY_SECRET = "qu3rySecretThatMustNotLeak"
BOGUS_TOKEN = "b0gusTokenThatMustNotLeak"


def request_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pytm4srv.request"]


def secret_requests(caller) -> list[tuple[int, str]]:
    """Requests that carry secrets in every place a request can: (status, masked path)."""
    client = caller.client
    return [
        (caller.get(HOLDS).status_code, HOLDS),
        (caller.get(f"/api/feed/{FEED_SECRET}.ics").status_code, "/api/feed/***"),
        (client.get(f"/api/feed/{FEED_SECRET}").status_code, "/api/feed/***"),
        (client.get(f"/api//feed/{FEED_SECRET}/x.ics").status_code, "/api//feed/***"),
        (caller.get(f"{HOLDS}?bogus={QUERY_SECRET}").status_code, HOLDS),
        (
            client.get(HOLDS, headers={"Authorization": f"Bearer {BOGUS_TOKEN}"}).status_code,
            HOLDS,
        ),
    ]


def test_one_line_per_request_with_its_facts_and_no_secret(staff, app_log):
    app_log.clear()
    sent = secret_requests(staff)
    records = request_records(app_log)
    assert [(r.status, r.path) for r in records] == sent
    assert [r.method for r in records] == ["GET"] * len(sent)
    assert records[0].user_id == staff.user.id
    assert records[-1].user_id is None  # the bogus token found nobody
    assert all(r.ms >= 0 and re.fullmatch(r"[0-9a-f]{32}", r.request_id) for r in records)
    assert f" {HOLDS} 200 " in records[0].getMessage()
    assert f"user={staff.user.id} " in records[0].getMessage()
    text = app_log.text
    for secret in (staff.token, FEED_SECRET, QUERY_SECRET, BOGUS_TOKEN):
        assert secret not in text


def test_a_failing_request_on_a_feed_path_logs_no_secret(admin, app, app_log, monkeypatch):
    """Flask logs the exception with the request's path: masked too."""
    app.testing = False

    @app.route("/api/feed/<secret>")
    def feed(secret):
        raise RuntimeError("boom")

    r = admin.get(f"/api/feed/{FEED_SECRET}")
    assert r.status_code == 500
    assert "boom" in app_log.text
    assert "Exception on /api/feed/***" in app_log.text
    assert FEED_SECRET not in app_log.text
    assert request_records(app_log)[-1].status == 500


def test_the_request_id_is_taken_if_sane_and_returned(staff, app_log):
    app_log.clear()
    r = staff.get(HOLDS, headers={"X-Request-ID": "req-42.a:b"})
    assert r.headers["X-Request-ID"] == "req-42.a:b"
    for insane in ["", "x" * 129, "a b", "a\tb", "ä", "a;b", 'a"b']:
        r = staff.get(HOLDS, headers={"X-Request-ID": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"]), insane
    assert [r.request_id for r in request_records(app_log)][0] == "req-42.a:b"


def test_every_answer_has_a_request_id_errors_and_unauthenticated_included(client):
    ids = set()
    for path in ["/api/health", HOLDS, "/api/nowhere", "/api/openapi.json"]:
        ids.add(client.get(path).headers["X-Request-ID"])
    assert len(ids) == 4


def test_control_characters_of_a_path_are_escaped():
    assert mask_path("/api/x\ny 200\r") == "/api/x\\x0ay 200\\x0d"
    assert mask_path("/api/feed/abc\n/def") == "/api/feed/***"
    assert mask_path("/api/me/feed") == "/api/me/feed"
    assert mask_secrets('GET "/api/FEED/abc.ics?x=1" 200') == 'GET "/api/FEED/***?x=1" 200'


def app_with(app_config, connection, **settings):
    app = create_app(app_config | settings)
    database(app).bind(connection)
    return app


def test_json_lines(app_config, connection, capsys):
    app = app_with(app_config, connection, LOG_FORMAT="json")
    capsys.readouterr()
    app.test_client().get(f"/api/feed/{FEED_SECRET}", headers={"X-Request-ID": "abc"})
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "pytm4srv.request"
    assert entry["level"] == "INFO"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/api/feed/***", 404)
    assert (entry["user_id"], entry["request_id"]) == (None, "abc")
    assert isinstance(entry["ms"], float)
    logged = datetime.fromisoformat(entry["time"])
    assert logged.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - logged).total_seconds()) < 60
    assert FEED_SECRET not in line


def test_text_lines_by_default(app_config, connection, capsys):
    app = app_with(app_config, connection)
    capsys.readouterr()
    app.test_client().get("/api/health", headers={"X-Request-ID": "abc"})
    (line,) = capsys.readouterr().err.splitlines()
    time_, rest = line.split(" ", 1)
    assert datetime.fromisoformat(time_).utcoffset().total_seconds() == 0
    assert re.fullmatch(
        r"INFO pytm4srv.request: GET /api/health 200 \d+\.\dms user=- request_id=abc", rest
    )


def test_the_level_is_configurable(app_config, connection, capsys):
    app = app_with(app_config, connection, LOG_LEVEL="warning")
    capsys.readouterr()
    app.test_client().get("/api/health")
    assert capsys.readouterr().err == ""
    assert logging.getLogger("pytm4srv").level == logging.WARNING


@pytest.mark.parametrize(
    ("setting", "value"), [("LOG_LEVEL", "LOUD"), ("LOG_FORMAT", "xml"), ("LOG_FORMAT", "JSON")]
)
def test_bad_settings_are_refused_at_start(app_config, setting, value):
    with pytest.raises(RuntimeError, match=f"PYTM4SRV_{setting}"):
        create_app(app_config | {setting: value})


# --- live servers: gunicorn as scripts/serve runs it, and flask run ----------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(base: str, path: str, token: str | None) -> int:
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _serve(command: list[str], url: str, tmp_path: Path, token: str) -> str:
    """Run the server, send requests with secrets, stop it; everything it printed."""
    port = _free_port()
    log = tmp_path / "server.log"
    env = os.environ | {"PYTM4SRV_DATABASE_URL": url, "FLASK_RUN_PORT": str(port)}
    command = [part.replace("PORT", str(port)) for part in command]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, log)
        statuses = [
            _get(base, HOLDS, token),
            _get(base, f"/api/feed/{FEED_SECRET}.ics", token),
            _get(base, f"/api/feed/{FEED_SECRET}", None),
            _get(base, f"{HOLDS}?bogus={QUERY_SECRET}", token),
            _get(base, HOLDS, BOGUS_TOKEN),
        ]
        assert statuses == [200, 404, 404, 422, 401]
    finally:
        process.terminate()
        process.wait(timeout=30)
    return log.read_text()


def _wait_until_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if _get(base, "/api/health", None) == 200:
                return
        except OSError:
            pass  # not listening yet
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path):
    """A migrated database with a staff user: (url, token)."""
    with migrated_database(tmp_path) as url:
        token = new_token()
        app = create_app({"DATABASE_URL": url})
        with database(app).open(WRITE) as session:
            session.add(
                User(
                    name="s",
                    role=Role.STAFF,
                    token_hash=hash_token(token),
                    created=datetime.now(UTC),
                )
            )
            session.commit()
        database(app).engine.dispose()
        yield url, token


def assert_no_secret(output: str, token: str) -> None:
    for secret in (token, FEED_SECRET, QUERY_SECRET, BOGUS_TOKEN):
        assert secret not in output, output


GUNICORN = [
    str(Path(sys.executable).parent / "gunicorn"),
    "--config",
    "gunicorn.conf.py",
    "--workers",
    "1",
    "--bind",
    "127.0.0.1:PORT",
    "pytm4srv:create_app()",
]


@pytest.mark.slow
def test_gunicorn_as_served_logs_each_request_once_without_secrets(served, tmp_path):
    url, token = served
    output = _serve(GUNICORN, url, tmp_path, token)
    assert_no_secret(output, token)
    lines = [line for line in output.splitlines() if "pytm4srv.request:" in line]
    assert len([line for line in lines if "/api/health" not in line]) == 5, output
    assert sum(" GET /api/feed/*** " in line for line in lines) == 2, output
    assert "Booting worker" in output  # gunicorn's own log is there, its access log is not
    assert not re.search(r'"GET /api', output), output


@pytest.mark.slow
def test_gunicorn_access_log_if_turned_on_shows_no_path(served, tmp_path):
    url, token = served
    output = _serve([*GUNICORN, "--access-logfile", "-"], url, tmp_path, token)
    assert_no_secret(output, token)
    access = [line for line in output.splitlines() if line.startswith("127.0.0.1 ")]
    assert len(access) >= 5, output
    app_ids = set(re.findall(r"pytm4srv\.request: .* request_id=(\w+)", output))
    assert {re.search(r"request_id=(\w+)", line).group(1) for line in access} == app_ids


@pytest.mark.slow
def test_flask_run_logs_the_apps_line_only_and_no_secret(served, tmp_path):
    url, token = served
    flask = str(Path(sys.executable).parent / "flask")
    output = _serve([flask, "--app", "pytm4srv", "run"], url, tmp_path, token)
    assert_no_secret(output, token)
    assert "Running on http://127.0.0.1" in output  # the development server's own lines stay...
    assert not re.search(r'"GET /api', output), output  # ...but not its request lines
    lines = [line for line in output.splitlines() if "pytm4srv.request:" in line]
    assert sum(" GET /api/feed/*** " in line for line in lines) == 2, output
