"""What is held when, at 1 000 000 holds: do the answers grow with the table, and how far are
they above the floor?

    .venv/bin/python bench/bench_availability.py

Needs the databases of ``bench/generate.py`` (1 000 000 holds in ``pytm4srv_bench``, 10 000 in
``pytm4srv_bench_small``), made the same day with the same seed. The requests, at the real
current instant NOW (the generated history runs up to the day it was made, a few weeks ahead):

- ``GET /api/machines/holds/?active_at=NOW``: every hold in effect now, over all machines, the
  default page (1000 holds at 1M, about 100 at 10k: the number in effect grows with the table);
- the same with ``&limit=50``: a full page at both sizes, so that only the table size differs;
- ``GET /api/machines/holds/?machine=1&active_from=NOW&active_until=NOW+7 days``;
- ``GET /api/machines/1``: the probe machine's status now.

Machine 1 has the same history in every generated database, so the last two answer the same holds
at both sizes. Each is timed as ``bench_list.py`` times the list (same rounds, same floor: the SQL
the request sends, here every statement but the token lookup, run through psycopg, plus an empty
Flask endpoint), over gunicorn and in process; targets: 1M / 10k <= 1.3 and, over gunicorn,
service / floor <= 3.

Options:

- ``--sizes DB ...``: time the requests in process on each database (e.g. 10k, 100k, 1M holds)
  and draw latency against table size (``--plot PATH``, with matplotlib: ``pip install -e
  '.[bench]'``); the list request of ``bench_list.py`` is drawn beside them;
- ``--sqlite URL``: the query plans (EXPLAIN QUERY PLAN) and times of the same requests on a SQLite
  file (``generate.py sqlite:///bench/out/holds-100k.sqlite --holds 100000``): exit 1 if one reads
  machine_holds by a scan or looks the holds in effect up through the start index;
- ``--compare-indexes``: the SQL of the requests, and of the same questions about an instant five
  years back, under three index designs, in one transaction on the 1M database that is rolled
  back: as migrated (btree on end per machine and a GiST index of ended periods), without the GiST
  index (btree only), and with a GiST index of (machine_id, period) from the btree_gist extension
  instead of the machine's btree (needs the right to create the extension; the local server's
  user is a superuser).

About two minutes for the default run; ``--compare-indexes`` builds indexes on 1 000 000 rows,
a few minutes more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _support import (
    BIG_DB,
    PROBE_MACHINE,
    REPO,
    SMALL_DB,
    bench_token,
    database_name,
    libpq_url,
    load_average,
    machine_description,
    median_ms,
    probe_start_after,
    require_database,
    sqlalchemy_url,
    start_gunicorn,
    stop,
    stop_on_signals,
    unix,
)
from bench_list import LIST, api_caller, http_caller, measure

WEEK = timedelta(days=7)


def requests(now: datetime) -> dict[str, str]:
    """The benchmarked requests by name, at the instant ``now``."""
    week = f"machine={PROBE_MACHINE}&active_from={unix(now)}&active_until={unix(now + WEEK)}"
    return {
        "active_at=now, default page": f"{LIST}?active_at={unix(now)}",
        "active_at=now, limit=50": f"{LIST}?active_at={unix(now)}&limit=50",
        "machine 1, next 7 days": f"{LIST}?{week}",
        "machine 1 status": f"/api/machines/{PROBE_MACHINE}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", default=BIG_DB, help=f"1M-hold database ({BIG_DB})")
    parser.add_argument("--small", default=SMALL_DB, help=f"10k-hold database ({SMALL_DB})")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of timing (30)")
    parser.add_argument("--per-round", type=int, default=10, help="calls per kind a round (10)")
    parser.add_argument(
        "--via",
        choices=["both", "gunicorn", "inprocess", "none"],
        default="both",
        help="gunicorn over loopback, the Flask test client in this process, both, or none",
    )
    parser.add_argument("--only", help="only the requests whose name contains this")
    parser.add_argument("--sizes", nargs="*", default=[], help="databases for the size series")
    parser.add_argument("--plot", help="PNG of latency against table size (with --sizes)")
    parser.add_argument("--sqlite", help="SQLite URL for the plan check of the same requests")
    parser.add_argument("--compare-indexes", action="store_true", help="time three index designs")
    args = parser.parse_args()
    stop_on_signals()
    print(f"machine: {machine_description()}; {load_average()}")
    now = datetime.now(UTC).replace(microsecond=0)
    chosen = {k: v for k, v in requests(now).items() if not args.only or args.only in k}
    status = 0
    if args.via != "none":
        big = require_database(args.big, "1000000")
        small = require_database(args.small, "10000")
        check_probe_machine(big, small)
        for name, path in chosen.items():
            for via in ("gunicorn", "inprocess") if args.via == "both" else (args.via,):
                print(f"\n== {name}: GET {path}  ({via})")
                latency(big, small, path, via, args.rounds, args.per_round)
    if args.sizes:
        series = size_series([sqlalchemy_url(db) for db in args.sizes], now, chosen)
        if args.plot:
            plot(series, args.plot)
    if args.sqlite:
        status |= sqlite_plans(args.sqlite, now)
    if args.compare_indexes:
        compare_indexes(require_database(args.big, "1000000"), now)
    return status


def check_probe_machine(big: str, small: str) -> None:
    if probe_start_after(big) != probe_start_after(small):
        sys.exit(
            "the two databases differ on the probe machine: generate both with the same"
            " --seed and --now"
        )


# -- latency at 1M and 10k holds, and the floor --------------------------------------------------


def captured_sql(url: str, path: str) -> tuple[list[tuple[str, Any]], int]:
    """The statements ``GET path`` sends (all but the token lookup), and its status."""
    from sqlalchemy import event

    call, engine = api_caller(url, path)
    call()  # warm: the token lookup and compiled statements are cached
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if "FROM users" not in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    status, _ = call()
    event.remove(engine, "before_cursor_execute", capture)
    return sent, status


def latency(big: str, small: str, path: str, via: str, rounds: int, per_round: int) -> Any:
    import psycopg
    from flask import Flask

    statements, status = captured_sql(big, path)
    if status != 200 or not statements:
        sys.exit(f"GET {path}: status {status}")
    conn = psycopg.connect(libpq_url(big), autocommit=True)

    def call_sql() -> Any:
        with conn.cursor() as cur:
            for statement, parameters in statements:
                cur.execute(statement, parameters)
                cur.fetchall()

    servers: list[Any] = []
    try:
        if via == "inprocess":
            call_big, _ = api_caller(big, path)
            call_small, _ = api_caller(small, path)
            floor_app = Flask("floor")

            @floor_app.get("/empty")
            def empty() -> Any:
                return {}

            floor_client = floor_app.test_client()

            def call_empty() -> Any:
                return floor_client.get("/empty").status_code, b""
        else:
            ports = []
            for url in (big, small):
                server, port = start_gunicorn(
                    "pytm4srv:create_app()", 1, {"PYTM4SRV_DATABASE_URL": url}
                )
                servers.append(server)
                ports.append(port)
            server, port = start_gunicorn(
                "floor_app:app", 1, {"BENCH_FLOOR_DSN": libpq_url(big)}, REPO / "bench"
            )
            servers.append(server)
            call_big = http_caller(ports[0], path, {"Authorization": f"Bearer {bench_token(big)}"})
            call_small = http_caller(
                ports[1], path, {"Authorization": f"Bearer {bench_token(small)}"}
            )
            call_empty = http_caller(port, "/empty", {})
        sizes = [len(_answer(call)) for call in (call_big, call_small)]
        print(f"answers: {sizes[0]} holds at 1M, {sizes[1]} at 10k; {len(statements)} statements")
        kinds = {
            "api 1M holds": call_big,
            "api 10k holds": call_small,
            "sql 1M (psycopg)": call_sql,
            "empty Flask JSON": call_empty,
        }
        return measure(kinds, rounds, per_round, floor_target=via == "gunicorn")
    finally:
        for server in servers:
            stop(server)
        conn.close()


def _answer(call: Any) -> list[Any]:
    """The holds an answer shows (a list's, or a status's active holds and next hold)."""
    import json

    status, body = call()
    data = json.loads(body)
    if isinstance(data, list):
        return data
    return [*data["active_holds"], *([data["next_hold"]] if data["next_hold"] else [])]


# -- latency against table size ------------------------------------------------------------------


def size_series(urls: list[str], now: datetime, chosen: dict[str, str]) -> dict[str, Any]:
    """In process, interleaved: each request on each database, and its SQL alone."""
    import psycopg

    paths = dict(chosen)
    start_after = probe_start_after(urls[-1])
    paths["list (bench_list)"] = (
        f"{LIST}?machine={PROBE_MACHINE}&start_after={unix(start_after)}&limit=100"
    )
    sizes, calls = [], {}
    for url in urls:
        with psycopg.connect(libpq_url(url)) as conn:
            sizes.append(conn.execute("SELECT count(*) FROM machine_holds").fetchone()[0])
        for name, path in paths.items():
            calls[(name, url)] = api_caller(url, path)[0]
    for call in calls.values():
        for _ in range(20):
            call()
    samples: dict[Any, list[float]] = {key: [] for key in calls}
    for _ in range(15):
        for key, call in calls.items():
            for _ in range(10):
                began = time.perf_counter()
                call()
                samples[key].append(time.perf_counter() - began)
    print(f"\nin-process latency against table size (median ms; {load_average()}):")
    print(f"  {'request':<30}" + "".join(f"{size:>12,}" for size in sizes))
    series: dict[str, Any] = {"sizes": sizes, "lines": {}}
    for name in paths:
        values = [median_ms(samples[(name, url)]) for url in urls]
        series["lines"][name] = values
        print(f"  {name:<30}" + "".join(f"{v:12.3f}" for v in values))
    return series


def plot(series: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=110)
    for name, values in series["lines"].items():
        axes.plot(series["sizes"], values, marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("holds in the table")
    axes.set_ylabel("median latency, in process (ms)")
    axes.set_ylim(bottom=0)
    axes.set_title("Hold list and availability requests against table size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    print(f"plot: {path}")


# -- SQLite plans --------------------------------------------------------------------------------


def sqlite_plans(url: str, now: datetime) -> int:
    """EXPLAIN QUERY PLAN of the requests' statements on a SQLite file, and their times."""
    from pytm4srv.db import make_engine
    from pytm4srv.holds.queries import HELD_AT, NEXT_HOLD, filtered_holds

    engine = make_engine(url)
    machine = {"machine": [PROBE_MACHINE]}
    week = machine | {"active_from": now, "active_until": now + WEEK}
    status_params = {"machine_id": PROBE_MACHINE, "active_at": now}
    cases = {
        "active_at=now, default page": filtered_holds({"active_at": now}, 1001),
        "active_at=now, limit=50": filtered_holds({"active_at": now}, 51),
        "machine 1, next 7 days": filtered_holds(week, 1001),
        "machine 1 status (held)": (HELD_AT, status_params),
        "machine 1 status (next)": (NEXT_HOLD, status_params),
        "active_at=5 years ago": filtered_holds({"active_at": now - 5 * 52 * WEEK}, 1001),
        "active_from=now": filtered_holds({"active_from": now}, 1001),
        "active_from=5 years ago": filtered_holds({"active_from": now - 5 * 52 * WEEK}, 1001),
    }
    bad = []
    with engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM machine_holds").scalar()
        print(f"\nSQLite plans at {count:,} holds ({database_name(url)}):")
        for name, (stmt, params) in cases.items():
            plan = _sqlite_plan(conn, stmt, params)
            samples = []
            for _ in range(20):
                began = time.perf_counter()
                rows = conn.execute(stmt, params).all()
                samples.append(time.perf_counter() - began)
            reads = [line for line in plan if " machine_holds" in line]
            scan = any(line.startswith("SCAN machine_holds") for line in reads)
            by_start = any(_every_hold_started_before(line) for line in reads)
            flag = "SCAN" if scan else ("START" if by_start else "ok")
            if flag != "ok":
                bad.append(name)
            millis = statistics.median(samples) * 1000
            print(f"  {flag:<5} {millis:8.2f} ms {len(rows):5} rows  {name}")
            for line in reads:
                print(f"          {line}")
    engine.dispose()
    if bad:
        print(f"FAIL: {', '.join(bad)}")
        return 1
    print("ok: every request answers from indexes, none through the start index")
    return 0


