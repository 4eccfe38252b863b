"""``flask holds materialize --dry-run``: the summary of the same run, and nothing written
(docs/MATERIALIZER.md). On a database of its own, so that transactions are real."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text

from pytm4srv import create_app
from pytm4srv.db import WRITE, database
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule
from tests.conftest import migrated_database

NOW = datetime(2027, 3, 10, 12, tzinfo=UTC)
SUMMARY = re.compile(r"^materialize: (schedules=\d+ created=\d+ skipped=\d+\+?) now=\S+ ")


def seed(app) -> None:
    with database(app).open(WRITE) as session:
        machine = Machine(name="lathe")
        session.add(machine)
        session.flush()
        for name, created, frequency, compute in [
            ("daily", NOW - timedelta(days=1), "D", True),
            ("hourly, long unrun", NOW - timedelta(days=3), "H", True),  # fires to skip
            ("not computed yet", NOW - timedelta(hours=5), "D", False),  # next_fire null
            ("later", NOW + timedelta(days=30), "D", True),  # nothing due
        ]:
            schedule = MachineHoldSchedule(
                machine_id=machine.id,
                name=name,
                reason="r",
                frequency=frequency,
                time_of_day=time(8, 15),
                interval=1,
                indices=[],
                months=4095,
                weekdays=127,
                duration=timedelta(minutes=30),
                anchor=created,
                created=created,
            )
            if compute:
                refresh_next_fire(schedule, UTC)
            session.add(schedule)
        # A hold a user already made on one of the fires: it counts as taken, not created.
        session.commit()
        daily = session.query(MachineHoldSchedule).filter_by(name="daily").one()
        session.add(
            MachineHold(
                machine_id=machine.id,
                schedule_id=daily.id,
                reason="moved by hand",
                start=datetime(2027, 3, 10, 8, 15, tzinfo=UTC),
            )
        )
        session.commit()


def snapshot(app) -> tuple[list, list]:
    with database(app).engine.connect() as conn:
        holds = conn.execute(text("SELECT * FROM machine_holds ORDER BY id")).all()
        schedules = conn.execute(text("SELECT * FROM machine_hold_schedules ORDER BY id")).all()
    return holds, schedules


def materialize(app, *options: str) -> str:
    now = str(int(NOW.timestamp()))
    result = app.test_cli_runner().invoke(args=["holds", "materialize", "--now", now, *options])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.strip().splitlines()
    return line


def numbers(line: str) -> str:
    match = SUMMARY.match(line)
    assert match, line
    return match.group(1)


def test_dry_run_prints_the_runs_numbers_and_writes_nothing(tmp_path):
    with migrated_database(tmp_path) as url:
        app = create_app({"DATABASE_URL": url})
        try:
            seed(app)
            before = snapshot(app)

            dry = materialize(app, "--dry-run", "--batch-size", "2")
            assert dry.endswith(" dry_run=true")
            assert snapshot(app) == before
            assert materialize(app, "--dry-run") == dry  # still nothing done: the same again
            assert snapshot(app) == before

            real = materialize(app, "--batch-size", "2")
            assert numbers(real) == numbers(dry)
            assert numbers(real) != "schedules=0 created=0 skipped=0"
            assert "skipped=0" not in real and "created=0" not in real
            assert snapshot(app) != before

            # Once done, a dry run says so too, and still writes nothing.
            after = snapshot(app)
            assert numbers(materialize(app, "--dry-run")) == "schedules=0 created=0 skipped=0"
            assert snapshot(app) == after
        finally:
            database(app).engine.dispose()


def test_a_dry_run_leaves_nothing_locked(tmp_path):
    """The rolled-back transaction ends: a real run right after it is not kept waiting."""
    with migrated_database(tmp_path) as url:
        app = create_app({"DATABASE_URL": url})
        try:
            seed(app)
            materialize(app, "--dry-run")
            with database(app).open(WRITE) as session:
                session.execute(text("UPDATE machine_hold_schedules SET reason = 'x'"))
                session.commit()
            assert "created=0" not in materialize(app)
        finally:
            database(app).engine.dispose()
