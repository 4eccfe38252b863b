"""A materializer killed with SIGKILL in the middle of its run loses and doubles nothing: the
next run makes exactly the holds still missing (docs/MATERIALIZER.md, Rules).

Expected fires are counted by stepping a plain datetime, not by the recurrence engine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule
from tests.conftest import REPO, migrated_database

pytestmark = pytest.mark.slow

NOW = datetime(2027, 3, 1, tzinfo=UTC)
CREATED = NOW - timedelta(hours=1)
SCHEDULES = 400
HORIZON_DAYS = 200
#: Most seconds the test waits for anything.
BOUND = 120


def expected_fires() -> list[datetime]:
    """Daily 08:00 UTC after CREATED, up to NOW + horizon."""
    fires, day = [], CREATED.replace(hour=8, minute=0, second=0, microsecond=0)
    until = NOW + timedelta(days=HORIZON_DAYS)
    while day <= until:
        if day > CREATED:
            fires.append(day)
        day += timedelta(days=1)
    return fires


def run(url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTM4SRV_DATABASE_URL": url}
    command = [sys.executable, "-m", "flask", "--app", "pytm4srv", "holds", "materialize"]
    options = ["--now", str(int(NOW.timestamp())), "--horizon", str(HORIZON_DAYS * 24 * 60)]
    return subprocess.Popen(
        [*command, *options, "--batch-size", "20"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def count(engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(MachineHold)) or 0


def test_a_run_killed_mid_way_is_completed_by_the_next_exactly_once(tmp_path):
    fires = expected_fires()
    with migrated_database(tmp_path) as url:
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                machine = Machine(name="lathe")
                session.add(machine)
                session.flush()
                session.add_all(
                    MachineHoldSchedule(
                        machine_id=machine.id,
                        name=f"s{n}",
                        reason="calibration",
                        frequency="D",
                        time_of_day=datetime(2027, 1, 1, 8).time(),
                        indices=[],
                        duration=timedelta(hours=1),
                        anchor=CREATED,
                        created=CREATED,
                        next_fire=fires[0],
                    )
                    for n in range(SCHEDULES)
                )
                session.commit()
            first = run(url)
            deadline = time.monotonic() + BOUND
            while count(engine) == 0:
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=BOUND)
            assert first.returncode == -signal.SIGKILL
            partial = count(engine)
            assert 0 < partial < SCHEDULES * len(fires), "killed too late to test anything"

            second = run(url)
            out, err = second.communicate(timeout=BOUND)
            assert second.returncode == 0, err
            assert f"created={SCHEDULES * len(fires) - partial}" in out
            with engine.connect() as conn:
                per_schedule = conn.execute(
                    text(
                        "SELECT schedule_id, COUNT(*), COUNT(DISTINCT fire), MIN(start), MAX(start)"
                        " FROM machine_holds GROUP BY schedule_id"
                    )
                ).all()
            assert len(per_schedule) == SCHEDULES
            for row in per_schedule:
                assert (row[1], row[2]) == (len(fires), len(fires)), row
            # A third run finds nothing left to do.
            third = run(url)
            out, err = third.communicate(timeout=BOUND)
            assert third.returncode == 0, err
            assert "created=0" in out
        finally:
            engine.dispose()
