"""Bounded waits for the database (docs/API.md, Database faults): a request whose database work
waits longer than ``PYTM4SRV_DB_TIMEOUT`` answers 503 with ``Retry-After`` and writes nothing.

Real waits on a database of the test's own: a lock held by another connection (both databases),
and a PostgreSQL address that accepts connections but never answers. The frozen server is in
tests/test_live_faults.py.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask, g
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import OperationalError

from pytm4srv import create_app
from pytm4srv.db import _DEADLINE as DEADLINE_KEY  # the request deadline on g
from pytm4srv.db import (
    COMMAND_BUSY_TIMEOUT,
    WATCHDOG_GRACE,
    WRITE,
    Database,
    database,
    make_engine,
)
from pytm4srv.errors import RETRY_AFTER
from pytm4srv.models import Machine, MachineHold, Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import migrated_database, on_postgresql
from tests.test_errors import assert_envelope
from tests.throwaway_postgres import throwaway_postgres
from tests.throwaway_postgres import unavailable as throwaway_postgres_unavailable

HOLDS = "/api/machines/holds/"
TIMEOUT = 1.0
#: Slack for a loaded machine on top of the timeout (and the watchdog's grace).
SLACK = 3.0


@pytest.fixture
def world(tmp_path: Any) -> Iterator[tuple[Flask, str, dict[str, str]]]:
    """An app with a 1 s database timeout on a fresh database holding a user, a machine and a
    hold: (app, url, headers)."""
    with migrated_database(tmp_path) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url, "DB_TIMEOUT": TIMEOUT})
        token = new_token()
        with database(app).open(WRITE) as session:
            session.add(
                User(name="u", role=Role.ADMIN, token_hash=hash_token(token), created=now())
            )
            # Ids are set for short paths; the hold's sequence is moved past the one set.
            session.add(Machine(id=1, name="m"))
            session.flush()
            session.add(MachineHold(id=1, machine_id=1, reason="before", start=now()))
            session.commit()
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT setval('machine_holds_id_seq', 1)"))
                session.commit()
        yield app, url, {"Authorization": f"Bearer {token}"}
        database(app).engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def locked(url: str, *statements: str) -> Iterator[Connection]:
    """Another connection in a write transaction (on SQLite: holding the write lock, which
    BEGIN IMMEDIATE takes), that took its PostgreSQL locks with ``statements``."""
    engine = make_engine(url)
    try:
        with Database(engine).open(WRITE) as session:
            conn = session.connection()
            if engine.dialect.name == "postgresql":
                for statement in statements:
                    conn.execute(text(statement))
            yield conn
            session.rollback()
    finally:
        engine.dispose()


def assert_busy_503(response: Any, elapsed: float) -> None:
    assert_envelope(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert "within 1 s" in response.json["message"]
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + WATCHDOG_GRACE + SLACK, elapsed


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``call(...)`` and how long it took; it fails the test (instead of hanging it) if it does
    not return within the bound."""
    started = time.monotonic()
    pool = ThreadPoolExecutor(1)
    try:
        response = pool.submit(call, *args, **kwargs).result(TIMEOUT + WATCHDOG_GRACE + SLACK)
    finally:
        pool.shutdown(wait=False)
    return response, time.monotonic() - started


def stored_holds(app: Flask) -> list[tuple[int, str, Any]]:
    with database(app).open(WRITE) as session:
        columns = (MachineHold.id, MachineHold.reason, MachineHold.end)
        return [tuple(row) for row in session.execute(select(*columns).order_by(MachineHold.id))]


def test_a_write_waiting_for_a_lock_answers_503_and_writes_nothing(world):
    app, url, headers = world
    client = app.test_client()
    # PostgreSQL: the table locked against writers; SQLite: the database's write lock.
    with locked(url, "LOCK TABLE machine_holds IN SHARE MODE"):
        r, elapsed = timed(
            client.put, HOLDS, json={"machine_id": 1, "reason": "lost"}, headers=headers
        )
        assert_busy_503(r, elapsed)
        r, elapsed = timed(client.patch, f"{HOLDS}1", json={"reason": "lost"}, headers=headers)
        assert_busy_503(r, elapsed)
    assert stored_holds(app) == [(1, "before", None)]
    # The lock gone, the same requests go through at once, on the same pooled connections.
    assert (
        client.put(HOLDS, json={"machine_id": 1, "reason": "kept"}, headers=headers).status_code
        == 201
    )
    assert client.patch(f"{HOLDS}1", json={"notes": "n"}, headers=headers).status_code == 200
    assert [reason for _, reason, _ in stored_holds(app)] == ["before", "kept"]


