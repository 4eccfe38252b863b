"""Idempotency keys: a retried PUT creates nothing twice (docs/API.md, Idempotency keys).

A PUT that creates (a hold, a schedule) may carry an ``Idempotency-Key`` header. The answer to the
first request with a key is stored with the key, in the same transaction as the object it
created, so a request that failed stores nothing. A repeat by the same user with the same key
within :data:`LIFETIME` answers the stored answer and writes nothing, if it is the same request
(the same endpoint, query string and body, byte for byte); with another request it is invalid
input (422 naming the header). Keys are per user.

Two requests with one key at once: the second waits on the first's transaction (SQLite's write
lock; on PostgreSQL the unique index on (user, key)), then answers what the first answered.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import marshmallow as ma
from flask import g, request
from flask.cli import with_appcontext
from flask_smorest import Blueprint, abort
from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from pytm4srv import db
from pytm4srv.auth import current_user
from pytm4srv.db import Base, write_session

HEADER = "Idempotency-Key"
#: Longest key, in characters.
KEY_LENGTH = 255
#: How long a key is remembered; an older one is as good as unused.
LIFETIME = timedelta(hours=24)
#: A key: printable ASCII, spaces allowed inside (HTTP drops them around a header value).
KEY = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
#: What the OpenAPI document allows: a key that neither starts nor ends with '"', or one in
#: quotes without escapes; each is accepted (the service accepts more: escapes in quotes).
_INNER = KEY_LENGTH - 2  # the characters between a key's first and last
DOCUMENTED_KEY = (
    rf"^([!#-~]([ -~]{{0,{_INNER}}}[!#-~])?"
    rf'|"[!#-\[\]-~]([ !#-\[\]-~]{{0,{_INNER}}}[!#-\[\]-~])?")$'
)

F = TypeVar("F", bound=Callable[..., Any])


class IdempotencyKey(Base):
    """The answer given to the first request with a key (by one user)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    #: SHA-256 (hex) of the request: method, endpoint, query string and body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int]
    #: The answer's JSON body.
    response: Mapped[Any] = mapped_column(JSON)
    #: When the first request was answered; the key expires LIFETIME later.
    created: Mapped[datetime] = mapped_column(index=True)


def _invalid(message: str) -> Any:
    abort(422, message="Invalid Idempotency-Key header.", errors={"headers": {HEADER: [message]}})


def _unquoted(value: str) -> str:
    """The key in the header's value: an RFC 8941 string (``"..."``, as the IETF draft writes
    it) is unquoted; a value that opens a quote it does not close, or closes one it did not
    open, is refused; any other value is the key as it is."""
    opens, closes = value.startswith('"'), len(value) > 1 and value.endswith('"')
    if opens != closes or value == '"':
        _invalid('A quote must open and close the key ("..."), or not be at its ends.')
    if not opens:
        return value
    inner, key, escaped = value[1:-1], [], False
    for char in inner:
        if escaped:
            if char not in '"\\':
                _invalid('In a quoted key, "\\" may only escape \'"\' or "\\".')
            key.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            _invalid("A quoted key may not contain an unescaped '\"'.")
        else:
            key.append(char)
    if escaped:
        _invalid('A quoted key may not end with "\\".')
    return "".join(key)


