"""pytm4srv: the holds service of a machine-management server."""

from __future__ import annotations

import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

from pytm4srv import config
from pytm4srv.json_provider import JSONProvider


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``PYTM4SRV_*`` variables, then ``test_config``."""
    app = Flask(__name__, instance_path=str(config.default_instance_path()))
    app.json = JSONProvider(app)
    # Answer `/api/machines/holds` like `/api/machines/holds/` instead of an HTML redirect.
    app.url_map.strict_slashes = False
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_prefixed_env(config.ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)

    app.config["DATABASE_URL"] = config.database_url(app.config["DATABASE_URL"], app.instance_path)
    try:
        app.config["ZONE"] = ZoneInfo(app.config["TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuntimeError(f"PYTM4SRV_TIMEZONE: unknown zone {app.config['TIMEZONE']!r}") from exc
    app.config["DB_TIMEOUT"] = config.seconds("DB_TIMEOUT", app.config["DB_TIMEOUT"])
    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        os.makedirs(app.instance_path, exist_ok=True)

    from pytm4srv import api, auth, db, errors, logs, web
    from pytm4srv.feed import cli as feed_cli
    from pytm4srv.feed.views import feed_blp, me_blp
    from pytm4srv.health import blp as health_blp
    from pytm4srv.history.views import blp as history_blp
    from pytm4srv.holds import cli as holds_cli
    from pytm4srv.holds.views import blp as holds_blp
    from pytm4srv.machines import cli as machines_cli
    from pytm4srv.machines.views import blp as machines_blp
    from pytm4srv.planning.views import blp as window_blp
    from pytm4srv.users import cli as users_cli
    from pytm4srv.web.sessions import SessionInterface
    from pytm4srv.web.views import bp as web_bp

    logs.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    rest = api.init_app(app)
    auth.init_app(app)
    rest.register_blueprint(health_blp)
    rest.register_blueprint(machines_blp)
    rest.register_blueprint(holds_blp)
    rest.register_blueprint(history_blp)
    rest.register_blueprint(window_blp)
    rest.register_blueprint(me_blp)
    rest.register_blueprint(feed_blp)
    for commands in (users_cli, machines_cli, holds_cli, feed_cli):
        commands.init_app(app)
    app.session_interface = SessionInterface()
    web.init_app(app)
    app.register_blueprint(web_bp)
    return app
