"""The web pages against the JSON API they stand beside, over gunicorn on PostgreSQL.

1. The board of one week (200 machines, 2 000 holds in the week, 200 schedules) against the
   JSON hold list of the same week's holds (active_from/active_until, limit=2000). Target: at
   most 3x.
2. The schedule form's live preview fragment (10 fires, detail) against
   ``previewSchedule?detail=1&count=10`` of the same schedule. Target: at most 1.5x.

Both requests of a pair run alternately, one after the other, so that other load on the machine
weighs on both alike; the ratio is of the medians. Makes (and drops) a database of its own:

    .venv/bin/python bench/bench_web.py [--rounds N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import sys
import urllib.parse
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _support import (
    load_average,
    machine_description,
    median_ms,
    sqlalchemy_url,
    start_gunicorn,
    stop,
    stop_on_signals,
    unix,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.holds.schedules import PATTERN_DEFAULTS, refresh_next_fire
from pytm4srv.machines.models import Machine
from pytm4srv.summary import MONTH_NAMES, WEEKDAY_NAMES
from pytm4srv.users.models import Role, User
from pytm4srv.users.tokens import hash_token, new_token

DB = "pytm4srv_bench_web"
MACHINES, HOLDS, SCHEDULES = 200, 2000, 200


def make_database(url: str, monday: datetime) -> str:
    """The benchmark's data; the user's token."""
    from alembic import command
    from alembic.config import Config

    admin = make_engine(sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DB}"'))
    admin.dispose()
    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    rng = random.Random(19)
    token = new_token()
    engine = make_engine(url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.add(User(name="bench", role=Role.ADMIN, token_hash=hash_token(token), created=now))
        machines = [Machine(name=f"Machine {i:03d}") for i in range(MACHINES)]
        session.add_all(machines)
        session.flush()
        for _ in range(HOLDS):
            start = monday + timedelta(minutes=rng.randrange(7 * 24 * 60))
            end = None if rng.random() < 0.05 else start + timedelta(minutes=rng.randrange(30, 600))
            session.add(
                MachineHold(
                    machine_id=rng.choice(machines).id,
                    reason=f"Reason {rng.randrange(1000)}",
                    notes="",
                    start=start,
                    end=end,
                    modified=now,
                )
            )
        zone = __import__("zoneinfo").ZoneInfo("UTC")
        for i in range(SCHEDULES):
            frequency = rng.choice("DDWWM")
            schedule = MachineHoldSchedule(
                **(
                    PATTERN_DEFAULTS
                    | {
                        "machine_id": machines[i % MACHINES].id,
                        "name": f"Schedule {i}",
                        "reason": "Planned care",
                        "frequency": frequency,
                        "time_of_day": time(rng.randrange(24), rng.choice((0, 30))),
                        "weekdays": 127 if frequency != "W" else rng.randrange(1, 128),
                        "timezone": rng.choice((None, "Europe/Berlin", "America/New_York")),
                        "duration": timedelta(minutes=90),
                        "anchor": monday - timedelta(days=30),
                        "created": monday - timedelta(days=1),
                        "modified": now,
                    }
                )
            )
            refresh_next_fire(schedule, zone)
            session.add(schedule)
        session.commit()
    engine.dispose()
    return token


class Client:
    """HTTP on one keep-alive connection, with the page's session cookie."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.origin = f"http://127.0.0.1:{port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers=None) -> bytes:  # type: ignore[no-untyped-def]
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return data

    def form(self, path: str, fields: list[tuple[str, str]]) -> bytes:
        body = urllib.parse.urlencode(fields).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": self.origin,
            "Sec-Fetch-Site": "same-origin",
        }
        return self.request("POST", path, body, headers)


