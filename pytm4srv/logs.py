"""Logging: one line per request, as text or JSON lines, never with a secret (docs/API.md,
Logging).

Everything the app logs goes through the ``pytm4srv`` logger, to one handler of its own on
standard error, in the configured format (``LOG_FORMAT``, ``text`` or ``json``) and level
(``LOG_LEVEL``). Its records do not propagate to the root logger, so that a host's logging set-up
neither doubles nor reformats them.

Secrets: the request line shows the path without its query string, and never a header. What
follows ``/feed/`` in a path is a calendar feed's secret and is shown as ``***``. Records logged
to the ``pytm4srv`` logger itself (Flask's "Exception on PATH"), to gunicorn's error log and to
the development server's logger are masked the same way before any handler sees them, and every
line the app's handler writes is masked once more. The development server's own request lines
(``flask run``) are dropped in favour of the app's line.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

LOGGER = "pytm4srv"
REQUEST_LOGGER = "pytm4srv.request"
REQUEST_ID_HEADER = "X-Request-ID"
FORMATS = ("text", "json")

#: An incoming request id is kept when it is this plain: up to 128 visible ASCII characters
#: that need no quoting in a log line.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}", re.ASCII)

#: A calendar feed's secret: whatever follows ``/feed/`` in a path (docs/API.md, Logging).
_FEED_PATH = re.compile(r"(/feed/+)(.+)", re.IGNORECASE | re.DOTALL)
#: The same inside any logged text: up to the next space, quote or query string.
_FEED_IN_TEXT = re.compile(r"(/feed/+)[^\s\"'?#\\]+", re.IGNORECASE)
#: Control characters of a path are escaped, so a path cannot forge a log line.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {ord("\\"): "\\\\"}

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


def mask_path(path: str) -> str:
    """``path`` as it may be logged: a feed secret masked, control characters escaped."""
    return _FEED_PATH.sub(r"\1***", path).translate(_CONTROL)


def mask_secrets(text: str) -> str:
    """``text`` with every feed secret in it masked."""
    return _FEED_IN_TEXT.sub(r"\1***", text)


def _utc_time(record: logging.LogRecord) -> str:
    """The record's instant in ISO 8601, UTC, to the millisecond."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``, secrets masked."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class JsonLinesFormatter(JsonFormatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields,
    secrets masked."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc_time(record)

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (it may be replaced, as pytest
    does, after the handler was made)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


class _MaskSecrets(logging.Filter):
    """Masks the secrets of a record itself, its traceback included, so that every handler (a
    host's, pytest's) gets it masked."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_secrets(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_secrets(self._tracebacks.formatException(record.exc_info))
        return True


class _DevServerFilter(_MaskSecrets):
    """The development server's lines: its request lines dropped (the app logs each request
    itself), the others masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.endswith('"%s" %s %s'):
            return False  # werkzeug's WSGIRequestHandler.log_request
        return super().filter(record)


_MASK_SECRETS = _MaskSecrets()
_DEV_SERVER_FILTER = _DevServerFilter()


def configure(level_name: str, format_name: str) -> None:
    """Send the ``pytm4srv`` logger's records to standard error at ``level_name`` in
    ``format_name``; ValueError for an unknown level or format."""
    level = logging.getLevelNamesMapping().get(str(level_name).upper())
    if level is None:
        raise ValueError(f"PYTM4SRV_LOG_LEVEL: unknown level {level_name!r}")
    if format_name not in FORMATS:
        raise ValueError(f"PYTM4SRV_LOG_FORMAT: {format_name!r} is not one of {FORMATS}")
    handler = _StandardError()
    handler.setFormatter(
        TextFormatter(TEXT_FORMAT)
        if format_name == "text"
        else JsonLinesFormatter(JSON_FIELDS, rename_fields=JSON_NAMES)
    )
    logger = logging.getLogger(LOGGER)
    for old in [h for h in logger.handlers if isinstance(h, _StandardError)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # Records logged to these loggers themselves (Flask's "Exception on PATH", gunicorn's "Error
    # handling request PATH"); the app's own child loggers never log a secret.
    logger.addFilter(_MASK_SECRETS)
    logging.getLogger("gunicorn.error").addFilter(_MASK_SECRETS)
    logging.getLogger("werkzeug").addFilter(_DEV_SERVER_FILTER)


def _start_request() -> None:
    g.request_started = time.perf_counter()
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def _log_request(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
    user = g.get("user")
    user_id = user.id if user is not None else None
    path = mask_path(request.path)
    logging.getLogger(REQUEST_LOGGER).info(
        "%s %s %s %.1fms user=%s request_id=%s",
        request.method,
        path,
        response.status_code,
        ms,
        "-" if user_id is None else user_id,
        request_id,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "ms": round(ms, 3),
            "user_id": user_id,
            "request_id": request_id,
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Configure logging from the app's settings and log every request (call first: the start
    time is taken before any other work of the request)."""
    try:
        configure(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    except ValueError as exc:
        raise RuntimeError(str(exc)) from exc
    app.before_request(_start_request)
    app.after_request(_log_request)
