"""Hold list latency: does it grow with the table, and how far is it above the floor?

    .venv/bin/python bench/bench_list.py

Needs the databases of ``bench/generate.py`` (1 000 000 holds in ``pytm4srv_bench``, 10 000 in
``pytm4srv_bench_small``). Each round times, one after the other, the same request

    GET /api/machines/holds/?machine=1&start_after=T&limit=100

on the 1 000 000-hold database, on the 10 000-hold one (machine 1 has the same history in both,
so the answers are the same 100 holds), and the floor: the SQL that request sends, run directly
through psycopg in this process, plus an empty Flask JSON endpoint. It does so twice, each time
consistently for the API and the empty endpoint: served by gunicorn (1 sync worker each) and called
over loopback HTTP, then in this process through the Flask test client. It prints medians and their
ratios (targets: 1M / 10k <= 1.3, API / floor <= 3 over gunicorn, the production server; in
process the floor ratio is printed for reading); absolute times are for reading only.

Then it takes the plan (EXPLAIN ANALYZE) of the list's query for every combination of its filters
on the large database (15 552 with the availability filters, ``--no-availability``: the 432 of
the others) and checks that none reads machine_holds by a sequential scan; the exit status is 1
if one does. It prints the plans that do (``--plans all``: every plan and a line for each), the
distribution of execution times and the slowest. About five minutes in all.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import itertools
import json
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _support import (
    BIG_DB,
    PROBE_MACHINE,
    REPO,
    SMALL_DB,
    bench_token,
    libpq_url,
    load_average,
    machine_description,
    median_ms,
    probe_start_after,
    require_database,
    start_gunicorn,
    stop,
    stop_on_signals,
    unix,
)

LIST = "/api/machines/holds/"
BASELINE = "baseline api 1M"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big", default=BIG_DB, help=f"1M-hold database ({BIG_DB})")
    parser.add_argument("--small", default=SMALL_DB, help=f"10k-hold database ({SMALL_DB})")
    parser.add_argument("--rounds", type=int, default=60, help="rounds of timing (60)")
    parser.add_argument("--per-round", type=int, default=10, help="calls per kind a round (10)")
    parser.add_argument("--profile", action="store_true", help="cProfile the 1M-hold request")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="in process, also time the parts of the request and bench/variants.py's lean_app",
    )
    parser.add_argument(
        "--via",
        choices=["both", "gunicorn", "inprocess"],
        default="both",
        help="gunicorn over loopback, the Flask test client in this process, or both (both)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="over gunicorn, also time the service as checked out in DIR (another revision, e.g."
        " from git archive), side by side with this one",
    )
    parser.add_argument("--no-latency", action="store_true", help="only print the plans")
    parser.add_argument("--no-explain", action="store_true", help="only time the request")
    parser.add_argument(
        "--plans",
        choices=["all", "bad", "none"],
        default="bad",
        help="which plans to print in full, with a summary line for each in 'all' (bad)",
    )
    parser.add_argument(
        "--no-availability",
        action="store_true",
        help="plans of the older filters only (432 combinations, without active_* and schedule)",
    )
    args = parser.parse_args()
    stop_on_signals()
    big = require_database(args.big, "1000000")
    print(f"machine: {machine_description()}; {load_average()}")
    if not args.no_latency:
        small = require_database(args.small, "10000")
        for via in ("gunicorn", "inprocess") if args.via == "both" else (args.via,):
            latency(big, small, via, args.rounds, args.per_round, args.what_if, args.baseline)
    if args.profile:
        profile_request(big)
    if not args.no_explain:
        return explain_all(big, args.plans, not args.no_availability)
    return 0


# -- latency ---------------------------------------------------------------------------------------


def api_caller(url: str, path: str) -> tuple[Any, Any]:
    """A function making ``GET path`` on an app bound to ``url``, and that app's engine."""
    from pytm4srv import create_app
    from pytm4srv.db import database

    app = create_app({"DATABASE_URL": url})
    headers = {"Authorization": f"Bearer {bench_token(url)}"}
    client = app.test_client()

    def call() -> Any:
        response = client.get(path, headers=headers)
        return response.status_code, response.get_data()

    return call, database(app).engine


