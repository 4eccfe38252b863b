"""gunicorn settings of the service: ``gunicorn -c gunicorn.conf.py "pytm4srv:create_app()"``.

``scripts/serve`` runs exactly this, and the tests that start a live server use it too, so what
they measure is what is served. docs/API.md (Serving) explains the choices.

- Threaded workers (``gthread``): a client that sends its request slowly occupies one thread,
  not a whole worker, so a few slow clients cannot take the service down. With the defaults, 2
  processes of 8 threads serve 16 requests at once. A client that has connected but sent nothing
  occupies no thread at all (gunicorn keeps it in its event loop).
- The longest request line gunicorn accepts is its maximum, 8190, above the app's
  ``MAX_URL_LENGTH``: long URLs get the app's 414. A longer one gets gunicorn's own 414,
  which ``post_worker_init`` has it write in the app's JSON envelope too, as its 400 and 431.
- No access log: the app logs every request itself, in one line (method, path with a calendar
  feed's secret masked, status, milliseconds, user id, request id; docs/API.md, Logging).
  gunicorn's would log each request a second time, with the raw request line.

- No control socket (gunicornc's), unless ``PYTM4SRV_CONTROL_SOCKET`` names one: by default
  gunicorn puts it at one path per user, which two instances on one host would share.

Environment: ``PYTM4SRV_BIND`` (default ``127.0.0.1:5000``), ``PYTM4SRV_WORKERS`` (2),
``PYTM4SRV_THREADS`` (8), ``PYTM4SRV_CONTROL_SOCKET`` (none).
"""

from __future__ import annotations

import os

bind = os.environ.get("PYTM4SRV_BIND", "127.0.0.1:5000")
workers = int(os.environ.get("PYTM4SRV_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("PYTM4SRV_THREADS", "8"))
limit_request_line = 8190
accesslog = None
# Should it be turned on anyway (--access-logfile -, or GUNICORN_CMD_ARGS), its lines carry
# neither the path nor the query string nor the Referer, any of which may hold a secret; the
# request id ties each line to the app's.
access_log_format = '%(h)s %(t)s "%(m)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
# gunicorn's control socket (for gunicornc) is one path per user by default, so two instances
# on one host would share it. The service needs none: it is off, unless PYTM4SRV_CONTROL_SOCKET
# names a path for this instance.
if os.environ.get("PYTM4SRV_CONTROL_SOCKET"):
    control_socket = os.environ["PYTM4SRV_CONTROL_SOCKET"]
else:
    control_socket_disable = True


def post_worker_init(worker: object) -> None:
    """gunicorn's own error answers (400, 414, 431) in the app's JSON envelope
    (pytm4srv/serving.py)."""
    from pytm4srv import serving

    serving.answer_errors_in_json()


def pre_request(worker: object, req: object) -> None:
    """Hand gunicorn's request to the app, which may have to close its connection
    (pytm4srv/serving.py)."""
    from pytm4srv import serving

    serving.hand_over(req)


def post_request(worker: object, req: object, environ: object, resp: object) -> None:
    from pytm4srv import serving

    serving.release()
