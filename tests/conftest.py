"""Shared fixtures: a migrated test database (SQLite or PostgreSQL), the app, and API callers.

The database: ``PYTM4SRV_TEST_DATABASE_URL`` names a PostgreSQL server (any database on it; the
tests create fresh databases of their own there and drop them afterwards); unset, the tests use
SQLite files in a temporary folder. The schema always comes from the migrations.

Each test runs inside a transaction that is rolled back at the end (SQLAlchemy's "joining a
session into an external transaction" recipe), so tests see an empty database and cost no DDL.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.holds.schedules import PATTERN_DEFAULTS, refresh_next_fire
from pytm4srv.logs import LOGGER
from pytm4srv.models import Machine, MachineHoldSchedule, Role, User
from pytm4srv.users.tokens import hash_token, new_token

REPO = Path(__file__).resolve().parent.parent
TEST_DATABASE_ENV = "PYTM4SRV_TEST_DATABASE_URL"


def alembic_config(url: str) -> Config:
    config = Config(str(REPO / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logging"] = False
    return config


def on_postgresql() -> bool:
    return bool(os.environ.get(TEST_DATABASE_ENV))


@contextmanager
def fresh_database(tmp_dir: Path) -> Iterator[str]:
    """A new, empty database; dropped on exit. PostgreSQL if configured, else a SQLite file."""
    server = os.environ.get(TEST_DATABASE_ENV)
    if not server:
        yield f"sqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.sqlite'}"
        return
    name = f"pytm4srv_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def migrated_database(tmp_dir: Path) -> Iterator[str]:
    """A fresh database migrated to head."""
    with fresh_database(tmp_dir) as url:
        command.upgrade(alembic_config(url), "head")
        yield url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's migrated database."""
    with migrated_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as conn:
        transaction = conn.begin()
        yield conn
        transaction.rollback()


@pytest.fixture
def app_config(database_url: str) -> dict[str, Any]:
    """Overrides passed to ``create_app``; tests may add to it before using ``app``."""
    return {"TESTING": True, "DATABASE_URL": database_url}


@pytest.fixture
def app(app_config: dict[str, Any], connection: Connection) -> Iterator[Flask]:
    app = create_app(app_config)
    # Every session the app opens joins the test's transaction, through SAVEPOINTs.
    database(app).bind(connection)
    # No app context stays pushed: each request and command gets its own, and so its own session.
    yield app


@pytest.fixture
def app_log(app: Flask, caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` with every record of the app's loggers, DEBUG up (they do not propagate to the
    root logger, where ``caplog`` listens by itself)."""
    logger = logging.getLogger(LOGGER)
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def session(app: Flask) -> Any:
    """A session on the test's transaction, for arranging data and checking what was written."""
    with database(app).open(WRITE) as session:
        yield session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def stderr_lines(result: Any) -> list[str]:
    """What a command wrote on stderr after naming its database (``database: URL``, the first
    line of every command that writes)."""
    lines: list[str] = result.stderr.strip().splitlines()
    return lines[1:] if lines and lines[0].startswith("database: ") else lines


@dataclass
class Caller:
    """An API user with a token, and a client that sends it."""

    user: User
    token: str
    client: FlaskClient

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in {"get", "put", "post", "patch", "delete"}:
            raise AttributeError(method)

        def call(path: str, **kwargs: Any) -> Any:
            headers = {**self.headers, **kwargs.pop("headers", {})}
            return getattr(self.client, method)(path, headers=headers, **kwargs)

        return call


@pytest.fixture
def make_caller(session: Any, client: FlaskClient) -> Callable[..., Caller]:
    counter = iter(range(1, 10_000))

    def make(role: str = "staff", name: str | None = None) -> Caller:
        token = new_token()
        user = User(
            name=name or f"{role}-{next(counter)}",
            role=Role(role),
            token_hash=hash_token(token),
            created=datetime.now(UTC),
        )
        session.add(user)
        session.commit()
        return Caller(user, token, client)

    return make


@pytest.fixture
def admin(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("admin")


@pytest.fixture
def planner(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("planner")


@pytest.fixture
def staff(make_caller: Callable[..., Caller]) -> Caller:
    return make_caller("staff")


@pytest.fixture
def make_machine(session: Any) -> Callable[..., Machine]:
    def make(name: str = "lathe") -> Machine:
        machine = Machine(name=name)
        session.add(machine)
        session.commit()
        return machine

    return make


@pytest.fixture
def machine(make_machine: Callable[..., Machine]) -> Machine:
    return make_machine()


@pytest.fixture
def make_schedule(
    session: Any, app: Flask, request: pytest.FixtureRequest
) -> Callable[..., MachineHoldSchedule]:
    """A stored daily 08:00 schedule, created (and anchored) 2027-01-04 UTC, with its next fire
    computed as the schedule views compute it.

    ``machine`` defaults to the test's ``machine``; ``overrides`` replace any column (``anchor``
    follows ``created`` unless given; an explicit ``next_fire`` is stored as given).
    """

    def make(machine: Machine | None = None, **overrides: Any) -> MachineHoldSchedule:
        machine = machine or request.getfixturevalue("machine")
        created = overrides.pop("created", datetime(2027, 1, 4, tzinfo=UTC))
        values = (
            PATTERN_DEFAULTS
            | {
                "machine_id": machine.id,
                "name": "nightly",
                "reason": "maintenance",
                "frequency": "D",
                "time_of_day": time(8),
                "indices": [],
                "duration": None,
                "anchor": created,
                "created": created,
            }
            | overrides
        )
        schedule = MachineHoldSchedule(**values)
        if "next_fire" not in overrides:
            refresh_next_fire(schedule, app.config["ZONE"])
        session.add(schedule)
        session.commit()
        return schedule

    return make
