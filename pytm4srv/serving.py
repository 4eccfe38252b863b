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
"""

from __future__ import annotations

import threading
from typing import Any

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
