"""One JSON error envelope for every error: ``{"code", "status", "message", "errors"}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

log = logging.getLogger(__name__)


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
    return payload, code, headers


def _database_unavailable(error: DBAPIError) -> Any:
    if error.connection_invalidated or _is_connection_error(error):
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return error_payload(ServiceUnavailable("The database is unavailable; try again shortly."))
    raise error


#: PostgreSQL SQLSTATE classes of a server that cannot serve: connection exception, insufficient
#: resources (too many connections), operator intervention (shutdown, cannot connect now).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
#: SQLite's errors for a database file it cannot open or read.
UNAVAILABLE_SQLITE_ERRORS = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_NOTADB")


def _is_connection_error(error: DBAPIError) -> bool:
    """Whether the database could not be reached or used (503), rather than a statement failing.

    A failing statement (bad SQL, too many variables, a lock not granted) stays a 500: it is a
    bug to see in the logs, not a reason to tell the client to come back later.
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
    return sqlstate is None or str(sqlstate)[:2] in UNAVAILABLE_SQLSTATE_CLASSES


def init_app(app: Flask) -> None:
    """Register a 503 for a database that cannot be reached.

    HTTP errors get the envelope from the REST layer (``pytm4srv.api.Api.handle_http_exception``),
    which flask-smorest registers for every ``HTTPException``.
    """
    app.register_error_handler(DBAPIError, _database_unavailable)
