"""Database plumbing: the declarative base, the UTC datetime type, and the per-request session."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any

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
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _immediate(connection) else "BEGIN")


def _immediate(connection: Any) -> bool:
    # BEGIN IMMEDIATE takes the write lock at once, so writers queue on the busy timeout instead of
    # failing on a read-to-write lock upgrade. Asked for per transaction with the execution option
    # (``session.connection(execution_options={"sqlite_begin_immediate": True})``, as the
    # materializer does), or for every transaction of a pooled connection through its ``info``.
    return bool(
        connection.get_execution_options().get("sqlite_begin_immediate")
        or connection.info.get("sqlite_begin_immediate")
    )


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory, and close the session after each request."""
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["pytm4srv.db"] = sessionmaker(engine, expire_on_commit=False)
    app.teardown_appcontext(_close_session)


def session_factory(app: Flask | None = None) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = (app or current_app).extensions["pytm4srv.db"]
    return factory


#: Requests that may write: on SQLite their transaction takes the write lock at once.
WRITE_METHODS = frozenset({"PUT", "PATCH", "DELETE"})
#: Requests that only read.
READ_METHODS = frozenset({"GET", "HEAD"})


def get_session() -> Session:
    """The session of the current app context, opened on first use."""
    if "db_session" not in g:
        method = request.method if has_request_context() else None
        factory = session_factory()
        if method in READ_METHODS:
            g.db_session = factory(bind=_read_bind(factory.kw["bind"]))
        else:
            g.db_session = factory()
        if method in WRITE_METHODS:
            _begin_for_writing(g.db_session)
    session: Session = g.db_session
    return session


def _read_bind(bind: Engine | Connection) -> Engine | Connection:
    # A request that only reads needs no transaction: on PostgreSQL, autocommit saves the BEGIN
    # and ROLLBACK round trips. SQLite reads are local and keep their transaction; so does a
    # session bound to a connection (the test suite's rolled-back transaction).
    if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        return _autocommit(bind)
    return bind


@functools.cache
def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _begin_for_writing(session: Session) -> None:
    # A SQLite transaction that reads first (the token lookup) and then writes cannot wait for
    # the write lock: the upgrade fails at once with "database is locked" when another request
    # writes. BEGIN IMMEDIATE queues on the busy timeout instead.
    if session.get_bind().dialect.name == "sqlite":
        session.connection(execution_options={"sqlite_begin_immediate": True})


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
