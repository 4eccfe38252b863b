"""Cost of re-planning a changed schedule's coming holds, and what it costs what was there before.

    .venv/bin/python bench/bench_replan.py [--base COMMIT] [--rounds 5] [--requests 300]

1. A PATCH that re-plans 1 000 coming holds against a materializer run that creates those same
   1 000 holds (an hourly schedule, the cursor 1 000 hours ahead), in this process on a scratch
   PostgreSQL database: ``materialize()`` against the PATCH through Flask's test client (the
   whole request: authentication, validation, re-planning, history, answer). Two PATCHes: a new
   time of day (the 1 000 holds deleted, 1 000 new ones made) and a new duration (the 1 000
   holds keep their ids and get new ends). Rounds interleave the three; medians, and the
   median of the rounds' ratios. Target: PATCH / run <= 2.
2. With ``--base COMMIT`` (the tree before re-planning): a PATCH of a schedule's ``name`` alone,
   this tree against that commit's tree, each under gunicorn (one sync worker) over a database
   of its own migrated by that tree (the same rows in both), request by request as
   ``bench_history.py`` does. Target: <= 1.1.
3. With ``--base``: ``bench_materialize.py`` of this tree and of that commit's tree, one round
   each in turn, ``--rounds`` times; the materializer run's time and its ratio to the bulk
   insert measured beside it (the same statement in both trees). Target: this / base <= 1.1.

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path

from _support import REPO, load_average, machine_description, sqlalchemy_url, stop, venv_bin
from bench_history import call, export, git, serve
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import make_url

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.holds.materialize import materialize
from pytm4srv.holds.schedules import refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, Role, User
from pytm4srv.users.tokens import hash_token, new_token

HOLDS = 1000
REPLAN_TARGET = 2.0
SAME_TARGET = 1.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="also compare with this commit's tree (parts 2 and 3)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument("--requests", type=int, default=300, help="name PATCHes per server")
    parser.add_argument(
        "--server",
        default=sqlalchemy_url("postgres"),
        help="SQLAlchemy URL of any database on the PostgreSQL server (default: local socket)",
    )
    args = parser.parse_args()
    print(f"machine: {machine_description()}; {load_average()}")
    print(f"this tree: {git('rev-parse', 'HEAD')[:10]}; base: {args.base or '-'}")
    missed = False
    with scratch(args.server) as url:
        missed |= replan_against_run(url, args.rounds)
    if args.base:
        missed |= name_patch_against_base(args.server, args.base, args.requests, args.rounds)
        missed |= materializer_against_base(args.base, args.rounds)
    print(f"\n{load_average()}")
    return 1 if missed else 0


class scratch:
    """A scratch database on the server, migrated by this tree (unless not ``migrate``),
    dropped at the end."""

    def __init__(self, server: str, *, migrate: bool = True) -> None:
        self.migrate = migrate
        self.admin = make_engine(server, isolation_level="AUTOCOMMIT")
        self.name = f"pytm4srv_bench_replan_{uuid.uuid4().hex[:8]}"
        self.url = make_url(server).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> str:
        from alembic import command
        from alembic.config import Config

        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        if not self.migrate:
            return self.url
        config = Config(str(REPO / "alembic.ini"))
        config.attributes["database_url"] = self.url
        config.attributes["configure_logging"] = False
        command.upgrade(config, "head")
        return self.url

    def __exit__(self, *exc: object) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def replan_against_run(url: str, rounds: int) -> bool:
    app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
    now = datetime.now(UTC).replace(microsecond=0)
    token = new_token()
    with database(app).open(WRITE) as session:
        session.add(
            User(name="planner", role=Role.PLANNER, token_hash=hash_token(token), created=now)
        )
        machine = Machine(name="press")
        session.add(machine)
        session.flush()
        schedule = MachineHoldSchedule(
            machine_id=machine.id,
            name="hourly",
            reason="check",
            frequency="H",
            time_of_day=wall_time(0, 10),
            duration=timedelta(minutes=5),
            anchor=now,
            created=now,
        )
        session.add(schedule)
        session.commit()
        schedule_id = schedule.id
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/machines/holds/schedules/{schedule_id}"
    horizon = timedelta(hours=HOLDS)

    def reset() -> None:
        with database(app).open(WRITE) as session:
            session.execute(delete(MachineHold))
            values = {
                "time_of_day": wall_time(0, 10),
                "times_of_day": (wall_time(0, 10),),
                "duration": timedelta(minutes=5),
            }
            session.execute(update(MachineHoldSchedule).values(last_fire=None, **values))
            stored = session.get(MachineHoldSchedule, schedule_id)
            refresh_next_fire(stored, app.config["ZONE"])
            session.commit()

    def run() -> float:
        with database(app).open(WRITE) as session:
            began = time.perf_counter()
            summary = materialize(session, now, horizon, timedelta(0), app.config["ZONE"])
            spent = time.perf_counter() - began
        assert summary.created == HOLDS, summary
        return spent

    def patch(body: dict[str, object]) -> float:
        began = time.perf_counter()
        answer = client.patch(path, json=body, headers=headers)
        spent = time.perf_counter() - began
        assert answer.status_code == 200, answer.json
        return spent

    def holds() -> list[tuple[int, int]]:
        with database(app).open(WRITE) as session:
            rows = session.execute(select(MachineHold.id, MachineHold.start)).all()
        return [(row.id, row.start.minute) for row in rows]

    samples: dict[str, list[float]] = {"run": [], "time": [], "duration": []}
    ratios: dict[str, list[float]] = {"time": [], "duration": []}
    for round_number in range(rounds + 1):  # round 0 warms up
        reset()
        run_s = run()
        ids = {hold_id for hold_id, _ in holds()}
        time_s = patch({"time_of_day": "00:40"})
        moved = holds()
        assert (
            len(moved) == HOLDS and {m for _, m in moved} == {40} and not ids & dict(moved).keys()
        )
        kept = {hold_id for hold_id, _ in moved}
        duration_s = patch({"duration": 50})
        assert {hold_id for hold_id, _ in holds()} == kept  # same ids, new ends
        if round_number:
            samples["run"].append(run_s)
            samples["time"].append(time_s)
            samples["duration"].append(duration_s)
            ratios["time"].append(time_s / run_s)
            ratios["duration"].append(duration_s / run_s)
    ms = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    ratio = {name: statistics.median(values) for name, values in ratios.items()}
    print(f"\nre-planning {HOLDS} coming holds (PostgreSQL, in process), medians of {rounds}:")
    print(f"  materializer run creating them        {ms['run']:8.1f} ms")
    print(
        f"  PATCH time_of_day (1000 out, 1000 in)  {ms['time']:8.1f} ms   "
        f"PATCH / run = {ratio['time']:.2f} (<= {REPLAN_TARGET})"
    )
    print(
        f"  PATCH duration (1000 new ends)         {ms['duration']:8.1f} ms   "
        f"PATCH / run = {ratio['duration']:.2f} (<= {REPLAN_TARGET})"
    )
    return max(ratio.values()) > REPLAN_TARGET


def name_patch_against_base(server: str, base: str, requests: int, rounds: int) -> bool:
    """Each tree serves a database of its own, migrated by that tree (the older code cannot
    write rows of the newer schema), with the same user, machine and schedule."""
    token = new_token()
    servers = []
    with (
        tempfile.TemporaryDirectory(prefix="pytm4srv-base-") as folder,
        scratch(server) as this_url,
        scratch(server, migrate=False) as base_url,
    ):
        export(base, Path(folder))
        subprocess.run(
            [venv_bin("python"), "-m", "alembic", "upgrade", "head"],
            cwd=folder,
            env=os.environ | {"PYTHONPATH": folder, "PYTM4SRV_DATABASE_URL": base_url},
            check=True,
            capture_output=True,
        )
        for url in (this_url, base_url):
            add_admin(url, token)
        try:
            servers.append(serve(REPO, this_url, "pytm4srv:create_app()"))
            servers.append(serve(Path(folder), base_url, "pytm4srv:create_app()"))
            ports = [port for _, port in servers]
            paths = {}
            for port in ports:
                machine = json.dumps({"name": "press"}).encode()
                assert call(port, "PUT", "/api/machines/", token, machine) == 201
                body = {
                    "machine_id": 1,
                    "name": "s",
                    "reason": "r",
                    "frequency": "D",
                    "time_of_day": "07:00",
                }
                status, answer = call_json(
                    port, "PUT", "/api/machines/holds/schedules/", token, body
                )
                assert status == 201, answer
                paths[port] = f"/api/machines/holds/schedules/{answer['id']}"  # type: ignore[index]
            bodies = [json.dumps({"name": name}).encode() for name in ("first", "second")]
            for port in ports:
                for n in range(50):
                    assert call(port, "PATCH", paths[port], token, bodies[n % 2]) == 200
            ratios = []
            print(f"\nPATCH of a schedule's name, {requests} per server per round, medians:")
            for round_number in range(1, rounds + 1):
                samples: dict[int, list[float]] = {port: [] for port in ports}
                for n in range(requests):
                    for port in ports if n % 2 else reversed(ports):
                        began = time.perf_counter()
                        assert call(port, "PATCH", paths[port], token, bodies[n % 2]) == 200
                        samples[port].append(time.perf_counter() - began)
                this_ms, base_ms = (statistics.median(samples[p]) * 1000 for p in ports)
                ratios.append(this_ms / base_ms)
                print(
                    f"  round {round_number}: this tree {this_ms:6.2f} ms   base {base_ms:6.2f} ms"
                    f"   ratio {ratios[-1]:.3f}"
                )
        finally:
            for process, _ in servers:
                stop(process)
    ratio = statistics.median(ratios)
    print(f"this / base = {ratio:.3f} (target <= {SAME_TARGET})")
    return ratio > SAME_TARGET


def add_admin(url: str, token: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, token_hash, created)"
                " VALUES ('bench', 'admin', :hash, now())"
            ),
            {"hash": hash_token(token)},
        )
    engine.dispose()


def call_json(port: int, method: str, path: str, token: str, body: object) -> tuple[int, object]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn.request(method, path, body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


_RUN_LINE = re.compile(r"materialize run creating them\s+([\d.]+) ms\s+run / bulk\s+=\s+([\d.]+)")


def materializer_against_base(base: str, rounds: int) -> bool:
    runs: dict[str, list[float]] = {"this": [], "base": []}
    per_bulk: dict[str, list[float]] = {"this": [], "base": []}
    with tempfile.TemporaryDirectory(prefix="pytm4srv-base-") as folder:
        export(base, Path(folder))
        trees = {"this": REPO, "base": Path(folder)}
        print(f"\nbench_materialize.py, one round per tree in turn, {rounds} times:")
        for round_number in range(1, rounds + 1):
            order = ("this", "base") if round_number % 2 else ("base", "this")
            for name in order:
                tree = trees[name]
                output = subprocess.run(
                    [
                        venv_bin("python"),
                        str(tree / "bench" / "bench_materialize.py"),
                        "--rounds",
                        "1",
                    ],
                    cwd=tree,
                    env=os.environ | {"PYTHONPATH": str(tree)},
                    capture_output=True,
                    text=True,
                ).stdout
                found = _RUN_LINE.search(output)
                if found is None:
                    sys.exit(f"bench_materialize.py of {name} printed no run line:\n{output}")
                runs[name].append(float(found[1]))
                per_bulk[name].append(float(found[2]))
            print(
                f"  round {round_number}: run this {runs['this'][-1]:7.1f} ms "
                f"(/bulk {per_bulk['this'][-1]:.2f})   base {runs['base'][-1]:7.1f} ms "
                f"(/bulk {per_bulk['base'][-1]:.2f})"
            )
    by_time = statistics.median(runs["this"]) / statistics.median(runs["base"])
    by_bulk = statistics.median(per_bulk["this"]) / statistics.median(per_bulk["base"])
    print(f"this / base: run time {by_time:.3f}, run/bulk {by_bulk:.3f} (target <= {SAME_TARGET})")
    return by_bulk > SAME_TARGET


if __name__ == "__main__":
    sys.exit(main())
