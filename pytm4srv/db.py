"""Database plumbing: the declarative base, the UTC instant type, engines and transactions."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import URL, Dialect, make_url
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


#: The table arguments of a table whose ids clients keep: on SQLite an AUTOINCREMENT key, so
#: that a deleted row's id never names another row (PostgreSQL's sequences never reuse one).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


#: How long a command (not a request) waits for SQLite's write lock, in seconds.
COMMAND_BUSY_TIMEOUT = 30


def make_engine(url: str, *, request_timeout: float | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; on SQLite, with foreign keys enforced and usable transactions.

    With ``request_timeout`` (seconds), the database work of each HTTP request is bounded by it
    (:func:`_limit_request_waits`); commands are not.
    """
    kwargs.setdefault("json_deserializer", read_json)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", COMMAND_BUSY_TIMEOUT)
        engine = create_engine(url, **kwargs)
        _fix_pysqlite_transactions(engine)
    else:
        engine = create_engine(url, **kwargs)
        _ping_idle_connections(engine)
        if engine.dialect.name == "postgresql":
            _utc_sessions(engine)
            _bound_lock_waits(engine)
    if request_timeout is not None:
        _limit_request_waits(engine, request_timeout)
    return engine


#: A run of digits orjson would not read as json does: it reads an integer beyond 64 bits as a
#: float.
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def read_json(data: str | bytes | memoryview) -> Any:
    """A JSON column's value, read by orjson: a schedule row's three lists (``indices``,
    ``times_of_day``, ``skip``) parse several times faster than with the standard library, which
    the materializer feels over thousands of rows. Whatever orjson would read otherwise than
    ``json.loads`` (a long run of digits, a number out of a double's range) is read by
    ``json.loads``, so the value is always what the standard library gives
    (tests/test_db.py)."""
    if isinstance(data, memoryview):
        data = bytes(data)
    long = _LONG_DIGITS.search(data) if isinstance(data, str) else _LONG_DIGITS_BYTES.search(data)
    if long is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def _set_on_idle_connection(dbapi_connection: Any, statements: list[str]) -> None:
    """Run session settings on a psycopg connection outside any transaction, so that they hold
    for the connection's life (a SET inside a transaction is undone by its rollback)."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
    finally:
        dbapi_connection.autocommit = autocommit


def _utc_sessions(engine: Engine) -> None:
    # timestamptz values come back in the session's time zone: in UTC, they need no conversion
    # (UTCDateTime). Whatever the server's or the client's default, each connection is set to UTC.
    @event.listens_for(engine, "connect")
    def _set_utc(dbapi_connection: Any, connection_record: Any) -> None:
        _set_on_idle_connection(dbapi_connection, ["SET TIME ZONE 'UTC'"])


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
        cursor.execute(f"PRAGMA busy_timeout = {COMMAND_BUSY_TIMEOUT * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A transaction that reads first and writes later cannot wait for SQLite's write lock:
        # the upgrade fails at once with "database is locked" when another connection writes.
        # BEGIN IMMEDIATE takes the lock up front, so writers queue on the busy timeout instead.
        options = connection.get_execution_options()
        lock_timeout = options.get(_LOCK_TIMEOUT_OPTION)
        if lock_timeout is not None:
            connection.exec_driver_sql(f"PRAGMA busy_timeout = {_milliseconds(lock_timeout)}")
            connection.info[_SETTINGS] = None  # the next checkout sets its own busy timeout
        writes = options.get(_MODE_OPTION) == WRITE
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _bound_lock_waits(engine: Engine) -> None:
    # PostgreSQL: a session opened with a lock timeout sets it for each of its transactions.
    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        lock_timeout = connection.get_execution_options().get(_LOCK_TIMEOUT_OPTION)
        if lock_timeout is not None:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {_milliseconds(lock_timeout)}")


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


# Bounded waits. A request whose database work waits longer than the request timeout (a lock held
# by another transaction, a server that does not answer, a connection that does not open) fails
# with a driver error that pytm4srv.errors answers as 503, and its transaction is rolled back.
# The deadline is per request: it starts when the request first uses the database. Commands (the
# materializer above all) keep their own limits, so every setting below applies only to
# connections checked out inside a request.
#
# - SQLite: the busy timeout (the wait for the write lock) is the request timeout.
# - PostgreSQL: statement_timeout and lock_timeout make the server give up, and each connection
#   attempt gets a connect_timeout of the time left. A server that is frozen (or a network that
#   drops every packet) answers neither a query nor a cancel request, so the client ends the wait
#   itself: the watchdog shuts the connection's socket down WATCHDOG_GRACE seconds after the
#   deadline, and the blocked driver call fails at once as on a lost connection.

#: Seconds the server has, after the deadline, to cancel by itself before the watchdog cuts.
WATCHDOG_GRACE = 1.0
_DEADLINE = "pytm4srv_db_deadline"
_SETTINGS = "pytm4srv_request_settings"


def _request_deadline(timeout: float) -> float:
    """The request's deadline (``time.monotonic()``), set when it first uses the database."""
    deadline: float = g.setdefault(_DEADLINE, time.monotonic() + timeout)
    return deadline


