"""Who is signed in to the pages: a session cookie that names a user, never holds a token.

The cookie is signed, not encrypted, so it carries the user's id and a *fingerprint* of the
stored token hash (an HMAC with the app's key): rotating the token changes the stored hash, so
the fingerprint no longer matches and the next page asks to sign in again. The user's row is
read on every page, so a changed role or a deleted user counts from the next page on.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import bindparam, select

from pytm4srv import db
from pytm4srv.auth import Caller
from pytm4srv.users.models import User
from pytm4srv.users.tokens import hash_token

F = TypeVar("F", bound=Callable[..., Any])

_BY_ID = select(User.id, User.name, User.role, User.token_hash).where(
    User.id == bindparam("user_id")
)
_BY_TOKEN = select(User.id, User.token_hash).where(User.token_hash == bindparam("digest"))


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked ``Secure`` whenever the page came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def fingerprint(token_hash: str) -> str:
    """What the cookie keeps of a user's stored token hash: it changes when the token does."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"session:" + token_hash.encode(), hashlib.sha256).hexdigest()[:32]


def sign_in(token: str) -> bool:
    """Start a session for the user of ``token``; False if no user has it."""
    digest = hash_token(token.strip())
    row = db.session().connection().execute(_BY_TOKEN, {"digest": digest}).one_or_none()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return False
    csrf_token = session.get("csrf_token")
    session.clear()
    if csrf_token is not None:
        session["csrf_token"] = csrf_token
    session["user_id"] = row.id
    session["fingerprint"] = fingerprint(row.token_hash)
    return True


def sign_out() -> None:
    session.clear()


def load_user() -> None:
    """Put the signed-in user on ``g`` (``g.user``, a :class:`Caller`, and ``g.user_name``), or
    end a session whose user is gone or whose token was rotated."""
    user_id = session.get("user_id")
    if not isinstance(user_id, int):
        return
    row = db.session().connection().execute(_BY_ID, {"user_id": user_id}).one_or_none()
    kept = str(session.get("fingerprint", ""))
    if row is None or not hmac.compare_digest(fingerprint(row.token_hash), kept):
        sign_out()
        return
    g.user = Caller(row.id, row.role)
    g.user_name = row.name


def signed_in(view: F) -> F:
    """A page for signed-in users only; anyone else is sent to the sign-in form."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "user" not in g:
            if request.headers.get("HX-Request"):  # a fragment: have htmx load the whole page
                return "", 401, {"HX-Redirect": url_for("web.sign_in")}
            return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: Values of ``Sec-Fetch-Site`` that a form of the service's own pages sends.
_OWN_SITES = frozenset({"same-origin", "none"})


def refuse_foreign() -> None:
    """403 for a state-changing request that another site sent (OWASP's check of the source
    origin, beside the anti-forgery token): ``Sec-Fetch-Site`` naming another site, or an
    ``Origin`` other than the service's own."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in _OWN_SITES:
        abort(403, "This form was sent from another site.")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in own_origins():
        abort(403, "This form was sent from another site.")


def own_origins() -> set[str]:
    """The origins the pages are served from: the request's, and the configured public URL's."""
    origins = {request.host_url.rstrip("/")}
    public = current_app.config.get("PUBLIC_URL")
    if public:
        parts = urlsplit(public)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def safe_next(target: str | None) -> str:
    """A page to go to after signing in: a path of this service, never another host."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/api/"))
        and not any(char <= " " or char in "\\\x7f" for char in target)  # browsers drop some
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("web.board")
