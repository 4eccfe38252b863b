"""gunicorn settings for ``scripts/serve`` (``--config scripts/gunicorn.conf.py``).

The app logs every request itself, in one line: method, path (a calendar feed's secret masked),
status, milliseconds, user id and request id (docs/API.md, Logging). So gunicorn's own access log
is off: it would log each request a second time, with the raw request line.
"""

accesslog = None
# Should it be turned on anyway (--access-logfile -, or GUNICORN_CMD_ARGS), its lines carry
# neither the path nor the query string nor the Referer, any of which may hold a secret; the
# request id ties each line to the app's.
access_log_format = '%(h)s %(t)s "%(m)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s'
