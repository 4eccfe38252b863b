"""``flask holds materialize --lock-timeout``: a lock another transaction holds is waited for at
most that long (docs/MATERIALIZER.md, Bad rows and locks). On a database of its own, so that
the other transaction and the run's are real ones, on connections of their own."""

from __future__ import annotations

import sqlite3
import time as clock
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from flask import Flask
from sqlalchemy import make_url, select, text

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule
from tests.conftest import migrated_database, on_postgresql, stderr_lines

NOW = datetime(2027, 3, 10, 12, tzinfo=UTC)
FIRE = datetime(2027, 3, 10, 18, tzinfo=UTC)
SCHEDULES = 5
#: Far below the default of 30 s, and what a run may take at most here (a few waits of 1 s).
BOUND = 15

postgresql_only = pytest.mark.skipif(not on_postgresql(), reason="row locks are PostgreSQL's")
sqlite_only = pytest.mark.skipif(on_postgresql(), reason="the write lock is SQLite's")


@pytest.fixture
def app(tmp_path) -> Iterator[Flask]:
    """An app on a fresh database, not joined to any test transaction, with SCHEDULES daily
    schedules due at NOW (one fire each, at FIRE)."""
    with migrated_database(tmp_path) as url:
        app = create_app({"DATABASE_URL": url})
        with database(app).open(WRITE) as session:
            machine = Machine(name="lathe")
            session.add(machine)
            session.flush()
            for i in range(SCHEDULES):
                schedule = MachineHoldSchedule(
                    machine_id=machine.id,
                    name=f"s{i}",
                    reason="r",
                    frequency="D",
                    time_of_day=time(18),
                    indices=[],
                    duration=timedelta(minutes=30),
                    anchor=NOW,
                    created=NOW,
                )
                refresh_next_fire(schedule, UTC)
                session.add(schedule)
            session.commit()
        yield app
        database(app).engine.dispose()


def run(app: Flask, *options: str):
    """The command at NOW with a horizon of 12 hours; its result and seconds taken."""
    now = str(int(NOW.timestamp()))
    args = ["holds", "materialize", "--now", now, "--horizon", "720", *options]
    started = clock.monotonic()
    result = app.test_cli_runner().invoke(args=args)
    return result, clock.monotonic() - started


def holds(app: Flask) -> dict[int, list[datetime]]:
    with database(app).engine.connect() as conn:
        rows = conn.execute(select(MachineHold.schedule_id, MachineHold.start)).all()
    got: dict[int, list[datetime]] = {}
    for schedule_id, start in rows:
        got.setdefault(schedule_id, []).append(start)
    return got


def schedule_ids(app: Flask) -> list[int]:
    with database(app).engine.connect() as conn:
        return list(conn.scalars(select(MachineHoldSchedule.id).order_by(MachineHoldSchedule.id)))


@postgresql_only
def test_a_row_locked_longer_than_the_timeout_is_named_and_the_others_done(app):
    ids = schedule_ids(app)
    locked = ids[2]
    other = make_engine(app.config["DATABASE_URL"])
    with other.connect() as conn:
        transaction = conn.begin()
        statement = "SELECT id FROM machine_hold_schedules WHERE id = :id FOR UPDATE"
        conn.execute(text(statement), {"id": locked})

        result, seconds = run(app, "--lock-timeout", "1", "--batch-size", "2")
        assert seconds < BOUND
        assert result.exit_code == 1
        assert result.stdout.startswith(f"materialize: schedules={SCHEDULES - 1} created=4 ")
        assert stderr_lines(result) == [
            f"schedule {locked}: locked by another transaction for more than 1 s"
        ]
        assert holds(app) == {sid: [FIRE] for sid in ids if sid != locked}
        transaction.rollback()
    other.dispose()

    result, _ = run(app, "--lock-timeout", "1")
    assert (result.exit_code, stderr_lines(result)) == (0, [])
    assert "schedules=1 created=1 " in result.stdout
    assert holds(app) == {sid: [FIRE] for sid in ids}


@postgresql_only
def test_a_locked_holds_table_names_the_schedules_of_each_batch(app):
    ids = schedule_ids(app)
    other = make_engine(app.config["DATABASE_URL"])
    with other.connect() as conn:
        transaction = conn.begin()
        conn.execute(text("LOCK TABLE machine_holds IN EXCLUSIVE MODE"))

        result, seconds = run(app, "--lock-timeout", "1", "--batch-size", "2")
        assert seconds < BOUND  # three batches, one wait each
        assert result.exit_code == 1
        assert result.stdout.startswith("materialize: schedules=0 created=0 ")
        assert stderr_lines(result) == [
            f"schedule {sid}: locked by another transaction for more than 1 s" for sid in ids
        ]
        transaction.rollback()
    other.dispose()
    assert holds(app) == {}

    result, _ = run(app, "--lock-timeout", "1")
    assert result.exit_code == 0
    assert holds(app) == {sid: [FIRE] for sid in ids}


@sqlite_only
def test_a_write_lock_held_longer_than_the_timeout_fails_the_run_with_one_line(app):
    path = make_url(app.config["DATABASE_URL"]).database
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        result, seconds = run(app, "--lock-timeout", "1")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert 1 <= seconds < BOUND
    assert result.exit_code == 1
    assert result.stdout == ""
    assert stderr_lines(result) == [
        "Error: materialize failed: waited more than 1 s for a lock another transaction holds "
        "(database is locked)"
    ]
    assert holds(app) == {}

    result, _ = run(app, "--lock-timeout", "1")
    assert (result.exit_code, stderr_lines(result)) == (0, [])
    assert holds(app) == {sid: [FIRE] for sid in schedule_ids(app)}


@pytest.mark.parametrize("value", ["0", "-1", "soon", "86401"])
def test_the_lock_timeout_is_a_positive_number_of_seconds(app, value):
    result, _ = run(app, "--lock-timeout", value)
    assert result.exit_code == 2
    assert "'--lock-timeout'" in result.output
