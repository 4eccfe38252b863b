"""Configuration: defaults, ``PYTM4SRV_*`` environment variables, and the database URL.

The same resolution serves the app and ``alembic upgrade head``, so both always talk to the same
database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_PREFIX = "PYTM4SRV"

#: Settings with their defaults. Every one can be set from the environment as ``PYTM4SRV_<NAME>``.
DEFAULTS: dict[str, Any] = {
    # SQLAlchemy URL; None means a SQLite file in the Flask instance folder.
    "DATABASE_URL": None,
    # IANA zone in which time_of_day, weekdays and months of schedules are read.
    "TIMEZONE": "UTC",
    # Largest accepted request body, in bytes (larger ones answer 413).
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Longest accepted URL (path and query string), in characters (longer ones answer 414).
    "MAX_URL_LENGTH": 4096,
    # Largest `limit` of the hold list; a request without `limit` gets at most this many.
    "MAX_PAGE_SIZE": 1000,
    # The address clients reach the service at (behind a proxy), for the feed URLs it hands out;
    # None: the address of the request.
    "PUBLIC_URL": None,
    # Longest a request waits for the database, in seconds: for a lock another transaction holds,
    # a server that does not answer, a connection that does not open. Past it the request answers
    # 503 and writes nothing (docs/API.md, Database faults).
    "DB_TIMEOUT": 10,
    # Level of the app's log (a logging level name) and its format: "text" or "json" lines.
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    # Materializer defaults, in minutes.
    "MATERIALIZE_HORIZON": 7 * 24 * 60,
    "MATERIALIZE_CATCH_UP": 24 * 60,
    # Key that signs the web pages' session cookies; None: a random key kept in the instance
    # folder (file ``secret_key``), made on first start, so that every worker shares it.
    "SECRET_KEY": None,
}

SQLITE_FILENAME = "pytm4srv.sqlite"


def seconds(name: str, value: Any) -> float:
    """A setting given in seconds: a finite number > 0 (``PYTM4SRV_<name>``)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 10**6:
        raise RuntimeError(f"{ENV_PREFIX}_{name} must be a number of seconds > 0: {value!r}")
    return float(value)


def default_instance_path() -> Path:
    """The instance folder Flask uses for the package when none is given: ``<repo>/instance``."""
    return Path(__file__).resolve().parent.parent / "instance"


def database_url(configured: str | None, instance_path: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL to use: the configured one, else the embedded SQLite default."""
    if configured:
        return configured
    return f"sqlite:///{Path(instance_path) / SQLITE_FILENAME}"


def database_url_from_env() -> str:
    """The URL the app would use with no test overrides (used by ``alembic``)."""
    return database_url(os.environ.get(f"{ENV_PREFIX}_DATABASE_URL"), default_instance_path())
