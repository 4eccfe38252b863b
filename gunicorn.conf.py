"""gunicorn settings of the service: ``gunicorn -c gunicorn.conf.py "pytm4srv:create_app()"``.

``scripts/serve`` runs exactly this, and the tests that start a live server use it too, so what
they measure is what is served. docs/API.md (Serving) explains the choices.

- Threaded workers (``gthread``): a client that sends its request slowly occupies one thread,
  not a whole worker, so a few slow clients cannot take the service down. With the defaults, 2
  processes of 8 threads serve 16 requests at once. A client that has connected but sent nothing
  occupies no thread at all (gunicorn keeps it in its event loop).
- The longest request line gunicorn accepts is its maximum, 8190, above the app's
  ``MAX_URL_LENGTH``: long URLs get the app's JSON 414 rather than gunicorn's HTML page.

Environment: ``PYTM4SRV_BIND`` (default ``127.0.0.1:5000``), ``PYTM4SRV_WORKERS`` (2),
``PYTM4SRV_THREADS`` (8).
"""

from __future__ import annotations

import os

bind = os.environ.get("PYTM4SRV_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("PYTM4SRV_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("PYTM4SRV_THREADS", "8"))
limit_request_line = 8190
accesslog = "-"