def _limit_request_waits(engine: Engine, timeout: float) -> None:
    milliseconds = max(1, round(timeout * 1000))
    if engine.dialect.name == "sqlite":
        request_settings = [f"PRAGMA busy_timeout = {milliseconds}"]
        command_settings = [f"PRAGMA busy_timeout = {COMMAND_BUSY_TIMEOUT * 1000}"]

        def apply(dbapi_connection: Any, statements: list[str]) -> None:
            cursor = dbapi_connection.cursor()
            for statement in statements:
                cursor.execute(statement)
            cursor.close()

    elif engine.dialect.name == "postgresql":
        request_settings = [
            f"SET statement_timeout = {milliseconds}",
            f"SET lock_timeout = {milliseconds}",
        ]
        command_settings = ["RESET statement_timeout", "RESET lock_timeout"]
        apply = _set_on_idle_connection
        _bound_connects(engine, timeout)
        _watch_requests(engine, timeout)
    else:
        return

    @event.listens_for(engine, "checkout")
    def _settings(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        # Applied when they change, so a serving process pays once per connection.
        in_request = has_request_context()
        if connection_record.info.get(_SETTINGS, False) != in_request:
            apply(dbapi_connection, request_settings if in_request else command_settings)
            connection_record.info[_SETTINGS] = in_request


def _bound_connects(engine: Engine, timeout: float) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect_in_time(dialect: Dialect, record: Any, cargs: Any, cparams: Any) -> Any:
        if not has_request_context():
            return None  # commands connect as the driver does
        remaining = _request_deadline(timeout) - time.monotonic()
        if remaining <= 0:
            raise dialect.loaded_dbapi.OperationalError("the request's database time ran out")
        # libpq counts whole seconds, at least 2; a smaller connect_timeout in the URL stays.
        limit = max(2, math.ceil(remaining))
        configured = float(cparams.get("connect_timeout") or 0)
        cparams["connect_timeout"] = str(
            min(limit, math.ceil(configured)) if configured > 0 else limit
        )
        # The driver's timeout is per address tried and at least 2 s: the whole attempt is
        # bounded here instead, as the watchdog bounds a connection in use.
        return _connect_by(remaining + WATCHDOG_GRACE, dialect, cargs, cparams)


class _Attempt:
    """One connection attempt in a thread of its own, which the request may stop waiting for:
    a connection that opens after that is closed, never handed to anyone."""

    def __init__(self, dialect: Dialect, cargs: Any, cparams: Any) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self.connection: Any = None
        self.error: BaseException | None = None
        self._dialect, self._cargs, self._cparams = dialect, cargs, cparams

    def run(self) -> None:
        try:
            connection = self._dialect.connect(*self._cargs, **self._cparams)
        except BaseException as exc:
            self.error = exc
        else:
            with self._lock:
                if self._abandoned:
                    connection.close()
                else:
                    self.connection = connection
        finally:
            self._done.set()

    def wait(self, seconds: float) -> bool:
        """Whether it ended within ``seconds``; if not, it is abandoned."""
        if self._done.wait(seconds):
            return True
        with self._lock:
            if self.connection is not None or self.error is not None:
                return True
            self._abandoned = True
        return False


def _connect_by(seconds: float, dialect: Dialect, cargs: Any, cparams: Any) -> Any:
    """A new connection, or the driver's OperationalError after ``seconds``."""
    attempt = _Attempt(dialect, cargs, cparams)
    threading.Thread(target=attempt.run, name="pytm4srv-db-connect", daemon=True).start()
    if not attempt.wait(seconds):
        raise dialect.loaded_dbapi.OperationalError(
            f"the database did not accept a connection within {seconds:.1f} s"
        )
    if attempt.error is not None:
        raise attempt.error
    return attempt.connection


def _watch_requests(engine: Engine, timeout: float) -> None:
    # First among the checkout listeners, so that the idle-connection ping is watched too.
    @event.listens_for(engine, "checkout", insert=True)
    def _watch(dbapi_connection: Any, connection_record: Any, connection_proxy: Any) -> None:
        if has_request_context():
            deadline = _request_deadline(timeout) + WATCHDOG_GRACE
            WATCHDOG.watch(connection_record, dbapi_connection, deadline)

    def _release(dbapi_connection: Any, connection_record: Any, *args: Any) -> None:
        WATCHDOG.release(connection_record)

    # Before the pool resets a returned connection, closes or drops it (each fires before the
    # socket is closed, so the watchdog never touches a socket number that was reused).
    for name in ("checkin", "invalidate", "close", "detach"):
        event.listen(engine, name, _release)


class Watchdog:
    """Shuts down the socket of a connection still in use past its deadline.

    One thread per process, started on first use (and again in a forked child), asleep until the
    earliest deadline. ``watch`` and ``release`` cost a dictionary update under a lock.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._wake = threading.Condition()
        self._watched: dict[int, tuple[float, Any]] = {}
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None

    def watch(self, key: object, dbapi_connection: Any, deadline: float) -> None:
        with self._wake:
            self._watched[id(key)] = (deadline, dbapi_connection)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pytm4srv-db-watchdog", daemon=True
                )
                self._thread.start()
            if deadline < self._wake_at:
                self._wake.notify()

    def release(self, key: object) -> None:
        with self._wake:
            self._watched.pop(id(key), None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for key, (deadline, dbapi_connection) in list(self._watched.items()):
                    if deadline <= now:
                        del self._watched[key]
                        _shut_down(dbapi_connection)
                self._wake_at = min((d for d, _ in self._watched.values()), default=math.inf)
                self._wake.wait(None if self._wake_at == math.inf else self._wake_at - now)


def _shut_down(dbapi_connection: Any) -> None:
    """Shut the connection's socket down, so that a driver call blocked on it fails at once."""
    try:
        duplicate = os.dup(dbapi_connection.fileno())
    except Exception:  # closed meanwhile: nothing to cut
        return
    with socket.socket(fileno=duplicate) as sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


WATCHDOG = Watchdog()


# Transactions. Every unit of work says up front whether it reads or writes; nothing is inferred
# from the HTTP method. The two modes differ only in how their transactions begin:
#
# - read: on PostgreSQL in autocommit (a read needs no BEGIN and ROLLBACK round trips); on SQLite
#   a plain, deferred BEGIN.
# - write: on SQLite BEGIN IMMEDIATE (above); on PostgreSQL a plain BEGIN.
#
# Views declare their mode with ``@reads`` / ``@writes``; the request's one session (the token
# lookup, the schema's checks and the view share it) opens in that mode on first use of
# ``session()``. Commands open theirs with ``read_session()`` / ``write_session()`` (``flask holds
# materialize`` opens the write session that ``materialize()`` is given). Both roads go through
# ``Database.open``.

READ = "read"
WRITE = "write"
_MODE_OPTION = "pytm4srv_transaction"
#: Seconds each lock wait of a session's transactions may last (``write_session(lock_timeout)``).
_LOCK_TIMEOUT_OPTION = "pytm4srv_lock_timeout"
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
        self._engines = {READ: read_engine, WRITE: write_engine}
        self._factories = {
            mode: sessionmaker(engine, expire_on_commit=False)
            for mode, engine in self._engines.items()
        }
        self._bound = False

    def open(self, mode: str, *, lock_timeout: float | None = None) -> Session:
        """A new session whose transactions begin as ``mode`` (``READ`` or ``WRITE``) says.

        ``lock_timeout``: seconds each wait for a lock may last in its transactions, on SQLite
        the busy timeout (the write lock), on PostgreSQL ``SET LOCAL lock_timeout``; past it the
        statement fails with the driver's OperationalError. Sessions joined to a test's
        connection (``bind``) begin nothing, and keep that connection's settings.
        """
        factory = self._factories[mode]
        if lock_timeout is None or self._bound:
            return factory()
        options = {_LOCK_TIMEOUT_OPTION: lock_timeout}
        return factory(bind=self._engines[mode].execution_options(**options))

    def bind(self, connection: Connection) -> None:
        """Make every session join ``connection``'s transaction through SAVEPOINTs (the test
        suite's rolled-back transaction). Such sessions never BEGIN, in either mode."""
        for factory in self._factories.values():
            factory.configure(bind=connection, join_transaction_mode="create_savepoint")
        self._bound = True


def init_app(app: Flask) -> None:
    """Create the app's database handle, and close the request's session after each request."""
    engine = make_engine(app.config["DATABASE_URL"], request_timeout=app.config["DB_TIMEOUT"])
    app.extensions["pytm4srv.db"] = Database(engine)
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
def write_session(*, lock_timeout: float | None = None) -> Iterator[Session]:
    """A session for a command that writes (commit it yourself); rolled back unless committed.

    It first names the database on stderr (``database: URL``, any password masked), so that a
    command run without the service's environment says which database it writes to.

    ``lock_timeout``: seconds each lock wait may last (``Database.open``); default, SQLite's
    busy timeout of commands (30 s) and no limit on PostgreSQL.
    """
    handle = database()
    print(f"database: {shown_url(handle.engine.url)}", file=sys.stderr, flush=True)
    with handle.open(WRITE, lock_timeout=lock_timeout) as session:
        yield session


def shown_url(url: str | URL) -> str:
    """A database URL as it may be shown: the password, if any, masked."""
    return make_url(url).render_as_string(hide_password=True)


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether a driver error says a lock wait ran out: SQLite's "database is locked" (the busy
    timeout), PostgreSQL's ``lock_not_available`` (55P03, ``lock_timeout``)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    return isinstance(orig, sqlite3.OperationalError) and "database is locked" in str(orig)


def session() -> Session:
    """The current request's session, opened on first use in the mode its view declared.

    A request that reaches no declared view (an unknown path, a method not allowed) reads.
    """
    if "db_session" not in g:
        g.db_session = database().open(request_mode())
    current: Session = g.db_session
    return current


def request_mode() -> str:
    """The mode (``READ`` or ``WRITE``) the current request's view declared; ``READ`` if none."""
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
