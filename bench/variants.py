"""What-if variants of the service, for measuring a proposed change before making it.

``lean_app()`` is ``pytm4srv.create_app()`` with every session on an autocommit engine without
any pool ping. The service itself now reads that way for GET requests (``pytm4srv/db.py``:
autocommit reads, ping only connections idle for over a second), so this variant measures about
the same as the service; it stays as a check of that. The benchmarks only send GET requests to
it; autocommit for writes would not be acceptable.

    gunicorn --chdir bench "variants:lean_app()"

``cached_auth_app()`` adds a per-worker cache of token hash to user, so that a request makes no
query for authentication (a revoked token keeps working for its 5-second lifetime).

``no_history_app()`` is the service recording no history entry, the baseline of
``bench_history.py``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import create_engine

from pytm4srv import create_app
from pytm4srv.db import READ, WRITE, database


def lean_app(test_config: dict[str, Any] | None = None) -> Flask:
    app = create_app(test_config)
    engine = create_engine(app.config["DATABASE_URL"])
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    for mode in (READ, WRITE):
        database(app)._factories[mode].configure(bind=autocommit)
    return app


def cached_auth_app(test_config: dict[str, Any] | None = None) -> Flask:
    """``lean_app()`` that also remembers, per worker, which user a token hash belongs to for a
    few seconds (a revoked token keeps working that long): no query for authentication."""
    import time

    from flask import g, request
    from sqlalchemy import select

    from pytm4srv import auth, db
    from pytm4srv.users.models import User
    from pytm4srv.users.tokens import hash_token

    app = lean_app(test_config)
    cache: dict[str, tuple[float, User]] = {}

    def authenticate() -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if request.path.startswith("/api/") and scheme.lower() == "bearer" and token.strip():
            digest = hash_token(token.strip())
            hit = cache.get(digest)
            if hit is not None and hit[0] > time.monotonic():
                g.user = hit[1]
                return
            user = db.session().scalars(select(User).where(User.token_hash == digest)).first()
            if user is not None:
                db.session().expunge(user)
                cache[digest] = (time.monotonic() + 5, user)
        auth.authenticate()

    funcs = app.before_request_funcs[None]
    funcs[funcs.index(auth.authenticate)] = authenticate
    return app


def no_history_app(test_config: dict[str, Any] | None = None) -> Flask:
    """``pytm4srv.create_app()`` that records no history entry: everything else as served, for
    measuring what the history costs a write (``bench/bench_history.py``)."""
    from pytm4srv.history import entries

    entries._record = lambda *args, **kwargs: None  # type: ignore[assignment]
    return create_app(test_config)
