"""Calendar feed cost: against icalendar alone, revalidation against a hold list page, memory.

    .venv/bin/python bench/bench_feed.py [--server URL] [--rounds 7]

Makes a scratch PostgreSQL database on the server (``pytm4srv_bench_feed_<random>``), migrates it,
fills it, and drops it at the end. Requests run in this process through Flask's test client;
rounds are interleaved and medians printed with their ratios.

1. A feed of 1 000 holds and about 1 000 coming fires (12 daily schedules over the 90 days of
   the window ahead), against the floor: the icalendar package alone building and serializing
   the same events (no database, no HTTP). Target: feed / floor <= 1.5.
2. The same feed request with ``If-None-Match`` of its ETag (304) against a one-page hold list
   (``?limit=100``). Target: 304 / list <= 2.
3. The memory a feed request adds (tracemalloc peak). Target: < 50 MB.

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as clock

from _support import REPO, machine_description, sqlalchemy_url
from icalendar import Calendar, Event, vDuration
from icalendar.enums import STATUS
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.feed import calendar as feed_calendar
from pytm4srv.feed import queries
from pytm4srv.feed.secrets import new_feed_secret
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, Role, User
from pytm4srv.users.tokens import hash_token, new_token

HOLDS = 1000
SCHEDULES = 12  # daily, over the 90 days of the window ahead: about 1 080 fires


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgres", help="database on the server to connect to")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(machine_description())
    server = sqlalchemy_url(args.server)
    name = f"pytm4srv_bench_feed_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        return run(url, args.rounds)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(app) -> tuple[str, str]:
    """1000 holds in the window and schedules with 1000 coming fires; a token and a feed path."""
    now = datetime.now(UTC)
    token = new_token()
    with database(app).open(WRITE) as session:
        user = User(name="bench", role=Role.ADMIN, token_hash=hash_token(token), created=now)
        machines = [Machine(name=f"machine {n}") for n in range(10)]
        session.add_all([user, *machines])
        session.flush()
        start = now - timedelta(days=29)
        step = timedelta(days=110) / HOLDS
        for n in range(HOLDS):
            at = start + n * step
            session.add(
                MachineHold(
                    machine_id=machines[n % 10].id,
                    reason="planned maintenance",
                    notes="bring the spare spindle",
                    start=at,
                    end=at + timedelta(hours=2) if n % 7 else None,
                    modified=now,
                )
            )
        for n in range(SCHEDULES):
            schedule = MachineHoldSchedule(
                machine_id=machines[n % 10].id,
                name=f"daily check {n}",
                reason="daily check",
                frequency="D",
                time_of_day=clock(6, n),
                interval=1,
                indices=[],
                months=4095,
                weekdays=127,
                duration=timedelta(minutes=30),
                anchor=now,
                created=now,
                modified=now,
            )
            refresh_next_fire(schedule, UTC)
            session.add(schedule)
        secret = new_feed_secret(session, user.id)
        session.commit()
    return token, f"/api/feed/{secret}.ics"


def floor_calendar(events: list[feed_calendar.FeedEvent], window_end: datetime) -> bytes:
    """The same calendar written with icalendar alone: what any service must at least spend."""
    calendar = Calendar.new(prodid="-//bench//EN", name="holds", uid="bench@example")
    calendar.add(
        "REFRESH-INTERVAL", vDuration(timedelta(hours=1)), parameters={"VALUE": "DURATION"}
    )
    calendar.add("X-PUBLISHED-TTL", vDuration(timedelta(hours=1)))
    for event in events:
        calendar.add_component(
            Event.new(
                uid=event.uid,
                start=event.start,
                end=event.end or window_end,
                summary=event.summary,
                description=event.description,
                status=STATUS.CONFIRMED if event.confirmed else STATUS.TENTATIVE,
                stamp=event.modified,
                last_modified=event.modified,
                sequence=1,
            )
        )
    body: bytes = calendar.to_ical()
    return body


def run(url: str, rounds: int) -> int:
    sys.path.insert(0, str(REPO))
    from alembic import command

    from tests.conftest import alembic_config  # the suite's own migration helper

    command.upgrade(alembic_config(url), "head")
    app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
    token, path = fill(app)
    client = app.test_client()
    window = queries.window_at(datetime.now(UTC))
    with app.app_context(), database(app).open(WRITE) as session:
        events = queries.feed_events(session, [], window, UTC)
    holds = sum(event.confirmed for event in events)
    fires = len(events) - holds
    print(f"feed of {holds} holds and {fires} fires ({len(events)} events)")
    ok = True

    first = client.get(path)
    assert first.status_code == 200, first.status_code
    etag = first.headers["ETag"]
    headers = {"Authorization": f"Bearer {token}"}
    logging.getLogger("pytm4srv.request").setLevel(logging.WARNING)  # no line per request here
    samples: dict[str, list[float]] = {"feed": [], "floor": [], "304": [], "list": []}
    for _ in range(rounds):
        for what, call in (
            ("feed", lambda: client.get(path)),
            ("floor", lambda: floor_calendar(events, window.end)),
            ("304", lambda: client.get(path, headers={"If-None-Match": etag})),
            ("list", lambda: client.get("/api/machines/holds/?limit=100", headers=headers)),
        ):
            started = time.perf_counter()
            call()
            samples[what].append((time.perf_counter() - started) * 1000)
    median = {what: statistics.median(values) for what, values in samples.items()}
    ratio = median["feed"] / median["floor"]
    ok &= ratio <= 1.5
    print(f"  feed request        {median['feed']:8.1f} ms")
    print(f"  icalendar alone     {median['floor']:8.1f} ms   feed / floor = {ratio:.2f} (<= 1.5)")
    # The 304 against the list, 100 of each per round, alternating which goes first; the
    # median of the rounds' ratios of medians.
    list_headers = {"Authorization": f"Bearer {token}"}
    revalidate = {"If-None-Match": etag}
    ratios = []
    for round_number in range(rounds):
        pair: dict[str, list[float]] = {"304": [], "list": []}
        for n in range(100):
            order = ("304", "list") if (n + round_number) % 2 else ("list", "304")
            for what in order:
                started = time.perf_counter()
                if what == "304":
                    assert client.get(path, headers=revalidate).status_code == 304
                else:
                    client.get("/api/machines/holds/?limit=100", headers=list_headers)
                pair[what].append((time.perf_counter() - started) * 1000)
        ratios.append(statistics.median(pair["304"]) / statistics.median(pair["list"]))
    ratio = statistics.median(ratios)
    ok &= ratio <= 2
    print(f"  revalidation (304)  {median['304']:8.2f} ms")
    print(f"  hold list, 100      {median['list']:8.2f} ms")
    rounds_shown = " ".join(f"{r:.2f}" for r in ratios)
    print(f"  304 / list, median of the rounds' ratios = {ratio:.2f} (<= 2) [{rounds_shown}]")

    tracemalloc.start()
    client.get(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ok &= peak < 50 * 2**20
    print(f"  memory a feed request adds (tracemalloc peak): {peak / 2**20:.1f} MB (< 50)")
    database(app).engine.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
