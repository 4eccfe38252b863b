"""A database that cannot be reached: 503 with the envelope, nothing half-written, and service
again as soon as the database is back.

The live test runs gunicorn on a scratch PostgreSQL database and makes that one database refuse
connections (``ALLOW_CONNECTIONS false`` and its backends terminated), never the shared server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.errors import RETRY_AFTER
from pytm4srv.models import Machine, MachineHold, Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import TEST_DATABASE_ENV, alembic_config, fresh_database, on_postgresql
from tests.live import gunicorn
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"


def user(name: str, role: Role, token: str) -> User:
    return User(name=name, role=role, token_hash=hash_token(token), created=datetime.now(UTC))


def unreachable_url(tmp_path: Path) -> str:
    if on_postgresql():
        # Nothing listens on port 1 of the loopback address: refused at once.
        return "postgresql+psycopg://root@127.0.0.1:1/nothing?connect_timeout=2"
    return f"sqlite:///{tmp_path / 'missing-folder' / 'db.sqlite'}"


def test_unreachable_database_answers_503_envelope(tmp_path):
    app = create_app({"DATABASE_URL": unreachable_url(tmp_path)})
    r = app.test_client().get(HOLDS, headers={"Authorization": "Bearer some-token"})
    assert_envelope(r, 503)
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Retry-After"] == str(RETRY_AFTER)
    assert "some-token" not in r.get_data(as_text=True)


def test_without_token_the_database_is_not_needed_for_the_401(tmp_path):
    app = create_app({"DATABASE_URL": unreachable_url(tmp_path)})
    assert_envelope(app.test_client().get(HOLDS), 401)


@pytest.mark.skipif(on_postgresql(), reason="SQLite: the database file appears later")
def test_service_resumes_when_the_database_appears(tmp_path):
    url = unreachable_url(tmp_path)
    app = create_app({"DATABASE_URL": url})
    client = app.test_client()
    token = new_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert_envelope(client.get(HOLDS, headers=headers), 503)

    (tmp_path / "missing-folder").mkdir()
    command.upgrade(alembic_config(url), "head")
    with database(app).open(WRITE) as session:
        session.add(user("u", Role.STAFF, token))
        session.commit()
    assert client.get(HOLDS, headers=headers).status_code == 200


def test_connection_lost_at_commit_is_503_and_writes_nothing(staff, machine, session, monkeypatch):
    def lose_connection(self):
        self.flush()  # the INSERT reached the database; the COMMIT does not
        raise OperationalError("COMMIT", {}, Exception("lost"), connection_invalidated=True)

    monkeypatch.setattr(Session, "commit", lose_connection)
    r = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"})
    monkeypatch.undo()
    assert_envelope(r, 503)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(MachineHold)) == 0


def test_failing_statement_is_a_500_not_a_misleading_503(admin, app, monkeypatch):
    """Bad SQL is a bug to see in the logs, not a database to wait for."""
    app.testing = False  # let Flask turn the exception into a 500, as in production
    monkeypatch.setattr(
        "pytm4srv.holds.views.filtered_holds",
        lambda args, page: (select(MachineHold).where(text("no_such_column = 1")), {}),
    )
    assert_envelope(admin.get(HOLDS), 500)


# --- live: gunicorn on a scratch PostgreSQL database ---------------------------------------------


def _call(base: str, method: str, path: str, token: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def live_server(tmp_path):
    """gunicorn as scripts/serve runs it, over a fresh migrated PostgreSQL database: (base URL,
    db name, token, admin engine, log)."""
    with fresh_database(tmp_path) as url:
        command.upgrade(alembic_config(url), "head")
        token = new_token()
        engine = make_engine(url)
        with Session(engine) as session:
            session.add(
                User(
                    name="a",
                    role=Role.ADMIN,
                    token_hash=hash_token(token),
                    created=datetime.now(UTC),
                )
            )
            session.add(Machine(name="m"))
            session.commit()
        engine.dispose()
        log = tmp_path / "gunicorn.log"
        admin = make_engine(os.environ[TEST_DATABASE_ENV], isolation_level="AUTOCOMMIT")
        try:
            with gunicorn(url, log) as live:
                yield live.base, make_url(url).database, token, admin, log
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(f'ALTER DATABASE "{make_url(url).database}" ALLOW_CONNECTIONS true')
                )
            admin.dispose()


def _cut_off(admin, name: str, allow: bool) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
        if not allow:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL")
def test_live_server_answers_503_while_the_database_is_away_and_recovers(live_server):
    base, name, token, admin, log = live_server
    assert _call(base, "GET", HOLDS, token)[0] == 200

    _cut_off(admin, name, allow=False)
    for _ in range(4):  # both workers, each with pooled connections that died
        status, headers, body = _call(base, "GET", HOLDS, token)
        assert status == 503
        assert set(body) == {"code", "status", "message", "errors"}
        assert headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        status, _, body = _call(base, "PUT", HOLDS, token, {"machine_id": 1, "reason": "lost"})
        assert status == 503 and body["code"] == 503

    _cut_off(admin, name, allow=True)
    for _ in range(4):
        assert _call(base, "GET", HOLDS, token)[0] == 200
    status, _, created = _call(base, "PUT", HOLDS, token, {"machine_id": 1, "reason": "kept"})
    assert status == 201
    status, _, holds = _call(base, "GET", HOLDS, token)
    assert [hold["reason"] for hold in holds] == ["kept"]  # the refused writes left nothing

    text_of_log = log.read_text()
    assert token not in text_of_log
    assert "Traceback" not in text_of_log
