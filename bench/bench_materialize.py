"""Materializer cost: against a bulk insert, with nothing due, and for old schedules.

    .venv/bin/python bench/bench_materialize.py [--server URL] [--rounds 5]

Makes a scratch PostgreSQL database on the server (``pytm4srv_bench_mat_<random>``), migrates it,
and drops it at the end. Everything runs in this process, calling ``materialize()`` directly (the
CLI adds only process start-up). Rounds are interleaved; medians are printed with their ratios.

1. 10 000 daily schedules each due exactly once, spread over five zones of their own (UTC,
   America/Chicago, Australia/Lord_Howe, Pacific/Apia, Asia/Kolkata: each at the local time of
   the same instant): a run (``materialize()``, which creates the 10 000 holds) against inserting
   the same 10 000 hold rows with one bulk insert (SQLAlchemy Core executemany in one
   transaction). Target: run / bulk <= 3.
2. The same run again (nothing due) against the run of (1). Target: idle / run < 0.1.
1b. The same with 10 000 schedules firing twice a day (section 16: ``times_of_day``, the two
   times an hour apart), in UTC, America/Chicago, Europe/Berlin, Australia/Lord_Howe and
   Pacific/Apia: a run creating their 20 000 holds against a bulk insert of them. Target:
   run / bulk <= 3.
3. 200 hourly schedules created five years ago against 200 created a day ago: their first run
   (a day of catch-up plus the week ahead, 192-193 holds each) and the next hourly run (one hold
   each). Target: old / new about 1 for both.

It also prints the plan of the due query when nothing is due (index scans, no sequential
scan). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from _support import REPO, machine_description, sqlalchemy_url
from sqlalchemy import delete, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.holds import materialize as materialize_module
from pytm4srv.holds.materialize import materialize
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule

NOW = datetime(2027, 3, 1, tzinfo=UTC)
HORIZON = timedelta(hours=1)
CATCH_UP = timedelta(0)
DUE_ONCE = 10_000
AGED = 200
ZONES = ("UTC", "America/Chicago", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata")
#: The zones of the schedules firing twice a day (section 16).
TWICE_ZONES = ("UTC", "America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia")
TWICE = (timedelta(0), timedelta(hours=1))

HOLDS = MachineHold.__table__
SCHEDULES = MachineHoldSchedule.__table__


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=sqlalchemy_url("postgres"),
        help="SQLAlchemy URL of any database on the PostgreSQL server (default: local socket)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    args = parser.parse_args()
    print(f"machine: {machine_description()}")
    admin = make_engine(args.server, isolation_level="AUTOCOMMIT")
    name = f"pytm4srv_bench_mat_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
        return run_all(url, args.rounds)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_all(url: str, rounds: int) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")

    app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
    factory = functools.partial(database(app).open, WRITE)
    with factory() as session:
        machine = Machine(name="press")
        session.add(machine)
        session.commit()
        machine_id = machine.id
    ok = True
    ok &= due_once(factory, machine_id, rounds)
    ok &= due_once(factory, machine_id, rounds, TWICE_ZONES, TWICE)
    ok &= aged(app, factory, machine_id, rounds)
    database(app).engine.dispose()
    return 0 if ok else 1


def vacuum(factory: Any) -> None:
    """Clear the dead rows a reset leaves, so that every round starts from the same state."""
    engine = factory().get_bind().execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM ANALYZE machine_holds"))
        conn.execute(text("VACUUM ANALYZE machine_hold_schedules"))


def run(factory: Any, now: datetime, horizon: timedelta, catch_up: timedelta) -> tuple[float, Any]:
    """One materializer run: its wall time and its summary."""
    with factory() as session:
        began = time.perf_counter()
        summary = materialize(session, now, horizon, catch_up, UTC)
        return time.perf_counter() - began, summary


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.1f} ms"


# -- 1 and 2: 10 000 schedules due once ----------------------------------------------------------


def due_once(
    factory: Any,
    machine_id: int,
    rounds: int,
    zones: tuple[str, ...] = ZONES,
    offsets: tuple[timedelta, ...] = (timedelta(0),),
) -> bool:
    """10 000 schedules each due once at each of ``offsets`` after the first fire (their
    times of day), in ``zones``; the horizon takes them all."""
    created = NOW - timedelta(minutes=1)
    fire = NOW + timedelta(minutes=30)
    fires = [fire + offset for offset in offsets]
    horizon = HORIZON + offsets[-1]
    expected = DUE_ONCE * len(fires)
    with factory() as session:
        session.execute(
            insert(SCHEDULES),
            [
                {
                    "machine_id": machine_id,
                    "name": f"s{i}",
                    "reason": "calibration",
                    "frequency": "D",
                    "interval": 1,
                    "indices": [],
                    "months": 4095,
                    "weekdays": 127,
                    "time_of_day": fire.astimezone(ZoneInfo(zone)).time(),
                    "times_of_day": tuple(f.astimezone(ZoneInfo(zone)).time() for f in fires),
                    "timezone": zone,
                    "skip": (),
                    "duration": timedelta(minutes=45),
                    "anchor": created,
                    "created": created,
                    "next_fire": fire,
                    "next_fire_zone": None,  # a zone of its own: exact
                }
                for i, zone in ((i, zones[i % len(zones)]) for i in range(DUE_ONCE))
            ],
        )
        session.commit()
        ids = list(session.scalars(text("SELECT id FROM machine_hold_schedules ORDER BY id")))
        session.execute(text("ANALYZE"))
        session.commit()
    rows = [
        {
            "machine_id": machine_id,
            "user_id": None,
            "schedule_id": schedule_id,
            "reason": "calibration",
            "notes": "",
            "start": start,
            "end": start + timedelta(minutes=45),
            "fire": start,
        }
        for schedule_id in ids
        for start in fires
    ]

    def reset() -> None:
        with factory() as session:
            session.execute(text("TRUNCATE machine_holds"))
            session.execute(
                text(
                    "UPDATE machine_hold_schedules SET last_fire = NULL, next_fire = :fire,"
                    " next_fire_zone = NULL"
                ),
                {"fire": fire},
            )
            session.commit()
        vacuum(factory)

    def bulk() -> None:
        with factory() as session:
            session.execute(insert(HOLDS), rows)
            session.commit()

    summaries = []
    bulk_s, run_s, idle_s = [], [], []
    for _ in range(rounds):
        reset()
        bulk_s.append(timed(bulk))
        reset()
        for samples in (run_s, idle_s):
            took, summary = run(factory, NOW, horizon, CATCH_UP)
            samples.append(took)
            summaries.append(summary)
    assert all(s.created == expected for s in summaries[0::2]), summaries
    assert all(s.schedules == 0 and s.created == 0 for s in summaries[1::2]), summaries
    indexed = print_plan(factory)

    run_ratio = statistics.median(run_s) / statistics.median(bulk_s)
    idle_ratio = statistics.median(idle_s) / statistics.median(run_s)
    times = "once" if len(fires) == 1 else f"at {len(fires)} times of day"
    print(f"\n{DUE_ONCE} schedules due {times}, in zones {', '.join(zones)}, medians of {rounds}:")
    print(f"  bulk insert of the {expected} holds  {ms(bulk_s)}")
    print(f"  materialize run creating them   {ms(run_s)}   run / bulk  = {run_ratio:.2f} (<= 3)")
    print(
        f"  materialize run, nothing due    {ms(idle_s)}   idle / run  = {idle_ratio:.4f} (< 0.1)"
    )
    with factory() as session:
        session.execute(delete(HOLDS))
        session.execute(delete(SCHEDULES))
        session.commit()
    return indexed and run_ratio <= 3 and idle_ratio < 0.1


def print_plan(factory: Any) -> bool:
    stmt = materialize_module._due("UTC", NOW + HORIZON, materialize_module.BATCH_SIZE)
    compiled = stmt.compile(dialect=postgresql.dialect())
    vacuum(factory)  # statistics of the table as it is now: nothing due
    with factory() as session:
        conn = session.connection()
        plan = conn.exec_driver_sql(f"EXPLAIN ANALYZE {compiled}", compiled.params).scalars()
        lines = list(plan)
        session.rollback()
    print("\nplan of the due query with nothing due:")
    for line in lines:
        print(f"  {line}")
    return not any("Seq Scan" in line for line in lines)


# -- 3: age --------------------------------------------------------------------------------------


def aged(app: Any, factory: Any, machine_id: int, rounds: int) -> bool:
    catch_up, horizon = timedelta(days=1), timedelta(days=7)

    def reset(created: datetime) -> None:
        with factory() as session:
            session.execute(text("TRUNCATE machine_holds"))
            session.execute(delete(SCHEDULES))
            for i in range(AGED):
                schedule = MachineHoldSchedule(
                    machine_id=machine_id,
                    name=f"h{i}",
                    reason="purge",
                    frequency="H",
                    interval=1,
                    indices=[],
                    months=4095,
                    weekdays=127,
                    time_of_day=(NOW + timedelta(minutes=i % 60)).time(),
                    duration=timedelta(minutes=10),
                    anchor=created,
                    created=created,
                )
                refresh_next_fire(schedule, UTC)
                session.add(schedule)
            session.commit()
        vacuum(factory)

    results: dict[str, dict[str, list[float]]] = {}
    holds: dict[str, int] = {}
    for _ in range(rounds):
        for label, created in (
            ("created 5 years ago", NOW - timedelta(days=5 * 365)),
            ("created 1 day ago", NOW - timedelta(days=1)),
        ):
            reset(created)
            times = results.setdefault(label, {"first": [], "next": []})
            took, summary = run(factory, NOW, horizon, catch_up)
            times["first"].append(took)
            times["next"].append(run(factory, NOW + timedelta(hours=1), horizon, catch_up)[0])
            holds[label] = summary.created
    old, new = results["created 5 years ago"], results["created 1 day ago"]
    print(f"\n{AGED} hourly schedules, medians of {rounds} rounds:")
    for label, times in results.items():
        print(
            f"  {label:20}  first run {ms(times['first'])} ({holds[label]} holds)"
            f"   next hourly run {ms(times['next'])} ({AGED} holds)"
        )
    first_ratio = statistics.median(old["first"]) / statistics.median(new["first"])
    next_ratio = statistics.median(old["next"]) / statistics.median(new["next"])
    print(f"  old / new: first run {first_ratio:.2f}, next run {next_ratio:.2f} (about 1)")
    return first_ratio < 1.5 and next_ratio < 1.5


if __name__ == "__main__":
    sys.exit(main())
