"""Bearer-token authentication and role checks (docs/API.md, Roles)."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, g, request
from flask_smorest import Blueprint, abort
from sqlalchemy import bindparam, select

from pytm4srv import db
from pytm4srv.users.models import Role, User
from pytm4srv.users.tokens import hash_token

F = TypeVar("F", bound=Callable[..., Any])

#: Paths under /api that need no token: the API's own description, its health, and the calendar
#: feeds (their URL holds a secret of their own).
PUBLIC_PATHS = frozenset({"/api/openapi.json", "/api/health"})
PUBLIC_PREFIXES = ("/api/docs", "/api/feed/")


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _unauthorized(message: str) -> None:
    abort(401, message=message, headers={"WWW-Authenticate": 'Bearer realm="pytm4srv"'})


#: Built once: a statement made anew on every request costs more than the query itself.
TOKEN_LOOKUP = select(User.id, User.role, User.token_hash).where(
    User.token_hash == bindparam("digest")
)
#: The same for a request that writes: the caller's row stays locked against deletion until the
#: request's transaction ends (PostgreSQL's FOR KEY SHARE, which changes of the user's other
#: columns do not wait for), so a user deleted meanwhile either finds the request done (its rows
#: then lose their user_id as any of theirs do) or makes it answer 401; never a foreign key
#: error. SQLite's write transaction holds the whole database already.
TOKEN_LOOKUP_TO_WRITE = TOKEN_LOOKUP.with_for_update(read=True, key_share=True)


def authenticate() -> None:
    """Find the caller of an /api/ request from its bearer token; 401 if there is none."""
    if not request.path.startswith("/api/") or request.method == "OPTIONS":
        return
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return
    token = _bearer_token()
    if token is None:
        _unauthorized("Authentication required: send 'Authorization: Bearer TOKEN'.")
        return
    digest = hash_token(token)
    # Core on the session's connection: the cheapest way to one row, on every request.
    lookup = TOKEN_LOOKUP_TO_WRITE if db.request_mode() == db.WRITE else TOKEN_LOOKUP
    user = db.session().connection().execute(lookup, {"digest": digest}).one_or_none()
    # The lookup is by hash; compare again in constant time so no timing depends on the token.
    if user is None or not hmac.compare_digest(user.token_hash, digest):
        _unauthorized("Unknown or revoked token.")
        return
    g.user = Caller(user.id, user.role)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated user of the current request."""

    id: int
    role: Role


def current_user() -> Caller:
    caller: Caller = g.user
    return caller


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Allow a view only to callers with one of ``roles``; anyone else gets 403.

    The OpenAPI document of the view says so: the roles, and the 403 answer.
    """
    names = ", ".join(sorted(roles))

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if current_user().role not in roles:
                abort(403, message=f"This needs one of the roles: {names}.")
            return view(*args, **kwargs)

        document = Blueprint.doc(description=f"Roles: {names}.", responses={"403": "FORBIDDEN"})
        return document(wrapper)  # type: ignore[no-any-return]

    return decorator


def _no_store(response: Any) -> Any:
    # Any answer to a request that carried credentials, errors included (even a 503 from a
    # database that failed before the token was checked).
    if "user" in g or "Authorization" in request.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Authenticate every /api/ request before it reaches a view."""
    app.before_request(authenticate)
    app.after_request(_no_store)