def _every_hold_started_before(line: str) -> bool:
    """A SQLite plan line that looks holds up by an upper bound of start alone, through an index
    without end (tests/holds/test_availability.py checks the same)."""
    condition = line.partition("(")[2]
    return "start<?" in condition and "start>?" not in condition and "end" not in condition


def _sqlite_plan(conn: Any, stmt: Any, params: dict[str, Any]) -> list[str]:
    compiled = stmt.compile(dialect=conn.dialect)
    expanded = compiled.construct_expanded_state(params)
    processors = compiled._bind_processors
    values = tuple(
        processors[key](expanded.parameters[key]) if key in processors else expanded.parameters[key]
        for key in expanded.positiontup
    )
    return [
        row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + expanded.statement, values)
    ]


# -- index designs -------------------------------------------------------------------------------

MACHINE_BTREE = "ix_machine_holds_machine_id_end_start_id"
ENDED_GIST = "ix_machine_holds_ended_period"


def compare_indexes(big: str, now: datetime) -> None:
    """The requests' SQL under three index designs, in one rolled-back transaction."""
    import psycopg
    from sqlalchemy.dialects import postgresql

    from pytm4srv.holds.queries import HELD_AT, NEXT_HOLD, filtered_holds

    dialect = postgresql.psycopg.dialect()
    past = now - 5 * 52 * WEEK
    questions = {}
    for label, at in (("now", now), ("5 years ago", past)):
        machine = {"machine": [PROBE_MACHINE], "active_from": at, "active_until": at + WEEK}
        status = {"machine_id": PROBE_MACHINE, "active_at": at}
        questions[f"active_at={label}, default page"] = filtered_holds({"active_at": at}, 1001)
        questions[f"active_at={label}, limit=50"] = filtered_holds({"active_at": at}, 51)
        questions[f"machine 1, 7 days from {label}"] = filtered_holds(machine, 1001)
        questions[f"machine 1 status at {label}"] = (HELD_AT, status)
        questions[f"machine 1 next after {label}"] = (NEXT_HOLD, status)
    compiled = {}
    for name, (stmt, params) in questions.items():
        expanded = stmt.compile(dialect=dialect).construct_expanded_state(params)
        compiled[name] = (expanded.statement, expanded.parameters)

    def timings(conn: Any) -> dict[str, float]:
        result = {}
        for name, (sql, values) in compiled.items():
            for _ in range(5):
                conn.execute(sql, values).fetchall()
            samples = []
            for _ in range(30):
                began = time.perf_counter()
                conn.execute(sql, values).fetchall()
                samples.append(time.perf_counter() - began)
            result[name] = median_ms(samples)
        return result

    def size(conn: Any, index: str) -> str:
        row = conn.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))", (index,))
        return str(row.fetchone()[0])

    designs: dict[str, dict[str, float]] = {}
    with psycopg.connect(libpq_url(big)) as conn:  # one transaction, rolled back at the end
        conn.execute("SET LOCAL jit = off")
        print(f"\nindex designs at 1M holds ({load_average()}):")
        print(
            f"  as migrated: {MACHINE_BTREE} {size(conn, MACHINE_BTREE)},"
            f" {ENDED_GIST} {size(conn, ENDED_GIST)}"
        )
        designs["btree + GiST of ended periods (kept)"] = timings(conn)
        conn.execute(f"DROP INDEX {ENDED_GIST}")
        designs["btree only"] = timings(conn)
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        began = time.monotonic()
        conn.execute(
            "CREATE INDEX bench_gist_machine_period ON machine_holds USING gist"
            ' (machine_id, tstzrange(start, "end"))'
        )
        conn.execute(
            "CREATE INDEX bench_gist_ended_period ON machine_holds USING gist"
            ' (tstzrange(start, "end")) WHERE "end" IS NOT NULL'
        )
        built = time.monotonic() - began
        conn.execute(f"DROP INDEX {MACHINE_BTREE}")
        conn.execute("ANALYZE machine_holds")
        print(
            f"  btree_gist: (machine_id, period) {size(conn, 'bench_gist_machine_period')}"
            f" + ended periods, built in {built:.0f} s"
        )
        designs["GiST (machine_id, period) with btree_gist"] = timings(conn)
        conn.rollback()
    names = list(designs)
    print("  median ms of the SQL through psycopg:")
    print(f"  {'question':<38}" + "".join(f"{n[:24]:>26}" for n in names))
    for question in compiled:
        print(f"  {question:<38}" + "".join(f"{designs[n][question]:26.3f}" for n in names))


if __name__ == "__main__":
    sys.exit(main())
