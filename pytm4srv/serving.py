"""The one place the app reaches into the server it runs under: gunicorn's own request object,
to close a connection whose request body the app did not read (docs/API.md, Serving).

An answer given before the whole body was read (a 413 for a body over the limit, a 414) must
close the connection: the rest of the body would otherwise be read as the next request. A
``Connection: close`` header set by the app is not enough under gunicorn, which drops the app's
hop-by-hop headers and decides keep-alive from its request object alone. ``gunicorn.conf.py``'s
``pre_request`` hook hands that object over (per thread: a gthread worker serves one request
per thread at a time), and :func:`close_connection` sets its ``must_close``, which gunicorn
reads before it writes the answer's headers, so the answer says ``Connection: close`` and the
connection is closed after it. ``must_close`` is not part of gunicorn's documented API: checked
with gunicorn 27.0 (``pyproject.toml`` keeps it below 27.1), and ``tests/test_serving.py``
checks it on raw sockets. Under another server nothing is handed over, and this does nothing.

The requests gunicorn refuses itself, before the app sees them (a request line over its limit:
414; a header line over its limit: 431; a line it cannot parse: 400), get the app's JSON error
envelope too, not gunicorn's HTML page: :func:`answer_errors_in_json` puts
:func:`write_error` in the place of ``gunicorn.util.write_error``, which gunicorn's workers call
for those answers. That function is not part of gunicorn's documented API either: same version
pin, same test file.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import orjson
from werkzeug.http import HTTP_STATUS_CODES

_current = threading.local()


def hand_over(server_request: Any) -> None:
    """gunicorn's request object of the request this thread serves next (``pre_request``)."""
    _current.request = server_request


def release() -> None:
    """Forget it once the request is done (``post_request``)."""
    _current.request = None


def close_connection() -> None:
    """Close the connection after this request's answer, which then says so."""
    server_request = getattr(_current, "request", None)
    if server_request is not None:
        server_request.must_close = True


def write_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """gunicorn's own error answer, as the app's envelope (``pytm4srv.errors``): JSON with
    ``code``, ``status``, ``message`` and ``errors``; the connection is closed after it."""
    from gunicorn import util

    name = HTTP_STATUS_CODES.get(status, reason)  # the names the app's own errors give
    # Written as the app writes its answers (pytm4srv/json_provider.py): compact, one line.
    body = (
        orjson.dumps({"code": status, "status": name, "message": message or name, "errors": {}})
        + b"\n"
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def answer_errors_in_json() -> None:
    """Have gunicorn write its own error answers with :func:`write_error` (``post_worker_init``
    of ``gunicorn.conf.py``)."""
    from gunicorn import util

    util.write_error = write_error
