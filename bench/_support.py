"""Helpers shared by the benchmark scripts in this folder (not part of the service).

Databases are named by SQLAlchemy URLs, like the app's ``PYTM4SRV_DATABASE_URL``; a bare name
(``pytm4srv_bench``) means that database on the local server through its socket.
"""

from __future__ import annotations

import functools
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy.engine import make_url  # noqa: E402

#: The databases made by ``bench/generate.py`` for the size comparison.
BIG_DB = "pytm4srv_bench"
SMALL_DB = "pytm4srv_bench_small"
SOCKET_DIR = "/var/run/postgresql"

#: The machine whose history ``generate.py`` makes identical in every database it fills, so that
#: the same request gives the same answer whatever the table size.
PROBE_MACHINE = 1
#: Name of the user the benchmarks call the API as; its token is replaced on every run.
BENCH_USER = "bench-admin"


def sqlalchemy_url(db: str) -> str:
    """A SQLAlchemy URL for ``db``: a URL as given, or a bare database name on the local socket."""
    if "://" in db:
        return db
    user = os.environ.get("PGUSER") or "root"
    return f"postgresql+psycopg://{user}@/{db}?host={SOCKET_DIR}"


def libpq_url(db: str) -> str:
    """The same database as a libpq connection string, for psycopg directly."""
    url = make_url(sqlalchemy_url(db)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def database_name(db: str) -> str:
    return str(make_url(sqlalchemy_url(db)).database)


def database_exists(db: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(libpq_url(db), connect_timeout=5) as conn:
            conn.execute("SELECT 1 FROM machine_holds LIMIT 1")
        return True
    except psycopg.Error:
        return False


def require_database(db: str, holds: str) -> str:
    """``db``'s SQLAlchemy URL; exits with the command that makes it when it is missing."""
    if not database_exists(db):
        sys.exit(
            f"Benchmark database {database_name(db)!r} is missing or empty. Make it with:\n"
            f"  .venv/bin/python bench/generate.py {database_name(db)} --holds {holds}"
        )
    return sqlalchemy_url(db)


@functools.cache
def bench_token(db: str) -> str:
    """A fresh API token of the admin user ``bench-admin`` (created when missing), made once per
    process and database: the previous run's token stops working."""
    import psycopg

    from pytm4srv.users.tokens import hash_token

    token = secrets.token_urlsafe(32)
    with psycopg.connect(libpq_url(db)) as conn:
        conn.execute(
            "INSERT INTO users (name, role, token_hash, created) VALUES (%s, 'admin', %s, now())"
            " ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash, role = 'admin'",
            (BENCH_USER, hash_token(token)),
        )
    return token


def probe_start_after(db: str, rows_after: int = 150) -> datetime:
    """An instant with ``rows_after`` holds of the probe machine after it (same in every db)."""
    import psycopg

    with psycopg.connect(libpq_url(db)) as conn:
        row = conn.execute(
            "SELECT start FROM machine_holds WHERE machine_id = %s"
            " ORDER BY start DESC, id DESC OFFSET %s LIMIT 1",
            (PROBE_MACHINE, rows_after),
        ).fetchone()
    if row is None:
        sys.exit(f"{database_name(db)}: the probe machine has too few holds; regenerate it.")
    start: datetime = row[0]
    return start.astimezone(UTC)


def unix(instant: datetime) -> int:
    return int(instant.timestamp())


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(call: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    return samples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until a worker behind 127.0.0.1:``port`` answers HTTP (any status)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
        finally:
            conn.close()
    raise RuntimeError(f"no HTTP answer on 127.0.0.1:{port} after {timeout} s")


def stop_on_signals() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so that ``finally`` blocks stop the servers."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server this script started (gunicorn stops its workers on SIGTERM)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_gunicorn(
    app: str, workers: int, env: dict[str, str], chdir: Path = REPO, repo: Path = REPO
) -> tuple[subprocess.Popen[bytes], int]:
    """Serve ``app`` (a gunicorn app spec) on 127.0.0.1 with ``workers`` sync workers, importing
    the service from ``repo`` (another checkout, to compare revisions)."""
    port = free_port()
    command = [
        venv_bin("gunicorn"),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(chdir),
        "--pythonpath",
        f"{repo},{REPO / 'bench'}",
        "--log-level",
        "warning",
        app,
    ]
    process = subprocess.Popen(command, env={**os.environ, **env}, cwd=chdir)
    try:
        wait_for_http(port, process)
    except BaseException:
        stop(process)
        raise
    return process, port


def venv_bin(name: str) -> str:
    """An executable of the virtualenv running this script, else one on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found: install the project into the virtualenv (pip install -e .)")
    return found


def machine_description() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc), {model}, {mem} RAM, Python {platform.python_version()}"


def load_average() -> str:
    """The machine's load average (1, 5, 15 min): other work on it skews absolute times."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
