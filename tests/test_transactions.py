"""Transactions are declared, not inferred: every write runs in a write transaction.

These tests use a real engine on a database of their own, not the suite's rolled-back connection
(whose sessions only ever open SAVEPOINTs), so that the transactions begin exactly as in service:
on SQLite a write transaction begins with ``BEGIN IMMEDIATE``, on PostgreSQL a read runs in
autocommit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from pytm4srv import create_app
from pytm4srv.db import READ, WRITE, database, declared_mode
from tests.conftest import migrated_database

MACHINES = "/api/machines/"
HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
WRITE_VERBS = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Statement:
    sql: str
    mode: str | None
    isolation: str | None
    #: SQLite: the BEGIN statement of the transaction the statement ran in.
    begun_with: str | None


@dataclass
class Tracker:
    """Every statement the app's engine runs, with the transaction it ran in."""

    statements: list[Statement] = field(default_factory=list)
    begins: dict[int, str] = field(default_factory=dict)

    def writes(self) -> list[Statement]:
        return [s for s in self.statements if s.sql.lstrip().upper().startswith(WRITE_VERBS)]

    def clear(self) -> None:
        self.statements.clear()


@pytest.fixture
def real_app(tmp_path: Any) -> Iterator[tuple[Flask, Tracker]]:
    with migrated_database(tmp_path) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url})
        engine = database(app).engine
        tracker = Tracker()

        @event.listens_for(engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            options = conn.get_execution_options()
            key = id(conn.connection.dbapi_connection)
            if statement.upper().startswith("BEGIN"):
                tracker.begins[key] = statement.upper()
                return
            tracker.statements.append(
                Statement(
                    statement,
                    options.get("pytm4srv_transaction"),
                    options.get("isolation_level"),
                    tracker.begins.get(key),
                )
            )

        yield app, tracker
        engine.dispose()


def token_of(app: Flask, name: str, role: str) -> str:
    result = app.test_cli_runner().invoke(args=["users", "create", name, "--role", role])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def machine_of(app: Flask, name: str) -> int:
    result = app.test_cli_runner().invoke(args=["machines", "create", name])
    assert result.exit_code == 0, result.output
    return int(result.output.strip().splitlines()[-1])


def assert_written_under_the_write_lock(app: Flask, tracker: Tracker) -> None:
    writes = tracker.writes()
    assert writes, "the step wrote nothing, so it shows nothing"
    for statement in writes:
        assert statement.mode == WRITE, statement
        if database(app).engine.dialect.name == "sqlite":
            assert statement.begun_with == "BEGIN IMMEDIATE", statement


def test_every_api_write_runs_under_the_write_lock(real_app: tuple[Flask, Tracker]) -> None:
    app, tracker = real_app
    headers = {"Authorization": f"Bearer {token_of(app, 'ada', 'admin')}"}
    machine = machine_of(app, "lathe")
    client = app.test_client()
    schedule = {"machine_id": machine, "name": "n", "reason": "r", "frequency": "D"}
    keyed = headers | {"Idempotency-Key": "k"}
    steps = [
        ("put", HOLDS, {"machine_id": machine, "reason": "r"}, headers, 201),
        ("patch", f"{HOLDS}1", {"notes": "n"}, headers, 200),
        ("delete", f"{HOLDS}1", None, headers, 204),
        ("put", SCHEDULES, schedule | {"time_of_day": "08:00"}, headers, 201),
        ("patch", f"{SCHEDULES}1", {"time_of_day": "09:00"}, headers, 200),
        ("delete", f"{SCHEDULES}1", None, headers, 204),
        ("put", MACHINES, {"name": "press"}, headers, 201),
        ("patch", f"{MACHINES}2", {"name": "drill"}, headers, 200),
        ("delete", f"{MACHINES}2", None, headers, 204),
        ("post", "/api/me/feed", None, headers, 201),
        # With an idempotency key: the object and the stored answer.
        ("put", HOLDS, {"machine_id": machine, "reason": "r"}, keyed, 201),
        (
            "put",
            SCHEDULES,
            schedule | {"time_of_day": "08:00"},
            keyed | {"Idempotency-Key": "s"},
            201,
        ),
    ]
    for method, path, body, sent, status in steps:
        tracker.clear()
        response = getattr(client, method)(path, json=body, headers=sent)
        assert response.status_code == status, (method, path, response.json)
        assert_written_under_the_write_lock(app, tracker)
        if path.startswith(HOLDS):  # holds and schedules: the history entry in the same lock
            assert any("history_entries" in s.sql for s in tracker.writes()), (method, path)
    assert {s.sql.split("(")[0].strip() for s in tracker.writes()} >= {
        "INSERT INTO machine_hold_schedules",
        "INSERT INTO idempotency_keys",
    }
    # A repeat writes nothing, and reads under the write lock it declared.
    tracker.clear()
    body = {"machine_id": machine, "reason": "r"}
    assert client.put(HOLDS, json=body, headers=keyed).status_code == 201
    assert tracker.statements and not tracker.writes()
    assert {s.mode for s in tracker.statements} == {WRITE}


def test_every_command_that_writes_runs_under_the_write_lock(
    real_app: tuple[Flask, Tracker],
) -> None:
    app, tracker = real_app
    runner = app.test_cli_runner()
    commands = [
        ["users", "create", "bob", "--role", "staff"],
        ["users", "rotate-token", "bob"],
        ["users", "set-role", "bob", "planner"],
        ["machines", "create", "press"],
    ]
    for args in commands:
        tracker.clear()
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        assert_written_under_the_write_lock(app, tracker)

    headers = {"Authorization": f"Bearer {token_of(app, 'cy', 'planner')}"}
    body = {"machine_id": 1, "name": "n", "reason": "r", "frequency": "H", "time_of_day": "00:30"}
    assert app.test_client().put(SCHEDULES, json=body, headers=headers).status_code == 201
    tracker.clear()
    now = str(int(datetime.now(UTC).timestamp()))
    result = runner.invoke(args=["holds", "materialize", "--now", now, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "created=0" not in result.output
    assert_written_under_the_write_lock(app, tracker)  # and rolled back (tests/holds)

    tracker.clear()
    result = runner.invoke(args=["holds", "materialize", "--now", now, "--batch-size", "1"])
    assert result.exit_code == 0, result.output
    assert "created=0" not in result.output
    assert_written_under_the_write_lock(app, tracker)

    tracker.clear()
    assert runner.invoke(args=["users", "delete", "bob"]).exit_code == 0
    assert_written_under_the_write_lock(app, tracker)

    tracker.clear()
    result = runner.invoke(args=["holds", "expire-keys"])
    assert result.exit_code == 0, result.output
    assert_written_under_the_write_lock(app, tracker)


def test_reads_run_in_read_transactions(real_app: tuple[Flask, Tracker]) -> None:
    app, tracker = real_app
    headers = {"Authorization": f"Bearer {token_of(app, 'dee', 'staff')}"}
    machine_of(app, "mill")
    client = app.test_client()
    preview = {"frequency": "D", "time_of_day": "08:00"}
    feed = app.test_cli_runner().invoke(
        args=["feed", "new-url", "dee", "--base-url", "http://localhost"]
    )
    feed_path = feed.output.strip().splitlines()[-1].removeprefix("http://localhost")
    tracker.clear()
    assert client.get(feed_path).status_code == 200
    paths = (MACHINES, HOLDS, SCHEDULES, f"{HOLDS}99", f"{HOLDS}99/history", "/api/health")
    for path in paths + (f"{SCHEDULES}99/history", "/api/me", f"{MACHINES}1"):
        assert client.get(path, headers=headers).status_code in (200, 404)
    response = client.post(f"{SCHEDULES}previewSchedule", json=preview, headers=headers)
    assert response.status_code == 200
    assert tracker.statements and not tracker.writes()
    for statement in tracker.statements:
        assert statement.mode == READ, statement
        if database(app).engine.dialect.name == "postgresql":
            assert statement.isolation == "AUTOCOMMIT", statement
        else:
            assert statement.begun_with == "BEGIN", statement


def test_every_view_declares_its_transaction(app: Flask) -> None:
    undeclared, checked = [], set()
    for endpoint, view in app.view_functions.items():
        view_class = getattr(view, "view_class", None)
        if view_class is None:
            continue  # the OpenAPI document and the docs page: plain functions, no database
        checked.add(endpoint.partition(".")[0])
        for method in view_class.methods:
            function = getattr(view_class, method.lower())
            if declared_mode(function) not in (READ, WRITE):
                undeclared.append(f"{endpoint} {method}")
    assert checked == {"health", "machines", "holds", "history", "window", "me", "feed"}
    assert not undeclared
