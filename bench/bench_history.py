"""Cost of the history: a hold's PATCH with its history entry against the same PATCH without.

    .venv/bin/python bench/bench_history.py [--base COMMIT] [--requests 300] [--rounds 5]

"Without" is, by default, this tree with the recording switched off (``variants:no_history_app``:
every request otherwise exactly as served, log line and request id included), which isolates the
history's cost. With ``--base COMMIT`` it is the tree of that commit instead (e.g. the commit
before the history was added), exported with ``git archive`` into a temporary folder (the
repository and its worktrees are not touched); that ratio then also holds whatever else changed
since that commit.

Both run under gunicorn (one sync worker each) against the same scratch PostgreSQL database,
migrated by this tree (older code ignores the newer tables). The client sends the same PATCH to
one server, then the other, request by request, so that load on the machine falls on both alike;
each server changes a hold of its own, ``notes`` alternating between two values, so that every
PATCH changes a value and this tree writes an entry each time. The script checks that only this
tree's server wrote entries. Medians per round, and the median of the rounds' ratios. Target:
with / without <= 1.3.

Exit status 1 if the target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from _support import (
    REPO,
    free_port,
    load_average,
    machine_description,
    sqlalchemy_url,
    stop,
    stop_on_signals,
    venv_bin,
    wait_for_http,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from pytm4srv.db import make_engine
from pytm4srv.users.tokens import hash_token, new_token

TARGET = 1.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--base", help="compare with this commit's tree (default: this tree, history off)"
    )
    parser.add_argument("--requests", type=int, default=300, help="PATCHes per server per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--server",
        default=sqlalchemy_url("postgres"),
        help="SQLAlchemy URL of any database on the PostgreSQL server (default: local socket)",
    )
    args = parser.parse_args()
    stop_on_signals()
    head = git("rev-parse", "HEAD")
    print(f"machine: {machine_description()}; {load_average()}")
    baseline = f"the tree of {args.base}" if args.base else "this tree, recording off"
    print(f"with history: this tree ({head[:10]}); without: {baseline}")

    admin = make_engine(args.server, isolation_level="AUTOCOMMIT")
    name = f"pytm4srv_bench_hist_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    servers = []
    try:
        url = make_url(args.server).set(database=name).render_as_string(hide_password=False)
        token, holds = prepare(url)
        with tempfile.TemporaryDirectory(prefix="pytm4srv-base-") as folder:
            servers.append(serve(REPO, url, "pytm4srv:create_app()"))
            if args.base:
                export(args.base, Path(folder))
                servers.append(serve(Path(folder), url, "pytm4srv:create_app()"))
            else:
                servers.append(serve(REPO, url, "variants:no_history_app()"))
            (_, with_port), (_, without_port) = servers
            return measure(url, with_port, without_port, token, holds, args.requests, args.rounds)
    finally:
        for process, _ in servers:
            stop(process)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def export(commit: str, folder: Path) -> None:
    """The tree of ``commit``, as files in ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryFile() as tar_file:
        tar_file.write(archive)
        tar_file.seek(0)
        with tarfile.open(fileobj=tar_file) as tar:
            tar.extractall(folder, filter="data")


def prepare(url: str) -> tuple[str, list[int]]:
    """Migrate the database; an admin's token and two holds to PATCH."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")
    token = new_token()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (name, role, token_hash, created)"
                " VALUES ('bench', 'admin', :hash, now())"
            ),
            {"hash": hash_token(token)},
        )
        machine_id = conn.execute(
            text("INSERT INTO machines (name) VALUES ('press') RETURNING id")
        ).scalar_one()
        holds = [
            conn.execute(
                text(
                    "INSERT INTO machine_holds (machine_id, user_id, reason, notes, start)"
                    " VALUES (:m, 1, 'r', '', now()) RETURNING id"
                ),
                {"m": machine_id},
            ).scalar_one()
            for _ in range(2)
        ]
    engine.dispose()
    return token, holds


def serve(tree: Path, url: str, app: str) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn, one sync worker, serving ``app`` with ``pytm4srv`` imported from ``tree``."""
    port = free_port()
    command = [
        venv_bin("gunicorn"),
        "--workers",
        "1",
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(tree),
        "--pythonpath",
        f"{tree},{REPO / 'bench'}",
        "--log-level",
        "warning",
        app,
    ]
    env = {**os.environ, "PYTM4SRV_DATABASE_URL": url, "PYTM4SRV_LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        command, env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_http(port, process)
    except BaseException:
        stop(process)
        raise
    return process, port


def call(port: int, method: str, path: str, token: str | None, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def entries_of(url: str, hold_id: int) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM history_entries WHERE object_id = :id"), {"id": hold_id}
        ).scalar_one()
    engine.dispose()
    return int(count)


def measure(
    url: str,
    with_port: int,
    without_port: int,
    token: str,
    holds: list[int],
    requests: int,
    rounds: int,
) -> int:
    paths = {
        port: f"/api/machines/holds/{hold}"
        for port, hold in zip((with_port, without_port), holds, strict=True)
    }
    bodies = [json.dumps({"notes": notes}).encode() for notes in ("first", "second")]
    for port in (with_port, without_port):  # warm up: imports, connections, plans
        for n in range(50):
            assert call(port, "PATCH", paths[port], token, bodies[n % 2]) == 200
    # Only the server with the history wrote entries: the two differ in that.
    if (entries_of(url, holds[0]), entries_of(url, holds[1])) != (50, 0):
        sys.exit("the two servers do not differ in recording history")
    ratios = []
    print(f"\nPATCH of a hold's notes, {requests} per server per round, medians:")
    for round_number in range(1, rounds + 1):
        samples: dict[int, list[float]] = {with_port: [], without_port: []}
        for n in range(requests):
            body = bodies[n % 2]
            for port in (with_port, without_port) if n % 2 else (without_port, with_port):
                began = time.perf_counter()
                status = call(port, "PATCH", paths[port], token, body)
                samples[port].append(time.perf_counter() - began)
                assert status == 200, status
        with_ms = statistics.median(samples[with_port]) * 1000
        without_ms = statistics.median(samples[without_port]) * 1000
        ratios.append(with_ms / without_ms)
        print(
            f"  round {round_number}: with history {with_ms:6.2f} ms   without {without_ms:6.2f} ms"
            f"   ratio {ratios[-1]:.3f}"
        )
    ratio = statistics.median(ratios)
    print(f"with / without = {ratio:.3f} (target <= {TARGET}); {load_average()}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
