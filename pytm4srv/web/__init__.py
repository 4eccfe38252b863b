"""Web pages for planners and technicians, at ``/`` (docs/WEB.md).

Server-rendered templates; the few live parts are fragments that htmx (vendored under
``pytm4srv/static``) swaps in. The pages keep no rule of their own: reads use the queries the
API uses, and every change goes through the API's own views (:mod:`pytm4srv.web.api_calls`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def secret_key(app: Flask) -> str:
    """The configured key, else one kept in the instance folder (made once, readable by the
    service only), so that every worker and every restart signs cookies alike."""
    configured = app.config.get("SECRET_KEY")
    if configured:
        return str(configured)
    path = Path(app.instance_path) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    os.makedirs(app.instance_path, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key)
    return key


def init_app(app: Flask) -> None:
    """Sessions and anti-forgery tokens (checked by the pages' blueprint only)."""
    app.config["SECRET_KEY"] = secret_key(app)
    app.config["SESSION_COOKIE_NAME"] = "pytm4srv_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The JSON API keeps its bearer tokens: the pages' blueprint asks for the check itself.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    # A token lives as long as its session (a page left open all day still saves).
    app.config["WTF_CSRF_TIME_LIMIT"] = None
    csrf.init_app(app)
