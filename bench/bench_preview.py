"""The detailed preview (``detail=1``) against the plain one, on a machine with 10 000 holds.

    .venv/bin/python bench/bench_preview.py [--server URL] [--rounds 20] [--via both]

Makes a scratch PostgreSQL database on the server (``pytm4srv_bench_preview_<random>``), migrates
it, and drops it at the end. A daily 08:00 schedule of one hour on machine 1 is previewed with
``count=1000`` (1000 days), plainly and with ``detail=1``, by id, in interleaved rounds; printed:
the median over rounds of the within-round ratio detail / plain, with its interquartile range.
Once read in the server's zone (UTC), once with ``timezone`` America/Chicago (DST: every fire's
local time is looked up, and those after a change of offset are checked for a shift). Two ways
to call it (``--via``): the Flask test client in this process, and over loopback HTTP to
gunicorn (one sync worker, a new connection per request). Two layouts of the machine's 10 000
holds (30 minutes each):

- ``history``: one every 8 hours over the ten years before the preview's first fire, as a
  machine with a past has them; none is in the preview's span;
- ``busy``: ten a day over the preview's 1000 days, one of them overlapping each fire, so
  that the one query of the detailed preview reads all 10 000 and the sweep matches them.

Target: detail / plain <= 2 (``history``); ``busy`` is printed for reading (fetching 10 000
rows alone costs more than the whole plain preview). Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from _support import (
    REPO,
    load_average,
    machine_description,
    sqlalchemy_url,
    start_gunicorn,
    stop,
    stop_on_signals,
)
from sqlalchemy import delete, insert, text
from sqlalchemy.engine import make_url

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, Role, User
from pytm4srv.users.tokens import hash_token, new_token

PREVIEW = "/api/machines/holds/schedules/previewSchedule"
START = datetime(2027, 3, 1, tzinfo=UTC)
HOLDS = 10_000
TARGET = 2.0
ZONES = (None, "America/Chicago")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server",
        default=sqlalchemy_url("postgres"),
        help="SQLAlchemy URL of any database on the PostgreSQL server (default: local socket)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (20)")
    parser.add_argument("--via", choices=["both", "inprocess", "gunicorn"], default="both")
    args = parser.parse_args()
    stop_on_signals()
    print(f"machine: {machine_description()}; {load_average()}")
    admin = make_engine(args.server, isolation_level="AUTOCOMMIT")
    name = f"pytm4srv_bench_preview_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
        return run_all(url, args.rounds, args.via)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        print(f"{load_average()} at the end")


def run_all(url: str, rounds: int, via: str) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")

    app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
    token = new_token()
    schedule_ids = {}
    with database(app).open(WRITE) as session:
        machine = Machine(name="press")
        user = User(name="bench", role=Role("staff"), token_hash=hash_token(token), created=START)
        session.add_all([machine, user])
        session.flush()
        for zone in ZONES:
            schedule = MachineHoldSchedule(
                machine_id=machine.id,
                name=f"daily {zone}",
                reason="check",
                frequency="D",
                time_of_day=datetime(2027, 1, 1, 8).time(),
                timezone=zone,
                indices=[],
                duration=timedelta(hours=1),
                anchor=START,
                created=START,
            )
            refresh_next_fire(schedule, UTC)
            session.add(schedule)
            session.flush()
            schedule_ids[zone] = schedule.id
        session.commit()
        machine_id = machine.id

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    callers: dict[str, Callable[[int, int], bytes]] = {}
    server = None
    if via in ("both", "inprocess"):
        client = app.test_client()

        def in_process(schedule_id: int, detail: int) -> bytes:
            r = client.post(
                f"{PREVIEW}?count=1000&detail={detail}",
                data=json.dumps({"id": schedule_id}),
                headers=headers,
            )
            assert r.status_code == 200, r.data
            return r.data

        callers["in process"] = in_process
    if via in ("both", "gunicorn"):
        env = {"PYTM4SRV_DATABASE_URL": url, "PYTM4SRV_TIMEZONE": "UTC"}
        server, port = start_gunicorn("pytm4srv:create_app()", 1, env)

        def over_http(schedule_id: int, detail: int) -> bytes:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                body = json.dumps({"id": schedule_id})
                conn.request("POST", f"{PREVIEW}?count=1000&detail={detail}", body, headers)
                response = conn.getresponse()
                data = response.read()
                assert response.status == 200, data
                return data
            finally:
                conn.close()

        callers["gunicorn"] = over_http

    layouts = {
        # one every 8 hours, back from the first fire: about ten years
        "history": [START - timedelta(hours=8 * (HOLDS - i)) for i in range(HOLDS)],
        # ten a day over the preview's 1000 days, at 08:07, 10:07, ... (UTC)
        "busy": [
            START + timedelta(days=i // 10, hours=8 + i % 10 * 2, minutes=7) for i in range(HOLDS)
        ],
    }
    ok = True
    print(f"\npreview count=1000 of a daily 1-hour schedule, {HOLDS} holds on its machine:")
    try:
        for layout, starts in layouts.items():
            load_holds(app, machine_id, starts)
            for how, call in callers.items():
                for zone, schedule_id in schedule_ids.items():
                    good = measure(call, schedule_id, rounds, f"{how}, {zone or 'UTC'}", layout)
                    ok &= good or layout != "history"
    finally:
        if server is not None:
            stop(server)
        database(app).engine.dispose()
    return 0 if ok else 1


def measure(
    call: Callable[[int, int], bytes], schedule_id: int, rounds: int, label: str, layout: str
) -> bool:
    detailed = json.loads(call(schedule_id, 1))
    assert len(detailed) == len(json.loads(call(schedule_id, 0))) == 1000
    conflicting = sum(bool(fire["conflicts"]) for fire in detailed)
    for _ in range(3):  # warm up both roads
        call(schedule_id, 0)
        call(schedule_id, 1)
    ratios, plain_ms, detail_ms = [], [], []
    for i in range(rounds):
        times = {}
        for detail in (0, 1) if i % 2 == 0 else (1, 0):
            began = time.perf_counter()
            for _ in range(5):
                call(schedule_id, detail)
            times[detail] = (time.perf_counter() - began) / 5
        plain_ms.append(times[0] * 1000)
        detail_ms.append(times[1] * 1000)
        ratios.append(times[1] / times[0])
    ratio = statistics.median(ratios)
    low, _, high = statistics.quantiles(ratios, n=4)
    good = ratio <= TARGET
    verdict = ("ok" if good else "MISSED") if layout == "history" else "(for reading)"
    print(
        f"  {layout:8} {label:28} plain {statistics.median(plain_ms):6.2f} ms"
        f"  detail {statistics.median(detail_ms):6.2f} ms"
        f"  detail / plain {ratio:5.2f} (IQR {low:.2f}-{high:.2f})  {verdict}"
        f"  [{conflicting} of 1000 fires conflict]"
    )
    return good


def load_holds(app: Any, machine_id: int, starts: list[datetime]) -> None:
    with database(app).open(WRITE) as session:
        session.execute(delete(MachineHold))
        session.execute(
            insert(MachineHold),
            [
                {
                    "machine_id": machine_id,
                    "reason": "r",
                    "notes": "",
                    "start": start,
                    "end": start + timedelta(minutes=30),
                }
                for start in starts
            ],
        )
        session.commit()
        session.execute(text("ANALYZE machine_holds"))
        session.commit()


if __name__ == "__main__":
    sys.exit(main())
