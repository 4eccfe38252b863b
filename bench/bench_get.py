"""Throughput of ``GET /api/machines/holds/<id>`` under load, against a minimal Flask+psycopg app.

    .venv/bin/python bench/bench_get.py

Serves the service (``pytm4srv:create_app()``) and ``bench/floor_app.py`` each with gunicorn, 2 sync
workers, on 127.0.0.1, both on the 1 000 000-hold database of ``bench/generate.py``, and loads them
in turn with wrk over loopback, reading the same hold. Runs alternate (service, floor, floor,
service, ...), 4 runs of 5 s each, so that drift in the machine's load hits both alike. Prints
requests per second, the ratio service / floor within each round and their median (target >= 0.5),
and the errors (target: none; exit status 1 if any). Absolute numbers are for reading only. About
a minute with the defaults; ``--what-if`` adds the variants of ``bench/variants.py`` (twice as
long).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import urllib.request
from typing import Any

from _support import (
    BIG_DB,
    PROBE_MACHINE,
    REPO,
    bench_token,
    libpq_url,
    load_average,
    machine_description,
    require_database,
    start_gunicorn,
    stop,
    stop_on_signals,
)

WRK_MISSING = (
    "wrk (HTTP load generator) not found. Install it, e.g. on Debian/Ubuntu:\n"
    "  apt-get update && apt-get install -y wrk"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=BIG_DB, help=f"database ({BIG_DB})")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (5)")
    parser.add_argument("--rounds", type=int, default=4, help="runs of each server (4)")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections (4)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (2)")
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="also load the variants of bench/variants.py (proposed changes)",
    )
    args = parser.parse_args()
    stop_on_signals()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(WRK_MISSING)
    url = require_database(args.db, "1000000")
    hold_id = pick_hold(url)
    token = bench_token(url)
    print(f"machine: {machine_description()}; {load_average()}")
    print(
        f"method: gunicorn, {args.workers} sync workers per server, 127.0.0.1; wrk -t1"
        f" -c{args.connections} -d{args.duration}s; {args.rounds} alternating runs per server"
    )

    servers = []
    try:
        service, service_port = start_gunicorn(
            "pytm4srv:create_app()", args.workers, {"PYTM4SRV_DATABASE_URL": url}
        )
        servers.append(service)
        floor, floor_port = start_gunicorn(
            "floor_app:app", args.workers, {"BENCH_FLOOR_DSN": libpq_url(url)}, REPO / "bench"
        )
        servers.append(floor)
        targets = {
            "service": (
                f"http://127.0.0.1:{service_port}/api/machines/holds/{hold_id}",
                {"Authorization": f"Bearer {token}"},
            ),
            "floor": (f"http://127.0.0.1:{floor_port}/holds/{hold_id}", {}),
        }
        if args.what_if:
            for name in ("lean_app", "cached_auth_app"):
                server, port = start_gunicorn(
                    f"variants:{name}()", args.workers, {"PYTM4SRV_DATABASE_URL": url}
                )
                servers.append(server)
                targets[f"what-if {name}"] = (
                    f"http://127.0.0.1:{port}/api/machines/holds/{hold_id}",
                    {"Authorization": f"Bearer {token}"},
                )
        answers = {name: fetch(*target) for name, target in targets.items()}
        if any(answer != answers["floor"] for answer in answers.values()):
            sys.exit(f"the two servers answer differently: {answers}")
        print(f"request: GET /api/machines/holds/{hold_id} -> {json.dumps(answers['service'])}")

        for address, headers in targets.values():  # warm-up
            run_wrk(wrk, address, headers, 2, args.connections)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        order = list(targets)
        for index in range(args.rounds):
            for name in order if index % 2 == 0 else reversed(order):
                address, headers = targets[name]
                result = run_wrk(wrk, address, headers, args.duration, args.connections)
                results[name].append(result)
                print(
                    f"  {name:<26} {result['rps']:9.1f} req/s  {result['requests']:8.0f} requests"
                    f"  {result['errors']:.0f} errors  p50 {result['p50']:.2f} ms"
                )
    finally:
        for server in servers:
            stop(server)

    print(f"after the runs: {load_average()}")
    rps = {name: statistics.mean(r["rps"] for r in runs) for name, runs in results.items()}
    errors = sum(r["errors"] for runs in results.values() for r in runs)
    print("mean throughput, and its ratio to the floor's (median over rounds of the ratio within")
    print("a round, the runs being neighbours in time; lowest-highest in brackets):")
    verdict = ""
    for name, runs in results.items():
        ratios = [r["rps"] / f["rps"] for r, f in zip(runs, results["floor"], strict=True)]
        ratio = statistics.median(ratios)
        if name == "service":
            verdict = f"  (target >= 0.5)  {'ok' if ratio >= 0.5 else 'MISSED'}"
        spread = f"[{min(ratios):.2f}-{max(ratios):.2f}]"
        tail = verdict if name == "service" else ""
        print(f"  {name:<26} {rps[name]:9.1f} req/s  {ratio:5.2f} {spread}{tail}")
    print(f"errors: {errors:.0f}  (target: 0)  {'ok' if errors == 0 else 'FAILED'}")
    return 0 if errors == 0 else 1


def pick_hold(url: str) -> int:
    import psycopg

    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            'SELECT id FROM machine_holds WHERE machine_id = %s AND "end" IS NOT NULL'
            " ORDER BY start DESC OFFSET 150 LIMIT 1",
            (PROBE_MACHINE,),
        ).fetchone()
    if row is None:
        sys.exit("no hold to read: regenerate the database with bench/generate.py")
    return int(row[0])


def fetch(address: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(address, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_wrk(
    wrk: str, address: str, headers: dict[str, str], seconds: int, connections: int
) -> dict[str, float]:
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run(
        [*command, address], capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    return parse_wrk(out)


def parse_wrk(out: str) -> dict[str, float]:
    def number(pattern: str) -> float:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else 0.0

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = number(r"Non-2xx or 3xx responses: (\d+)")
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": number(r"(\d+) requests in"),
        "errors": errors,
        "p50": float(p50.group(1)) * scale[p50.group(2)] if p50 else 0.0,
    }


if __name__ == "__main__":
    sys.exit(main())