@pytest.mark.skipif(not on_postgresql(), reason="SQLite readers do not wait for a writer")
def test_a_read_waiting_for_a_lock_answers_503(world):
    app, url, headers = world
    with locked(url, "LOCK TABLE machine_holds IN ACCESS EXCLUSIVE MODE"):
        r, elapsed = timed(app.test_client().get, HOLDS, headers=headers)
        assert_busy_503(r, elapsed)
    assert app.test_client().get(HOLDS, headers=headers).status_code == 200


@pytest.mark.skipif(not on_postgresql(), reason="row locks: PostgreSQL")
def test_a_patch_of_a_row_another_transaction_locked_answers_503(world):
    app, url, headers = world
    with locked(url, "SELECT id FROM machine_holds WHERE id = 1 FOR UPDATE"):
        r, elapsed = timed(
            app.test_client().patch, f"{HOLDS}1", json={"end": 2_000_000_000}, headers=headers
        )
        assert_busy_503(r, elapsed)
    assert stored_holds(app) == [(1, "before", None)]


def test_commands_keep_their_own_lock_wait(world):
    """The request timeout applies to requests: a command in the same process waits as long
    as commands do (30 s on SQLite), so it is not cut short by a setting meant for clients."""
    app, url, headers = world
    engine = database(app).engine
    assert app.test_client().get(HOLDS, headers=headers).status_code == 200
    with engine.connect() as conn:  # outside any request: the pooled connection, reset
        if engine.dialect.name == "sqlite":
            wait = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert wait == COMMAND_BUSY_TIMEOUT * 1000
        else:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "0"
        conn.rollback()
    with app.test_request_context(), engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == TIMEOUT * 1000
        else:
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "1s"
        conn.rollback()


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield listener.getsockname()[1]


def test_a_database_that_accepts_but_never_answers_gives_503_within_the_timeout():
    with silent_server() as port:
        url = f"postgresql+psycopg://root@127.0.0.1:{port}/nothing"
        # libpq's connect_timeout counts whole seconds, at least 2.
        app = create_app({"DATABASE_URL": url, "DB_TIMEOUT": 2})
        headers = {"Authorization": "Bearer some-token"}
        for _ in range(2):
            r, elapsed = timed(app.test_client().get, HOLDS, headers=headers)
            assert_envelope(r, 503)
            assert r.headers["Retry-After"] == str(RETRY_AFTER)
            assert 1.8 <= elapsed < 2 + SLACK, elapsed
        database(app).engine.dispose()


def test_the_timeout_setting_must_be_a_positive_number():
    for bad in (0, -1, "soon", True, float("nan"), float("inf")):
        with pytest.raises(RuntimeError, match="PYTM4SRV_DB_TIMEOUT"):
            create_app({"DB_TIMEOUT": bad})
    assert create_app({"DB_TIMEOUT": 2.5}).config["DB_TIMEOUT"] == 2.5


def test_the_timeout_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTM4SRV_DB_TIMEOUT", "3")
    monkeypatch.setenv("PYTM4SRV_DATABASE_URL", f"sqlite:///{tmp_path}/a.sqlite")
    assert create_app().config["DB_TIMEOUT"] == 3
    monkeypatch.delenv("PYTM4SRV_DB_TIMEOUT")
    assert create_app().config["DB_TIMEOUT"] == 10


@pytest.mark.skipif(throwaway_postgres_unavailable() is not None, reason="no throwaway PostgreSQL")
@pytest.mark.parametrize("left", [0.2, 2.5])
def test_a_new_connection_to_a_frozen_postmaster_gives_up_with_the_request(left):
    """However little of the request's time is left when it needs a new connection, the wait
    ends within that and the watchdog's grace: the driver's own connect_timeout counts whole
    seconds, at least 2, per address it tries."""
    with throwaway_postgres() as server:
        app = create_app({"DATABASE_URL": server.url, "DB_TIMEOUT": 3})
        engine = database(app).engine
        with engine.connect() as warm:  # a command's connection: no request, no bound
            warm.execute(text("SELECT 1"))
        engine.dispose()
        server.freeze_postmaster()
        try:
            with app.test_request_context():
                g.setdefault(DEADLINE_KEY, time.monotonic() + left)
                started = time.monotonic()
                with pytest.raises(OperationalError):
                    with engine.connect() as connection:
                        connection.execute(text("SELECT 1"))
                waited = time.monotonic() - started
        finally:
            server.thaw()
        assert waited < left + WATCHDOG_GRACE + 0.3, waited
        engine.dispose()