def key_of_request() -> str | None:
    """The request's idempotency key; None without the header; 422 if it is malformed."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    key = _unquoted(value.strip())
    if not key:
        _invalid("Must not be empty.")
    if len(key) > KEY_LENGTH:
        _invalid(f"Longer than {KEY_LENGTH} characters.")
    if KEY.fullmatch(key) is None:
        _invalid("Only printable ASCII characters (and spaces inside) are allowed.")
    return key


def request_fingerprint() -> str:
    """What makes two requests with one key the same request, as a SHA-256 (hex)."""
    digest = hashlib.sha256()
    for part in (request.method, request.endpoint or "", request.query_string.decode("latin-1")):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


@dataclass(frozen=True)
class _Claim:
    """A request with a key that has no stored answer yet."""

    user_id: int
    key: str
    fingerprint: str

    def stored(self, session: Session) -> Any:
        """The unexpired answer stored for this user and key, if any."""
        row = session.execute(
            select(IdempotencyKey.fingerprint, IdempotencyKey.status, IdempotencyKey.response)
            .where(IdempotencyKey.user_id == self.user_id, IdempotencyKey.key == self.key)
            .where(IdempotencyKey.created > datetime.now(UTC) - LIFETIME)
        )
        return row.one_or_none()

    def replay(self, stored: Any) -> Any:
        if stored.fingerprint != self.fingerprint:
            _invalid(
                "Already used for another request (another endpoint, query or body) in the "
                "last 24 hours; use a new key for a new request."
            )
        return stored.response, stored.status

    def record(self, session: Session, status: int, response: Any) -> None:
        """Store the answer; an expired use of the key goes (the key is unique per user)."""
        now = datetime.now(UTC)
        session.execute(
            delete(IdempotencyKey)
            .where(IdempotencyKey.user_id == self.user_id, IdempotencyKey.key == self.key)
            .where(IdempotencyKey.created <= now - LIFETIME)
        )
        session.add(
            IdempotencyKey(
                user_id=self.user_id,
                key=self.key,
                fingerprint=self.fingerprint,
                status=status,
                response=response,
                created=now,
            )
        )


class _KeyTaken(Exception):
    """A concurrent request with the same key committed first."""


_CLAIM = "pytm4srv_idempotency_claim"

#: The header in the OpenAPI document.
PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": "Makes a retry safe: a repeat of this request (same endpoint, query and "
    "body) with the same key, by the same user, within 24 hours answers what the first "
    "answered and creates nothing. The same key with another request is a 422. A quoted "
    'value ("...", as in the IETF draft) means the key inside the quotes.',
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": KEY_LENGTH + 2,
        "pattern": DOCUMENTED_KEY,
    },
}


def idempotent(view: F) -> F:
    """Let a creating PUT take an ``Idempotency-Key``; the view commits with :func:`commit`."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = key_of_request()
        if key is None:
            return view(*args, **kwargs)
        claim = _Claim(current_user().id, key, request_fingerprint())
        session = db.session()
        stored = claim.stored(session)
        if stored is not None:
            return claim.replay(stored)
        g.setdefault(_CLAIM, claim)
        try:
            return view(*args, **kwargs)
        except _KeyTaken as taken:
            stored = claim.stored(session)
            if stored is None and taken.__cause__ is not None:
                raise taken.__cause__ from None  # the request failed for another reason
            return claim.replay(stored)

    # The creating PUTs have no other operation parameters for this list to replace (their
    # ids are in the body; tests/test_openapi.py checks the header's documentation).
    documented: F = Blueprint.doc(parameters=[PARAMETER])(wrapper)
    return documented


def commit(created: Any, schema: ma.Schema, status: int = 201) -> None:
    """Commit the request's transaction; with an idempotency key, store the answer in it
    (``schema``'s dump of ``created``)."""
    session = db.session()
    claim: _Claim | None = g.pop(_CLAIM, None)
    try:
        if claim is not None:
            session.flush()  # ids assigned: the answer is whole
            claim.record(session, status, schema.dump(created))
        session.commit()
    except IntegrityError as exc:
        if claim is None:
            raise
        session.rollback()
        raise _KeyTaken() from exc


@click.command("expire-keys")
@with_appcontext
def expire_keys_command() -> None:
    """Delete idempotency keys older than 24 hours (run it from cron, e.g. daily)."""
    with write_session() as session:
        cutoff = datetime.now(UTC) - LIFETIME
        result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created <= cutoff))
        session.commit()
    click.echo(f"expire-keys: deleted={getattr(result, 'rowcount', 0)}")