def alternate(first, second, rounds: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """Median times of ``first`` and ``second`` run one after the other, and the median of the
    rounds' ratios (each pair ran under the same load)."""
    import statistics
    import time as clock

    a, b = [], []
    for _ in range(rounds):
        began = clock.perf_counter()
        first()
        a.append(clock.perf_counter() - began)
        began = clock.perf_counter()
        second()
        b.append(clock.perf_counter() - began)
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return median_ms(a), median_ms(b), ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    stop_on_signals()
    url = str(make_url(sqlalchemy_url("postgres")).set(database=DB).render_as_string(False))
    today = datetime.now(UTC).date()
    monday = datetime.combine(today - timedelta(days=today.weekday()), time(), tzinfo=UTC)
    token = make_database(url, monday)
    env = {"PYTM4SRV_DATABASE_URL": url, "PYTM4SRV_MAX_PAGE_SIZE": "2000"}
    process, port = start_gunicorn("pytm4srv:create_app()", 1, env)
    try:
        client = Client(port)
        client.request("GET", "/")  # the zone cookie the browser would send
        client.cookies["tz"] = "UTC"
        page = client.request("GET", "/signin").decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        client.form("/signin", [("csrf_token", csrf), ("token", token)])
        week = f"active_from={unix(monday)}&active_until={unix(monday + timedelta(days=7))}"
        bearer = {"Authorization": f"Bearer {token}"}
        holds = json.loads(
            client.request("GET", f"/api/machines/holds/?{week}&limit=2000", None, bearer)
        )
        board = client.request("GET", f"/?week={monday.date().isoformat()}")
        print(f"# {machine_description()}; load {load_average()}")
        print(f"board: {len(board) // 1024} KiB of HTML; hold list: {len(holds)} holds")
        board_ms, list_ms, board_ratio = alternate(
            lambda: client.request("GET", f"/?week={monday.date().isoformat()}"),
            lambda: client.request("GET", f"/api/machines/holds/?{week}&limit=2000", None, bearer),
            args.rounds,
        )
        print(
            f"board {board_ms:.1f} ms, hold list {list_ms:.1f} ms: ratio of medians "
            f"{board_ms / list_ms:.2f}, median ratio {board_ratio:.2f} (target <= 3): "
            f"{'ok' if board_ratio <= 3 else 'MISSED'}"
        )
        schedule = json.loads(
            client.request("GET", "/api/machines/holds/schedules/1", None, bearer)
        )
        body = {
            k: schedule[k]
            for k in (
                "machine_id",
                "name",
                "reason",
                "frequency",
                "interval",
                "indices",
                "months",
                "weekdays",
                "time_of_day",
                "duration",
                "timezone",
            )
        } | {"id": 1}
        fields = [
            ("csrf_token", csrf),
            ("schedule_id", "1"),
            ("name", body["name"]),
            ("machine_id", str(body["machine_id"])),
            ("reason", body["reason"]),
            ("frequency", body["frequency"]),
            ("interval", str(body["interval"])),
            ("indices", ""),
            ("time_of_day", body["time_of_day"][:5]),
            ("duration", str(body["duration"])),
            ("timezone", body["timezone"] or ""),
        ]
        days, months = WEEKDAY_NAMES, MONTH_NAMES
        fields += [("day", d) for i, d in enumerate(days) if body["weekdays"] >> i & 1]
        fields += [("month", m) for i, m in enumerate(months) if body["months"] >> i & 1]
        json_headers = bearer | {"Content-Type": "application/json"}
        payload = json.dumps(body).encode()
        preview_path = "/api/machines/holds/schedules/previewSchedule?detail=1&count=10"
        fragment = client.form("/schedules/preview", fields).decode()
        assert fragment.count("<tr>") == 11, fragment[:500]
        fragment_ms, api_ms, preview_ratio = alternate(
            lambda: client.form("/schedules/preview", fields),
            lambda: client.request("POST", preview_path, payload, json_headers),
            args.rounds,
        )
        print(
            f"preview fragment {fragment_ms:.1f} ms, previewSchedule {api_ms:.1f} ms: "
            f"ratio of medians {fragment_ms / api_ms:.2f}, median ratio {preview_ratio:.2f} "
            f"(target <= 1.5): {'ok' if preview_ratio <= 1.5 else 'MISSED'}"
        )
    finally:
        stop(process)
    if not args.keep:
        admin = make_engine(sqlalchemy_url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
