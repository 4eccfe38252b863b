"""The floor the benchmarks compare the service with: a minimal Flask app over psycopg.

No ORM, no schemas, no authentication: one persistent psycopg connection per worker (autocommit)
and ``jsonify``. Served by gunicorn from ``bench_get.py`` and ``bench_list.py``:

    BENCH_FLOOR_DSN=postgresql://root@/pytm4srv_bench?host=/var/run/postgresql \
        gunicorn --workers 2 --bind 127.0.0.1:8001 --chdir bench floor_app:app

- ``GET /empty``: ``{}``, the cost of Flask and the server alone;
- ``GET /holds/<id>``: one hold as the service shows it (same fields, UNIX timestamps).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import psycopg
from flask import Flask, abort

app = Flask(__name__)
_connection: psycopg.Connection[Any] | None = None

HOLD = (
    'SELECT id, machine_id, user_id, schedule_id, reason, notes, start, "end"'
    " FROM machine_holds WHERE id = %s"
)
FIELDS = ("id", "machine_id", "user_id", "schedule_id", "reason", "notes", "start", "end")


def connection() -> psycopg.Connection[Any]:
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["BENCH_FLOOR_DSN"], autocommit=True)
    return _connection


def _unix(value: datetime | None) -> int | float | None:
    if value is None:
        return None
    seconds = value.timestamp()
    return int(seconds) if value.microsecond == 0 else seconds


@app.get("/empty")
def empty() -> Any:
    return {}


@app.get("/holds/<int:hold_id>")
def hold(hold_id: int) -> Any:
    row = connection().execute(HOLD, (hold_id,)).fetchone()
    if row is None:
        abort(404)
    data = dict(zip(FIELDS, row, strict=True))
    data["start"], data["end"] = _unix(data["start"]), _unix(data["end"])
    return data
