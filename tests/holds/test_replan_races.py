"""A change of schedules racing materializer runs (cron on several hosts) against a live server:
each hold is made once, and once all are done no hold of the old pattern starts after the
change (docs/API.md, Changing a schedule)."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.models import Machine, MachineHold
from tests.conftest import migrated_database, on_postgresql
from tests.holds.materialize_worker import run_materialize
from tests.live import call, gunicorn, seed

pytestmark = pytest.mark.slow

SCHEDULES = "/api/machines/holds/schedules/"
HORIZON = timedelta(days=7)  # the materializer's default
ROUNDS = 3


def holds_by_schedule(url: str) -> dict[int, list[datetime]]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(select(MachineHold.schedule_id, MachineHold.start)).all()
    finally:
        engine.dispose()
    starts: dict[int, list[datetime]] = {}
    for schedule_id, start in rows:
        starts.setdefault(schedule_id, []).append(start)
    return {schedule_id: sorted(found) for schedule_id, found in starts.items()}


def the_machine(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(session.scalars(select(Machine.id)).one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_changes_racing_materializer_runs_make_each_hold_once_and_none_of_the_old_pattern(
    tmp_path: Path, round_: int
):
    schedules = 12 if on_postgresql() else 6
    runs = 3 if on_postgresql() else 2
    with migrated_database(tmp_path) as url:
        token = seed(url)
        machine = the_machine(url)
        with gunicorn(url, tmp_path / "gunicorn.log") as live:
            ids = []
            for i in range(schedules):
                body = {
                    "machine_id": machine,
                    "name": f"hourly {i}",
                    "reason": "check",
                    "frequency": "H",
                    "time_of_day": "00:10",
                    "duration": 5,
                }
                answer = call(live.base, "PUT", SCHEDULES, token, body)
                assert answer.status == 201, answer.body
                ids.append(answer.body["id"])

            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(runs + 1)
            results = context.Queue()
            now = str(int(datetime.now(UTC).timestamp()))
            workers = [
                context.Process(target=run_materialize, args=(url, now, barrier, results))
                for _ in range(runs)
            ]
            for worker in workers:
                worker.start()
            changed: dict[int, datetime] = {}

            def change(schedule_id: int) -> None:
                answer = call(
                    live.base, "PATCH", f"{SCHEDULES}{schedule_id}", token, {"time_of_day": "00:40"}
                )
                assert answer.status == 200, answer.body
                changed[schedule_id] = datetime.now(UTC)  # the change was made before this

            barrier.wait(timeout=120)
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(change, ids))
            outcomes = [results.get(timeout=180) for _ in workers]
            for worker in workers:
                worker.join(timeout=30)
            assert [code for code, _ in outcomes] == [0] * runs, outcomes
            assert "Traceback" not in live.log.read_text()

        # One more run after everything: it must find every later fire and make it once.
        barrier = context.Barrier(1)
        final = datetime.now(UTC)
        run_materialize(url, str(int(final.timestamp())), barrier, results)
        code, output = results.get(timeout=60)
        assert code == 0, output
        got = holds_by_schedule(url)
        for schedule_id in ids:
            starts = got.get(schedule_id, [])
            assert not [s for s, n in Counter(starts).items() if n > 1]
            after = [s for s in starts if s > changed[schedule_id]]
            assert all(s.minute == 40 for s in after), (schedule_id, after[:3])
            # Every hour's :40 from the change on, up to the last run's horizon: none missing.
            first = changed[schedule_id].replace(minute=40, second=0, microsecond=0)
            if first <= changed[schedule_id]:
                first += timedelta(hours=1)
            hours = int((final + HORIZON - first) // timedelta(hours=1)) + 1
            assert after == [first + timedelta(hours=h) for h in range(hours)], schedule_id
