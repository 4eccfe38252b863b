"""Database plumbing: the declarative base, the UTC instant type, engines and transactions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: timezone-aware UTC in Python, ``timestamptz`` on PostgreSQL.

    SQLite has no zone-aware type, so instants are stored there as naive UTC and given their zone
    back on the way out. PostgreSQL answers in the session's time zone, which is UTC
    (``_utc_sessions``): values then come back in ``datetime.UTC`` and pass as they are. In any
    other zone they are converted, to the same instants but slower (reading a page of 101 holds
    took 1.4 to 1.6 times as long in zone ``Etc/UTC``, measured side by side). A naive datetime
    never gets in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given for an instant column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _as_utc(value)


def _as_utc(value: datetime | None) -> datetime | None:
    """A value read from an instant column, as aware UTC (SQLite's are naive UTC)."""
    if value is None or value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; on SQLite, with foreign keys enforced and usable transactions."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **kwargs)
        _fix_pysqlite_transactions(engine)
        return engine
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    if engine.dialect.name == "postgresql":
        _utc_sessions(engine)
    return engine


def _utc_sessions(engine: Engine) -> None:
    # timestamptz values come back in the session's time zone: in UTC, they need no conversion
    # (UTCDateTime). Whatever the server's or the client's default, each connection is set to UTC.
    @event.listens_for(engine, "connect")
    def _set_utc(dbapi_connection: Any, connection_record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET TIME ZONE 'UTC'")
            cursor.close()
        finally:
            dbapi_connection.autocommit = autocommit


#: A pooled connection unused for longer than this is tested before use.
IDLE_PING_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    # Pessimistic disconnect handling (SQLAlchemy's "pre ping"), but only for connections that sat
    # idle: after a database restart the first request still gets a live connection, while a busy
    # worker does not pay a round trip per request. A failed ping makes the pool retry with a new
    # connection; if the database is down, that raises and the request answers 503.
    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _mark_idle(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        idle_since = connection_record.info.get("idle_since", 0.0)
        if time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)  # leaves no transaction open
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError("connection lost while idle") from exc


def _fix_pysqlite_transactions(engine: Engine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT and defers BEGIN; let SQLAlchemy emit
    # BEGIN itself (SQLAlchemy docs, "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A transaction that reads first and writes later cannot wait for SQLite's write lock:
        # the upgrade fails at once with "database is locked" when another connection writes.
        # BEGIN IMMEDIATE takes the lock up front, so writers queue on the busy timeout instead.
        writes = connection.get_execution_options().get(_MODE_OPTION) == WRITE
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


# Transactions. Every unit of work says up front whether it reads or writes; nothing is inferred
# from the HTTP method. The two modes differ only in how their transactions begin:
#
# - read: on PostgreSQL in autocommit (a read needs no BEGIN and ROLLBACK round trips); on SQLite
#   a plain, deferred BEGIN.
# - write: on SQLite BEGIN IMMEDIATE (above); on PostgreSQL a plain BEGIN.
#
# Views declare their mode with ``@reads`` / ``@writes``; the request's one session (the token
# lookup, the schema's checks and the view share it) opens in that mode on first use of
# ``session()``. Commands and the materializer open theirs with ``read_session()`` /
# ``write_session()``. Both roads go through ``Database.open``.

READ = "read"
WRITE = "write"
_MODE_OPTION = "pytm4srv_transaction"
_MODE_ATTRIBUTE = "transaction_mode"

F = TypeVar("F", bound=Callable[..., Any])


def reads(view: F) -> F:
    """Declare that a view only reads: its session needs no write lock."""
    setattr(view, _MODE_ATTRIBUTE, READ)
    return view


def writes(view: F) -> F:
    """Declare that a view writes: its session's transaction begins with the write lock."""
    setattr(view, _MODE_ATTRIBUTE, WRITE)
    return view


def declared_mode(view: Callable[..., Any]) -> str | None:
    """The transaction mode a view declared with ``@reads`` / ``@writes``, if any."""
    mode: str | None = getattr(view, _MODE_ATTRIBUTE, None)
    return mode


class Database:
    """The app's engine and a session factory for each transaction mode."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        write_engine = engine.execution_options(**{_MODE_OPTION: WRITE})
        read_engine = engine.execution_options(**{_MODE_OPTION: READ})
        if engine.dialect.name == "postgresql":
            read_engine = read_engine.execution_options(isolation_level="AUTOCOMMIT")
        self._factories = {
            READ: sessionmaker(read_engine, expire_on_commit=False),
            WRITE: sessionmaker(write_engine, expire_on_commit=False),
        }

    def open(self, mode: str) -> Session:
        """A new session whose transactions begin as ``mode`` (``READ`` or ``WRITE``) says."""
        return self._factories[mode]()

    def bind(self, connection: Connection) -> None:
        """Make every session join ``connection``'s transaction through SAVEPOINTs (the test
        suite's rolled-back transaction). Such sessions never BEGIN, in either mode."""
        for factory in self._factories.values():
            factory.configure(bind=connection, join_transaction_mode="create_savepoint")


def init_app(app: Flask) -> None:
    """Create the app's database handle, and close the request's session after each request."""
    app.extensions["pytm4srv.db"] = Database(make_engine(app.config["DATABASE_URL"]))
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    """The database handle of ``app`` (default: the current app)."""
    handle: Database = (app or current_app).extensions["pytm4srv.db"]
    return handle


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for a command that only reads; closed on exit."""
    with database().open(READ) as session:
        yield session


@contextmanager
def write_session() -> Iterator[Session]:
    """A session for a command that writes (commit it yourself); rolled back unless committed."""
    with database().open(WRITE) as session:
        yield session


def session() -> Session:
    """The current request's session, opened on first use in the mode its view declared.

    A request that reaches no declared view (an unknown path, a method not allowed) reads.
    """
    if "db_session" not in g:
        g.db_session = database().open(_request_mode())
    current: Session = g.db_session
    return current


def _request_mode() -> str:
    if not has_request_context() or request.endpoint is None:
        return READ
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        method = "get" if request.method == "HEAD" else request.method.lower()
        view = getattr(view_class, method, None)
    return (declared_mode(view) if view is not None else None) or READ


def _close_session(exc: BaseException | None) -> None:
    current = g.pop("db_session", None)
    if current is not None:
        current.close()
