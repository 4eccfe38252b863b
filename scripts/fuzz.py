"""Fuzz the live API with schemathesis, against its own OpenAPI document.

Starts gunicorn on 127.0.0.1 (a free port) over a fresh, migrated database with a few machines,
holds and schedules, then runs ``st run`` with every check (schemathesis's default, less the one
that does not apply, below) and every phase, stateful included, three times: as an admin, as
staff, and without a token. scripts/schemathesis.toml holds the per-operation settings (the
history operations' use_after_free; the operations whose rules OpenAPI cannot state, where 422
may answer schema-valid data), and scripts/fuzz_checks.py the check that holds such a 422 to
those rules. Every run is bounded in
time (``--max-time``). Exit 0 only when schemathesis found nothing and the server logged no
traceback.

    .venv/bin/python scripts/fuzz.py [--seconds N]

The database: ``PYTM4SRV_TEST_DATABASE_URL`` names a PostgreSQL server (a scratch database is
created on it and dropped afterwards, as the tests do); unset, a SQLite file in a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

from pytm4srv import create_app  # noqa: E402
from pytm4srv.db import WRITE, database  # noqa: E402
from pytm4srv.models import (  # noqa: E402
    Machine,
    MachineHold,
    MachineHoldSchedule,
    Role,
    User,
)
from pytm4srv.users.tokens import hash_token, new_token  # noqa: E402
from tests.conftest import migrated_database  # noqa: E402

# The check that does not apply here, and why:
# - object_level_authorization: needs two tenants; here every user may read every object.
# Not with --checks all: that would turn on again, for every operation, the checks the
# configuration file turns off for some.
EXCLUDED_CHECKS = "object_level_authorization"


def seed(url: str) -> dict[str, str]:
    """Users (a token per role), machines, and holds and schedules on them."""
    app = create_app({"DATABASE_URL": url})
    now = datetime.now(UTC).replace(microsecond=0)
    tokens = {role: new_token() for role in ("admin", "staff")}
    with database(app).open(WRITE) as session:
        users = [
            User(name=role, role=Role(role), token_hash=hash_token(token), created=now)
            for role, token in tokens.items()
        ]
        machines = [Machine(name=f"machine {n}") for n in range(1, 4)]
        session.add_all(users + machines)
        session.flush()
        for n, machine in enumerate(machines):
            day = now + timedelta(days=n)
            closed = MachineHold(
                machine_id=machine.id,
                user_id=users[n % 2].id,
                reason="service",
                start=day,
                end=day + timedelta(hours=2),
            )
            open_ = MachineHold(machine_id=machine.id, reason="open", start=now - timedelta(n))
            schedule = MachineHoldSchedule(
                machine_id=machine.id,
                name=f"weekly {n}",
                reason="check",
                frequency="W",
                time_of_day=time_of_day(8),
                indices=[],
                weekdays=1 << n,
                duration=timedelta(hours=1),
                anchor=now,
                created=now,
            )
            session.add_all([closed, open_, schedule])
        session.commit()
    return tokens


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(url: str, log: Path) -> Iterator[str]:
    port = free_port()
    env = os.environ | {"PYTM4SRV_DATABASE_URL": url}
    # The service's own gunicorn settings (gunicorn.conf.py), its request-line limit included:
    # gunicorn's own 414 is the app's JSON envelope too (pytm4srv/serving.py).
    command = [str(BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{port}", "--timeout", "60",
               "pytm4srv:create_app()"]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/api/openapi.json", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: {log.read_text()}") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def fuzz(base: str, token: str | None, seconds: int, workdir: Path) -> int:
    config = REPO / "scripts" / "schemathesis.toml"
    # One worker: hypothesis describes filters by parsing source, which is not thread-safe on
    # Python 3.11 ("AST constructor recursion depth mismatch").
    command = [str(BIN / "st"), "--config-file", str(config), "run", f"{base}/api/openapi.json",
               "--exclude-checks", EXCLUDED_CHECKS,
               "--max-time", str(seconds), "--workers", "1", "--request-timeout", "30",
               "--no-color", "--generation-database", "none"]  # fmt: skip
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    env = os.environ | {"SCHEMATHESIS_HOOKS": str(REPO / "scripts" / "fuzz_checks.py")}
    return subprocess.run(command, cwd=workdir, env=env).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="time budget of each of 3 runs")
    args = parser.parse_args()
    callers = {"admin": "admin", "staff": "staff", "no token": None}
    results: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="pytm4srv-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        # The test suite's own scratch database: PostgreSQL or SQLite as for the tests.
        with migrated_database(tmp) as url:
            tokens = seed(url)
            log = tmp / "gunicorn.log"
            with server(url, log) as base:
                for name, role in callers.items():
                    print(f"== schemathesis as {name}", flush=True)
                    token = tokens[role] if role else None
                    results[name] = fuzz(base, token, args.seconds, tmp)
            tracebacks = log.read_text().count("Traceback")
            if tracebacks:
                print(log.read_text())
    failed = [name for name, code in results.items() if code != 0]
    print(f"fuzz: {len(results) - len(failed)} passed, {len(failed)} failed", flush=True)
    if tracebacks:
        failed.append(f"{tracebacks} tracebacks in the server log")
    if failed:
        print(f"fuzz failures: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
