"""A fleet's status in one request: ``GET /api/machines/?at=now``, one page of 1 000 machines.

    .venv/bin/python bench/bench_fleet.py [--rounds 5] [--requests 50]

Makes two scratch PostgreSQL databases, migrated to head: 1 000 machines with 10 000 holds, and
100 000 machines with 1 000 000 holds (ten per machine, spread over a year around now, one in
ten without an end), filled by the database itself (``generate_series`` with a fixed seed).
Both are served in this process through Flask's test client, the two requests alternating
within each round; medians per round, and the median of the rounds' ratios. Then the memory a
request on the large one adds (tracemalloc's peak). Targets: large / small <= 1.3, < 20 MB.
Both databases are dropped at the end. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import tracemalloc

from _support import load_average, machine_description, sqlalchemy_url
from bench_replan import scratch
from sqlalchemy import text

from pytm4srv import create_app
from pytm4srv.db import make_engine
from pytm4srv.users.tokens import hash_token, new_token

RATIO_TARGET = 1.3
MEMORY_TARGET = 20 * 2**20


def fill(url: str, machines: int, holds_per_machine: int, token: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        conn.execute(
            text(
                "INSERT INTO users (name, role, token_hash, created)"
                " VALUES ('bench', 'staff', :hash, now())"
            ),
            {"hash": hash_token(token)},
        )
        conn.execute(
            text(
                "INSERT INTO machines (id, name)"
                " SELECT g, 'Machine ' || g FROM generate_series(1, :n) g"
            ),
            {"n": machines},
        )
        conn.execute(
            text(
                'INSERT INTO machine_holds (machine_id, reason, notes, start, "end", modified)'
                " SELECT m, 'maintenance', '', s,"
                " CASE WHEN random() < 0.1 THEN NULL"
                " ELSE s + make_interval(hours => 1 + (random() * 72)::int) END, now()"
                " FROM (SELECT m, now() - interval '180 days'"
                " + make_interval(secs => random() * 365 * 86400) AS s"
                " FROM generate_series(1, :n) m, generate_series(1, :k) k) holds"
            ),
            {"n": machines, "k": holds_per_machine},
        )
        conn.execute(text("ANALYZE"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument("--requests", type=int, default=50, help="requests per app per round")
    parser.add_argument(
        "--server",
        default=sqlalchemy_url("postgres"),
        help="SQLAlchemy URL of any database on the PostgreSQL server (default: local socket)",
    )
    args = parser.parse_args()
    logging.getLogger("pytm4srv.request").setLevel(logging.WARNING)  # no line per request
    print(f"machine: {machine_description()}; {load_average()}")
    token = new_token()
    with scratch(args.server) as small_url, scratch(args.server) as large_url:
        started = time.perf_counter()
        fill(small_url, 1_000, 10, token)
        fill(large_url, 100_000, 10, token)
        print(f"filled in {time.perf_counter() - started:.0f} s")
        clients = {
            name: create_app({"DATABASE_URL": url}).test_client()
            for name, url in (("small", small_url), ("large", large_url))
        }
        headers = {"Authorization": f"Bearer {token}"}
        path = "/api/machines/?at=now"

        def get(name: str) -> float:
            began = time.perf_counter()
            answer = clients[name].get(path, headers=headers)
            spent = time.perf_counter() - began
            assert answer.status_code == 200, answer.json
            assert len(answer.json) == 1000 and "held" in answer.json[0], answer.json[:1]
            return spent

        for name in clients:  # warm up: imports, connections, plans
            for _ in range(5):
                get(name)
        ratios = []
        print(f"\nGET {path} (a page of 1 000), {args.requests} per app per round, medians:")
        for round_number in range(1, args.rounds + 1):
            samples: dict[str, list[float]] = {"small": [], "large": []}
            for n in range(args.requests):
                for name in ("small", "large") if n % 2 else ("large", "small"):
                    samples[name].append(get(name))
            small_ms = statistics.median(samples["small"]) * 1000
            large_ms = statistics.median(samples["large"]) * 1000
            ratios.append(large_ms / small_ms)
            print(
                f"  round {round_number}: 1 000 machines {small_ms:6.2f} ms   100 000 machines"
                f" {large_ms:6.2f} ms   ratio {ratios[-1]:.3f}"
            )
        ratio = statistics.median(ratios)
        tracemalloc.start()
        get("large")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"100 000 / 1 000 machines = {ratio:.3f} (target <= {RATIO_TARGET})")
        print(f"memory a request adds (tracemalloc peak): {peak / 2**20:.1f} MB (< 20)")
        print(load_average())
    return 0 if ratio <= RATIO_TARGET and peak < MEMORY_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
