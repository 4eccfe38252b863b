"""One JSON error envelope for every error: ``{"code", "status", "message", "errors"}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import (
    Conflict,
    HTTPException,
    InternalServerError,
    NotFound,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)


UNKNOWN_PATH = "No such path; the endpoints are listed at /api/docs."


def error_payload(error: HTTPException) -> tuple[dict[str, Any], int, dict[str, str]]:
    """The envelope, status and headers for ``error`` (raised by ``abort`` or by Flask itself)."""
    data = getattr(error, "data", None) or {}
    code = error.code or 500
    payload = {
        "code": code,
        "status": error.name,
        "message": data.get("message") or error.description or error.name,
        "errors": data.get("errors") or data.get("messages") or {},
    }
    # The exception's own headers (Allow of a 405, for one), less its HTML content type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    if code == 500:
        # Never leak the exception's text to the client.
        payload["message"] = InternalServerError.description
    elif payload["message"] == NotFound.description:
        # werkzeug's text speaks of URLs entered by hand; a path no route matches gets ours.
        payload["message"] = UNKNOWN_PATH
    return payload, code, headers


#: Seconds a client is asked to wait (``Retry-After``) before it tries again after a 503.
RETRY_AFTER = 5


#: What a client is told when its write ran into a concurrent change.
CONFLICT_MESSAGE = (
    "The change collides with another stored meanwhile (a row it names was changed or removed,"
    " or one it would make exists); read the objects again and retry."
)
#: PostgreSQL SQLSTATEs of a transaction that lost a race: serialization_failure and
#: deadlock_detected. Nothing was written; the same request may succeed now.
CONFLICT_SQLSTATES = ("40001", "40P01")


def _conflict(error: Exception) -> Any:
    """409 for a write that collided with another row or a concurrent change, never a 500.

    The views check what they can first (names, ids, row locks for a change of one object), so
    this is the answer to what no check can see: a row another transaction stored or removed
    between the check and the write.
    """
    log.info("write conflict: %s", type(getattr(error, "orig", error)).__name__)
    return error_payload(Conflict(CONFLICT_MESSAGE))


def _database_unavailable(error: DBAPIError) -> Any:
    if getattr(error.orig, "sqlstate", None) in CONFLICT_SQLSTATES:
        return _conflict(error)
    if _is_timeout(error):
        log.warning("database wait timed out: %s", type(error.orig).__name__)
        seconds = f"{current_app.config['DB_TIMEOUT']:g}"
        message = f"The database did not answer within {seconds} s (busy); try again shortly."
    elif error.connection_invalidated or _is_connection_error(error):
        log.warning("database unavailable: %s", type(error.orig).__name__)
        message = "The database is unavailable; try again shortly."
    else:
        raise error
    return error_payload(ServiceUnavailable(message, retry_after=RETRY_AFTER))


#: PostgreSQL SQLSTATE classes of a server that cannot serve: connection exception, insufficient
#: resources (too many connections), operator intervention (shutdown, cannot connect now, and
#: 57014 query_canceled: statement_timeout).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
#: PostgreSQL SQLSTATEs of a wait that ran out: query_canceled (statement_timeout) and
#: lock_not_available (lock_timeout).
TIMEOUT_SQLSTATES = ("57014", "55P03")
#: SQLite's errors for a database file it cannot open or read, and for a lock that was not
#: granted within the busy timeout ("database is locked").
UNAVAILABLE_SQLITE_ERRORS = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB", "SQLITE_BUSY")


def _is_timeout(error: DBAPIError) -> bool:
    """Whether the statement gave up waiting (a lock, the request's time): 503 with its reason."""
    sqlite_error = str(getattr(error.orig, "sqlite_errorname", ""))
    return sqlite_error.startswith("SQLITE_BUSY") or (
        getattr(error.orig, "sqlstate", None) in TIMEOUT_SQLSTATES
    )


def _is_connection_error(error: DBAPIError) -> bool:
    """Whether the database could not be reached or used (503), rather than a statement failing.

    A failing statement (bad SQL, too many variables) stays a 500: it is a bug to see in the
    logs, not a reason to tell the client to come back later. A wait that ran out (a lock not
    granted in time, the request's time used up) is a 503.
    """
    if error.connection_invalidated:
        return True
    orig = error.orig
    if not {"OperationalError", "InterfaceError"} & {cls.__name__ for cls in type(orig).__mro__}:
        return False
    sqlite_error = getattr(orig, "sqlite_errorname", None)
    if sqlite_error is not None:
        return str(sqlite_error).startswith(UNAVAILABLE_SQLITE_ERRORS)
    # psycopg: no SQLSTATE when the client itself failed to connect or lost the connection.
    sqlstate = getattr(orig, "sqlstate", None)
    return (
        sqlstate is None
        or str(sqlstate)[:2] in UNAVAILABLE_SQLSTATE_CLASSES
        or sqlstate in TIMEOUT_SQLSTATES
    )


def init_app(app: Flask) -> None:
    """Register a 503 for a database that cannot be reached, and a 409 for a write collision.

    HTTP errors get the envelope from the REST layer (``pytm4srv.api.Api.handle_http_exception``),
    which flask-smorest registers for every ``HTTPException``.
    """
    app.register_error_handler(DBAPIError, _database_unavailable)
    app.register_error_handler(IntegrityError, _conflict)
    app.register_error_handler(StaleDataError, _conflict)
