"""Fill a PostgreSQL database with a realistic ten-year history of holds, fast (COPY).

    .venv/bin/python bench/generate.py pytm4srv_bench                    # 1 000 000 holds
    .venv/bin/python bench/generate.py pytm4srv_bench_small --holds 10000
    .venv/bin/python bench/generate.py sqlite:///bench/out/holds.sqlite --holds 100000

A ``sqlite:///`` URL fills a SQLite file the same way (through SQLAlchemy, then ANALYZE), for the
query plans of the embedded database.

The database (a bare name on the local socket, or a SQLAlchemy URL) is created when missing and
migrated to head; its machines, users, schedules and holds are then replaced by:

- 1 000 machines, 24 users (admins, planners, staff), 5 000 schedules (5 per machine, daily to
  yearly, some with indefinite holds);
- N holds over the ten years before today (and a few weeks ahead): about 60 % made by schedules
  (``user_id`` NULL, ``schedule_id`` set, one per schedule and start), 40 % by users, some of
  them of users since deleted (``user_id`` NULL); most ended, some indefinite (``end`` NULL),
  mostly recent ones;
- machine 1 (the probe machine of the benchmarks) has the same 1 000 holds in every database made
  with the same ``--seed`` and ``--now``, whatever N, so a request about it answers the same rows
  at 10 000 holds as at 1 000 000.

Hold ids follow start order, as they do when holds are created over time. Then VACUUM ANALYZE.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from bisect import bisect_left
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from itertools import accumulate

from _support import (
    PROBE_MACHINE,
    REPO,
    database_name,
    libpq_url,
    sqlalchemy_url,
)

MACHINES = 1000
SCHEDULES = 5000
PROBE_HOLDS = 1000
#: Share of holds made by schedules.
SCHEDULED_SHARE = 0.6
YEARS = 10
DAY = 86400
MINUTE = 60

USERS = [
    ("ada", "admin"),
    ("grace", "admin"),
    ("pat", "planner"),
    ("sam", "planner"),
    ("lee", "planner"),
    ("kim", "planner"),
] + [(f"tech{i:02d}", "staff") for i in range(1, 19)]

REASONS = [
    "Preventive maintenance",
    "Calibration",
    "Spindle replacement",
    "Coolant change",
    "Firmware update",
    "Operator training",
    "Waiting for spare parts",
    "Safety inspection",
    "Tool change",
    "Cleaning",
    "Electrical fault",
    "Hydraulic leak",
    "Reserved for customer trial",
    "Quality audit",
    "Axis alignment",
    "Lubrication",
    "Software license renewal",
    "Vendor service visit",
    "Sensor fault",
    "Power outage",
]
NOTES = [
    "Done, see ticket.",
    "Parts ordered.",
    "Extended after inspection found wear on the bearings.",
    "Vendor confirmed the visit.",
    "Released early.",
    "Needs follow-up next week.",
]
#: A hold before its id: machine, user, schedule, reason, notes, start, end (UNIX seconds).
Row = tuple[int, int | None, int | None, str, str, int, int | None]

SCHEDULE_KINDS = [
    ("D", 30, "Daily check"),
    ("W", 40, "Weekly maintenance"),
    ("M", 20, "Monthly calibration"),
    ("Y", 5, "Yearly inspection"),
    ("H", 5, "Hourly purge"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", help="database name on the local socket, or SQLAlchemy URL")
    parser.add_argument("--holds", type=int, default=1_000_000, help="number of holds (1000000)")
    parser.add_argument("--seed", type=int, default=20240101, help="random seed")
    parser.add_argument(
        "--now",
        help="end of the history, ISO 8601 date (default: today, UTC); use the same for databases"
        " that are compared",
    )
    args = parser.parse_args()
    if args.holds < 2 * PROBE_HOLDS:
        parser.error(f"--holds must be at least {2 * PROBE_HOLDS}")
    if args.now:
        now = datetime.fromisoformat(args.now)
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    else:
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    began = time.monotonic()
    url = sqlalchemy_url(args.database)
    sqlite = url.startswith("sqlite:///")
    if not sqlite:
        create_database(url)
    migrate(url)
    history = History(int(now.timestamp()), args.seed)
    holds = history.holds(args.holds)
    print(f"generated {len(holds):,} holds in {time.monotonic() - began:.1f} s", flush=True)
    if sqlite:
        load_sqlite(url, history, holds)
    else:
        load(libpq_url(args.database), history, holds)
    print(
        f"{database_name(args.database)}: {len(holds):,} holds, {MACHINES} machines,"
        f" {SCHEDULES} schedules, {len(USERS)} users; {time.monotonic() - began:.1f} s in all"
    )


def create_database(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    server = make_url(url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


class History:
    """The generated rows; ``now`` is the end of the history, in UNIX seconds."""

    def __init__(self, now: int, seed: int) -> None:
        self.now = now
        self.first = now - YEARS * 365 * DAY - 2 * DAY
        self.seed = seed
        self.schedules = self._schedules(random.Random(seed))

    # -- schedules: the same for any number of holds --------------------------------------------

    def _schedules(self, rng: random.Random) -> list[dict[str, object]]:
        kinds, weights, names = zip(*SCHEDULE_KINDS, strict=True)
        cumulative = list(accumulate(weights))
        schedules = []
        for sid in range(1, SCHEDULES + 1):
            kind = bisect_left(cumulative, rng.random() * cumulative[-1])
            created = rng.randrange(self.first, self.now - 365 * DAY) // MINUTE * MINUTE
            duration = None if rng.random() < 0.1 else rng.choice([30, 60, 120, 240, 480, 1440])
            schedules.append(
                {
                    "id": sid,
                    "machine_id": (sid - 1) % MACHINES + 1,
                    "name": f"{names[kind]} #{sid}",
                    "reason": rng.choice(REASONS),
                    "frequency": kinds[kind],
                    "interval": rng.choice([1, 1, 1, 2, 3]),
                    "indices": rng.choice([[], [], [], [1], [-1]]),
                    "months": 4095 if rng.random() < 0.9 else rng.randrange(1, 4096),
                    "weekdays": rng.choice([127, 127, 31, 1]),
                    "time_of_day": f"{rng.randrange(6, 20):02d}:{rng.choice([0, 30]):02d}:00",
                    "duration": duration,
                    "created": created,
                    "weight": rng.uniform(0.2, 2.0),
                    "last_fire": None,
                }
            )
        return schedules

    # -- holds -----------------------------------------------------------------------------------

    def holds(self, count: int) -> list[Row]:
        """``count`` holds as (machine, user, schedule, reason, notes, start, end), by start."""
        probe = [s for s in self.schedules if s["machine_id"] == PROBE_MACHINE]
        others = [s for s in self.schedules if s["machine_id"] != PROBE_MACHINE]
        machines = list(range(1, MACHINES + 1))
        machines.remove(PROBE_MACHINE)

        # The probe machine: a history that depends only on the seed.
        rng = random.Random(self.seed + 1)
        scheduled = round(PROBE_HOLDS * SCHEDULED_SHARE)
        rows = self._scheduled(rng, probe, scheduled)
        rows += self._manual(rng, [PROBE_MACHINE], [1.0], PROBE_HOLDS - scheduled)

        rng = random.Random(self.seed + 2)
        rest = count - PROBE_HOLDS
        scheduled = round(rest * SCHEDULED_SHARE)
        busy = [rng.lognormvariate(0, 0.5) for _ in machines]
        rows += self._scheduled(rng, others, scheduled)
        rows += self._manual(rng, machines, busy, rest - scheduled)
        rows.sort(key=lambda row: (row[5], row[0]))
        return rows

    def _scheduled(
        self, rng: random.Random, schedules: list[dict[str, object]], count: int
    ) -> list[Row]:
        """``count`` holds spread over ``schedules`` by weight, evenly spaced in time for each."""
        picks = rng.choices(range(len(schedules)), [s["weight"] for s in schedules], k=count)
        per_schedule = [0] * len(schedules)
        for index in picks:
            per_schedule[index] += 1
        rows = []
        horizon = self.now + 7 * DAY
        for schedule, n in zip(schedules, per_schedule, strict=True):
            if n == 0:
                continue
            created = schedule["created"]
            step = (horizon - created) // (n + 1) // MINUTE * MINUTE
            duration = schedule["duration"]
            machine, sid, reason = schedule["machine_id"], schedule["id"], schedule["reason"]
            start = created
            for _ in range(n):
                start += step
                if duration is not None:
                    end = start + duration * MINUTE
                elif start < self.now - 30 * DAY and rng.random() < 0.95:
                    end = start + rng.randrange(1, 72) * 3600
                else:
                    end = None
                rows.append((machine, None, sid, reason, _notes(rng), start, end))
            if start <= self.now:
                schedule["last_fire"] = start
            else:
                schedule["last_fire"] = start - step
        return rows

    def _manual(
        self, rng: random.Random, machines: list[int], weights: list[float], count: int
    ) -> list[Row]:
        """``count`` holds made by users (3 % by users since deleted)."""
        users = list(range(1, len(USERS) + 1))
        user_weights = [1 / rank for rank in users]
        picked_machines = rng.choices(machines, weights, k=count)
        picked_users = rng.choices(users, user_weights, k=count)
        last = self.now + 30 * DAY
        rows = []
        for machine, user in zip(picked_machines, picked_users, strict=True):
            start = rng.randrange(self.first, last) // MINUTE * MINUTE
            recent = start > self.now - 90 * DAY
            if rng.random() < (0.3 if recent else 0.01):
                end = None
            else:
                minutes = min(int(rng.lognormvariate(math.log(240), 1.2)) + 15, 60 * 24 * 60)
                end = start + minutes * MINUTE
            user_id = None if rng.random() < 0.03 else user
            rows.append((machine, user_id, None, rng.choice(REASONS), _notes(rng), start, end))
        return rows


def _notes(rng: random.Random) -> str:
    return "" if rng.random() < 0.7 else rng.choice(NOTES)


def _ts(seconds: int | None) -> str:
    if seconds is None:
        return "\\N"
    return datetime.fromtimestamp(seconds, UTC).isoformat(sep=" ")


def _null(value: object) -> str:
    return "\\N" if value is None else str(value)


def load(conninfo: str, history: History, holds: list[Row]) -> None:
    import psycopg

    began = time.monotonic()
    with psycopg.connect(conninfo) as conn:
        # Benchmark data is generated consistent; skip the per-row foreign-key triggers.
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if superuser.fetchone()[0]:
            conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        # Secondary indexes are built once after the load (same definitions), not row by row.
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'machine_holds'"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'machine_holds'::regclass)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        # Every table that references users, machines or schedules goes too (PostgreSQL
        # refuses to truncate a referenced table alone, even an empty one).
        conn.execute(
            "TRUNCATE machine_holds, machine_hold_schedules, users, machines, history_entries,"
            " idempotency_keys, feed_secrets, deletion_marks RESTART IDENTITY"
        )
        with conn.cursor() as cur:
            with cur.copy("COPY machines (id, name) FROM STDIN") as copy:
                copy.write("".join(f"{i}\tMachine {i:04d}\n" for i in range(1, MACHINES + 1)))
            with cur.copy("COPY users (id, name, role, token_hash, created) FROM STDIN") as copy:
                rng = random.Random(history.seed + 3)
                for uid, (name, role) in enumerate(USERS, 1):
                    # Random hashes: these users' tokens are unknown (bench scripts add their own).
                    copy.write_row((uid, name, role, rng.randbytes(32).hex(), _ts(history.first)))
            _copy_schedules(cur, history)
            _copy_holds(cur, holds)
        print(f"copied in {time.monotonic() - began:.1f} s", flush=True)
        for _name, definition in indexes:
            conn.execute(definition)
        for table in ("machines", "users", "machine_hold_schedules", "machine_holds"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
        print(f"indexed in {time.monotonic() - began:.1f} s", flush=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"vacuumed and analyzed in {time.monotonic() - began:.1f} s", flush=True)


def load_sqlite(url: str, history: History, holds: list[Row]) -> None:
    """The same rows into a SQLite database, through the models' tables (their types store
    instants, times and durations as the service does)."""
    from sqlalchemy import delete, insert

    from pytm4srv.db import make_engine
    from pytm4srv.holds.models import UNKNOWN_ZONE
    from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, User

    def instant(seconds: int | None) -> datetime | None:
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    began = time.monotonic()
    engine = make_engine(url)
    rng = random.Random(history.seed + 3)
    with engine.begin() as conn:
        for model in (MachineHold, MachineHoldSchedule, User, Machine):
            conn.execute(delete(model))
        machines = [{"id": i, "name": f"Machine {i:04d}"} for i in range(1, MACHINES + 1)]
        conn.execute(insert(Machine), machines)
        users = [
            {
                "id": uid,
                "name": name,
                "role": role,
                "token_hash": rng.randbytes(32).hex(),
                "created": instant(history.first),
            }
            for uid, (name, role) in enumerate(USERS, 1)
        ]
        conn.execute(insert(User), users)
        schedules = []
        for s in history.schedules:
            hour, minute, _ = map(int, str(s["time_of_day"]).split(":"))
            duration = s["duration"]
            row = {k: s[k] for k in ("id", "machine_id", "name", "reason", "frequency")}
            row |= {k: s[k] for k in ("interval", "indices", "months", "weekdays")}
            row["time_of_day"] = dt_time(hour, minute)
            row["duration"] = None if duration is None else timedelta(minutes=int(duration))
            row["anchor"] = row["created"] = instant(int(s["created"]))
            row["last_fire"] = instant(s["last_fire"])  # type: ignore[arg-type]
            row["next_fire_zone"] = UNKNOWN_ZONE
            schedules.append(row)
        conn.execute(insert(MachineHoldSchedule), schedules)
        columns = ("machine_id", "user_id", "schedule_id", "reason", "notes")
        rows = [
            dict(zip(columns, hold[:5], strict=True))
            | {"id": hid, "start": instant(hold[5]), "end": instant(hold[6])}
            | {"fire": None if hold[2] is None else instant(hold[5])}
            for hid, hold in enumerate(holds, 1)
        ]
        conn.execute(insert(MachineHold), rows)
    print(f"inserted in {time.monotonic() - began:.1f} s", flush=True)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(f"analyzed in {time.monotonic() - began:.1f} s", flush=True)


def _copy_schedules(cur, history: History) -> None:  # type: ignore[no-untyped-def]
    columns = (
        "id, machine_id, name, reason, frequency, interval, indices, months, weekdays,"
        " time_of_day, duration, anchor, created, last_fire, skip, next_fire_zone"
    )
    with cur.copy(f"COPY machine_hold_schedules ({columns}) FROM STDIN") as copy:
        lines = []
        for s in history.schedules:
            duration = "\\N" if s["duration"] is None else f"{s['duration']} minutes"
            lines.append(
                "\t".join(
                    [
                        str(s["id"]),
                        str(s["machine_id"]),
                        s["name"],
                        s["reason"],
                        s["frequency"],
                        str(s["interval"]),
                        json.dumps(s["indices"]),
                        str(s["months"]),
                        str(s["weekdays"]),
                        s["time_of_day"],
                        duration,
                        _ts(s["created"]),
                        _ts(s["created"]),
                        _ts(s["last_fire"]),
                        "[]",
                        # UNKNOWN_ZONE: the next fire is computed afresh, as migration 0007
                        # leaves rows made before it.
                        "",
                    ]
                )
                + "\n"
            )
        copy.write("".join(lines))


def _copy_holds(cur, holds: list[Row]) -> None:  # type: ignore[no-untyped-def]
    # A schedule's hold keeps the fire it was made for (migration 0010): here, its start.
    columns = 'id, machine_id, user_id, schedule_id, reason, notes, start, "end", fire'
    chunk = 50_000
    with cur.copy(f"COPY machine_holds ({columns}) FROM STDIN WITH (FREEZE)") as copy:
        for base in range(0, len(holds), chunk):
            copy.write(
                "".join(
                    f"{hid}\t{machine}\t{_null(user)}\t{_null(sched)}\t{reason}\t{notes}"
                    f"\t{_ts(start)}\t{_ts(end)}\t{_ts(None if sched is None else start)}\n"
                    for hid, (machine, user, sched, reason, notes, start, end) in enumerate(
                        holds[base : base + chunk], base + 1
                    )
                )
            )


if __name__ == "__main__":
    sys.exit(main())