def http_caller(port: int, path: str, headers: dict[str, str]) -> Any:
    """A function making ``GET path`` over loopback HTTP (a new connection each time, as gunicorn's
    sync workers close it after every response)."""

    def call() -> Any:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    return call


def probe_sql(big: str, small: str, path: str) -> tuple[str, Any]:
    """Check both databases answer the probe request alike; the SQL and parameters it sends."""
    from sqlalchemy import event

    call_big, engine = api_caller(big, path)
    call_small, _ = api_caller(small, path)
    sent: list[tuple[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        sent.append((statement, parameters))

    answers = [call_big(), call_small()]
    event.remove(engine, "before_cursor_execute", capture)
    bodies = []
    for name, (status, body) in zip(("1M", "10k"), answers, strict=True):
        holds = json.loads(body) if status == 200 else None
        if not isinstance(holds, list) or len(holds) != 100:
            sys.exit(f"{name}: unexpected answer {status} {body[:200]!r}")
        bodies.append([{k: v for k, v in h.items() if k != "id"} for h in holds])
    if bodies[0] != bodies[1]:
        sys.exit("the two databases answer different holds for the probe request")
    return next((s, p) for s, p in sent if "FROM machine_holds" in s)


def latency(
    big: str,
    small: str,
    via: str,
    rounds: int,
    per_round: int,
    what_if: bool,
    baseline: str | None = None,
) -> None:
    import psycopg
    from flask import Flask

    start_after = probe_start_after(big)
    if probe_start_after(small) != start_after:
        sys.exit(
            "the two databases differ on the probe machine: generate both with the same"
            " --seed and --now"
        )
    path = f"{LIST}?machine={PROBE_MACHINE}&start_after={unix(start_after)}&limit=100"
    print(f"request: GET {path}")
    statement, parameters = probe_sql(big, small, path)

    conn = psycopg.connect(libpq_url(big), autocommit=True)

    def call_sql() -> Any:
        with conn.cursor() as cur:
            cur.execute(statement, parameters)
            return cur.fetchall()

    servers: list[Any] = []
    try:
        if via == "inprocess":
            print("\n== in-process: Flask test client, no HTTP server")
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
            print("\n== gunicorn over loopback: 1 sync worker per server, one request at a time")
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
        kinds = {
            "api 1M holds": call_big,
            "api 10k holds": call_small,
            "sql 1M (psycopg)": call_sql,
            "empty Flask JSON": call_empty,
        }
        if baseline and via == "gunicorn":
            other = Path(baseline).resolve()
            server, port = start_gunicorn(
                "pytm4srv:create_app()", 1, {"PYTM4SRV_DATABASE_URL": big}, other, other
            )
            servers.append(server)
            headers = {"Authorization": f"Bearer {bench_token(big)}"}
            kinds[BASELINE] = http_caller(port, path, headers)
        if what_if and via == "inprocess":
            kinds.update(parts(big, path, statement, parameters))
        measure(kinds, rounds, per_round, floor_target=via == "gunicorn")
    finally:
        for server in servers:
            stop(server)
        conn.close()


def parts(big: str, path: str, statement: str, parameters: Any) -> dict[str, Any]:
    """The pieces of the list request, timed alone, and the lean_app variant (in process)."""
    from sqlalchemy import select
    from variants import lean_app

    from pytm4srv.fields import to_unix
    from pytm4srv.holds.models import MachineHold
    from pytm4srv.holds.schemas import HoldSchema
    from pytm4srv.holds.views import filtered_holds

    lean = lean_app({"DATABASE_URL": big}).test_client()
    headers = {"Authorization": f"Bearer {bench_token(big)}"}
    call_big, engine = api_caller(big, path)
    fixed, _ = api_caller(big, path.replace("limit=100", "limit=0"))
    from sqlalchemy.orm import Session

    session = Session(engine)
    args = {"machine": [PROBE_MACHINE], "start_after": probe_start_after(big)}
    columns, params = filtered_holds(args, 101)
    stmt = select(MachineHold).where(*columns.whereclause.clauses)
    stmt = stmt.order_by(*columns._order_by_clauses).offset(0).limit(101)
    holds = list(session.scalars(stmt, params))[:100]
    session.expunge_all()
    schema = HoldSchema(many=True)

    def orm_load() -> Any:
        loaded = list(session.scalars(stmt, params))
        session.rollback()
        session.expunge_all()
        return loaded

    def core_dicts() -> Any:
        rows = session.execute(columns, params).all()
        session.rollback()
        return [
            {
                "id": r.id,
                "machine_id": r.machine_id,
                "user_id": r.user_id,
                "schedule_id": r.schedule_id,
                "reason": r.reason,
                "notes": r.notes,
                "start": to_unix(r.start),
                "end": None if r.end is None else to_unix(r.end),
            }
            for r in rows[:100]
        ]

    if core_dicts() != schema.dump(holds):
        sys.exit("what-if: the plain dicts differ from the schema's output")
    return {
        "api 1M, limit=0": fixed,
        "api 1M, lean_app": lambda: lean.get(path, headers=headers),
        **without_parts(big, path, headers),
        "part: ORM query+load": orm_load,
        "part: HoldSchema dump": lambda: schema.dump(holds),
        "what-if: Core+dicts": core_dicts,
    }


#: What-if kinds that are the list request less one of its parts (``without_parts``).
WITHOUT = "api 1M without "


def without_parts(big: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """The list request on apps each doing without one part of the work (or with the library's
    own way instead of a shortcut), to tell what each part costs: only for measuring."""
    import marshmallow as ma
    from flask import g
    from flask.json.provider import DefaultJSONProvider

    from pytm4srv import api, auth, create_app
    from pytm4srv.speedups import PlannedDumpSchema

    def app_without(part: str) -> Any:
        app = create_app({"DATABASE_URL": big})
        before, after = app.before_request_funcs[None], app.after_request_funcs[None]
        if part == "the token lookup":

            def known_caller() -> None:  # as if the token were known: no query
                g.user = auth.Caller(1, auth.Role.ADMIN)

            before[before.index(auth.authenticate)] = known_caller
        elif part == "the URL length check":
            before.remove(api._limit_url_length)
        elif part == "no-store":
            after.remove(auth._no_store)
        elif part == "orjson (Flask's JSON)":
            app.json = DefaultJSONProvider(app)
        return app.test_client()

    kinds = {}
    for part in ("the token lookup", "the URL length check", "no-store", "orjson (Flask's JSON)"):
        client = app_without(part)
        kinds[WITHOUT + part] = lambda client=client: client.get(path, headers=headers)
    planned = app_without("nothing").get  # the dump plan off, marshmallow's own dump instead

    def marshmallows_dump() -> Any:
        shortcut = PlannedDumpSchema._serialize
        PlannedDumpSchema._serialize = ma.Schema._serialize
        try:
            return planned(path, headers=headers)
        finally:
            PlannedDumpSchema._serialize = shortcut

    kinds[WITHOUT + "the dump plan"] = marshmallows_dump
    return kinds


def measure(
    kinds: dict[str, Any], rounds: int, per_round: int, floor_target: bool
) -> dict[str, Any]:
    """Time ``kinds`` side by side; print medians and ratios, and answer them. The floor target
    (3x) is set for the production server, gunicorn; in process, the ratio is printed for
    reading."""
    for name, call in kinds.items():  # warm-up: connections, prepared statements, caches
        for _ in range(30):
            answer = call()
            if isinstance(answer, tuple) and answer[0] != 200:
                sys.exit(f"{name}: status {answer[0]} {answer[1][:200]!r}")
    samples: dict[str, list[list[float]]] = {name: [] for name in kinds}
    began = time.monotonic()
    order = list(kinds)
    for index in range(rounds):
        for name in order if index % 2 == 0 else reversed(order):
            call = kinds[name]
            batch = []
            for _ in range(per_round):
                t0 = time.perf_counter()
                call()
                batch.append(time.perf_counter() - t0)
            samples[name].append(batch)
    took = time.monotonic() - began
    print(f"after the rounds: {load_average()}")

    medians = {
        name: median_ms([t for b in batches for t in b]) for name, batches in samples.items()
    }
    floor = medians["sql 1M (psycopg)"] + medians["empty Flask JSON"]
    print(
        f"{rounds} rounds x {per_round} calls of each kind, interleaved, in {took:.0f} s; medians:"
    )
    for name, value in medians.items():
        print(f"  {name:<22} {value:8.3f} ms")
    print(f"  {'floor (sql + empty)':<22} {floor:8.3f} ms")

    # Ratios within each round (neighbours in time), then their median: robust to drift in the
    # machine's load between rounds.
    def by_round(name: str) -> list[float]:
        return [median_ms(batch) for batch in samples[name]]

    big, small = by_round("api 1M holds"), by_round("api 10k holds")
    floors = [
        sql + empty
        for sql, empty in zip(
            by_round("sql 1M (psycopg)"), by_round("empty Flask JSON"), strict=True
        )
    ]
    ratio_size = paired(big, small)
    ratio_floor = paired(big, floors)
    print("ratios (median over rounds of the ratio within a round; middle half in brackets):")
    print(
        f"  1M / 10k holds    {fmt(ratio_size)}  (target <= 1.3)  {verdict(ratio_size[0] <= 1.3)}"
    )
    if floor_target:
        ok = verdict(ratio_floor[0] <= 3)
        print(f"  api 1M / floor    {fmt(ratio_floor)}  (target <= 3)    {ok}")
    else:
        print(f"  api 1M / floor    {fmt(ratio_floor)}  (the 3x target is over gunicorn)")
    if BASELINE in samples:
        before = by_round(BASELINE)
        print(f"  baseline 1M / floor  {fmt(paired(before, floors))}  (the revision in --baseline)")
        print(f"  api 1M / baseline    {fmt(paired(big, before))}")
    if "api 1M, lean_app" in samples:
        print(f"  what-if lean_app / floor  {fmt(paired(by_round('api 1M, lean_app'), floors))}")
    parts = [name for name in samples if name.startswith(WITHOUT)]
    if parts:
        print(
            "what each part costs: the request without it / the whole request"
            " (below 1: the part costs; above 1: the shortcut saves)"
        )
        for name in parts:
            print(f"  {name.removeprefix(WITHOUT):<24} {fmt(paired(by_round(name), big))}")
    return {"medians": medians, "floor": floor, "size": ratio_size, "over_floor": ratio_floor}


def paired(numerators: list[float], denominators: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the ratios of paired values."""
    ratios = sorted(n / d for n, d in zip(numerators, denominators, strict=True))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return statistics.median(ratios), quartiles[0], quartiles[2]


def fmt(ratio: tuple[float, float, float]) -> str:
    return f"{ratio[0]:6.2f} [{ratio[1]:.2f}-{ratio[2]:.2f}]"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def profile_request(big: str) -> None:
    path = f"{LIST}?machine={PROBE_MACHINE}&start_after={unix(probe_start_after(big))}&limit=100"
    call, _ = api_caller(big, path)
    for _ in range(30):
        call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(300):
        call()
    profiler.disable()
    print("\nprofile of 300 in-process requests on the 1M-hold database:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(45)
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


# -- plans -----------------------------------------------------------------------------------------


def combinations(
    now: datetime, start_after: datetime, availability: bool = True
) -> list[dict[str, Any]]:
    """Every combination of the list's filters, with values typical of the generated data.

    ``now`` is the end of the generated history; the availability filters (``active_*``,
    ``schedule``) are asked about it and about an instant five years back.
    """
    machines = [None, [PROBE_MACHINE], [PROBE_MACHINE, 2, 3]]
    users = [None, [3], [0], [3, 0]]
    ends = [None, 1, 0]
    starts = [None, start_after]
    # A window after start_after, and an old instant (before start_after: an empty answer).
    end_befores = [None, start_after + timedelta(days=90), now - timedelta(days=5 * 365)]
    pages = [{}, {"limit": 100, "offset": 1000}]
    past = now - timedelta(days=5 * 365)
    week = timedelta(days=7)
    actives: list[dict[str, Any]] = [{}]
    schedules: list[list[int] | None] = [None]
    if availability:
        actives += [
            {"active_at": now},
            {"active_at": past},
            {"active_from": now},
            {"active_from": past},
            {"active_from": now, "active_until": now + week},
            {"active_from": past, "active_until": past + week},
            {"active_until": now},
            {"active_at": now, "active_from": now - week, "active_until": now + week},
        ]
        # Schedule 1 is one of the probe machine's.
        schedules += [[1], [0], [1, 0]]
    result = []
    for machine, user, end, start, end_before, page, active, schedule in itertools.product(
        machines, users, ends, starts, end_befores, pages, actives, schedules
    ):
        args: dict[str, Any] = dict(page) | active
        if machine is not None:
            args["machine"] = machine
        if user is not None:
            args["user"] = user
        if end is not None:
            args["end"] = end
        if start is not None:
            args["start_after"] = start
        if end_before is not None:
            args["end_before"] = end_before
        if schedule is not None:
            args["schedule"] = schedule
        result.append(args)
    return result


def describe(args: dict[str, Any]) -> str:
    parts = []
    for key, value in args.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append(f"{key}={unix(item) if isinstance(item, datetime) else item}")
    return "&".join(parts) or "(no filter)"


def explain_all(big: str, plans: str, availability: bool = True) -> int:
    import psycopg
    from sqlalchemy.dialects import postgresql

    from pytm4srv.config import DEFAULTS
    from pytm4srv.holds.views import filtered_holds

    dialect = postgresql.psycopg.dialect()
    start_after = probe_start_after(big)
    timeout_ms = 2000
    with psycopg.connect(libpq_url(big), autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = '{timeout_ms}ms'")
        conn.execute("SET jit = off")  # its compile time would dominate the slow plans' times
        # The end of the generated history: the day it was made (holds reach weeks past it).
        now = conn.execute("SELECT max(last_fire) FROM machine_hold_schedules").fetchone()[0]
        bad, rows = [], []
        combos = combinations(now.astimezone(UTC), start_after, availability)
        print(
            f"\nplans of the hold list's query, {len(combos)} filter combinations "
            "(EXPLAIN ANALYZE, 1M holds)"
        )
        began = time.monotonic()
        for args in combos:
            # The query exactly as the list view builds it (page size + 1, see Holds.get).
            page = args.get("limit", DEFAULTS["MAX_PAGE_SIZE"])
            stmt, params = filtered_holds(args, page + 1)
            expanded = stmt.compile(dialect=dialect).construct_expanded_state(params)
            sql, values = expanded.statement, expanded.parameters
            try:
                plan = [r[0] for r in conn.execute("EXPLAIN ANALYZE " + sql, values)]
            except psycopg.errors.QueryCanceled:
                plan = [r[0] for r in conn.execute("EXPLAIN " + sql, values)]
                plan.append(f"Execution Time: > {timeout_ms} ms (cancelled)")
            text = "\n".join(plan)
            seq = "Seq Scan on machine_holds" in text
            millis = float(text.rsplit("Execution Time: ", 1)[1].split()[0].lstrip(">"))
            scans = sorted({_scan(line) for line in plan if " on machine_holds" in line})
            rows.append((describe(args), millis, scans, seq))
            if seq:
                bad.append(describe(args))
            if plans == "all" or (plans == "bad" and seq):
                print(f"\n-- {describe(args)}\n{text}")
    print(f"\n{len(rows)} plans in {time.monotonic() - began:.0f} s")
    if plans == "all":
        print("\nsummary (query, execution ms, how machine_holds is read):")
        for name, millis, scans, seq in rows:
            print(f"  {'SEQ ' if seq else 'ok  '}{millis:9.2f}  {name}  [{'; '.join(scans)}]")
    times = sorted(millis for _, millis, _, _ in rows)
    print(
        f"execution ms: median {statistics.median(times):.2f}, 90th percentile"
        f" {times[int(len(times) * 0.9)]:.2f}, 99th {times[int(len(times) * 0.99)]:.2f}"
    )
    print("slowest:")
    for name, millis, scans, _ in sorted(rows, key=lambda r: r[1], reverse=True)[:12]:
        print(f"  {millis:9.2f}  {name}  [{'; '.join(scans)}]")
    if bad:
        print(f"\nFAIL: {len(bad)} combinations read machine_holds sequentially:")
        for name in bad:
            print(f"  {name}")
        return 1
    print(f"\nok: all {len(rows)} combinations read machine_holds through indexes")
    return 0


def _scan(line: str) -> str:
    text = line.strip().lstrip("->").strip()
    return text.split("  (")[0]


if __name__ == "__main__":
    sys.exit(main())
