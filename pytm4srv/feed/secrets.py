"""Feed secrets: a user's secret, which is the key to their calendar feed, and the feed's path.

Shared by the endpoints and ``flask feed new-url``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete

from pytm4srv.feed.models import FeedSecret
from pytm4srv.users.tokens import hash_token

#: Where feed URLs live: no token needed there, and log lines mask what follows.
FEED_PREFIX = "/api/feed/"


def new_feed_secret(session: Any, user_id: int) -> str:
    """Make the user's feed secret anew (192 random bits); the previous one stops working."""
    secret = secrets.token_urlsafe(24)
    session.execute(delete(FeedSecret).where(FeedSecret.user_id == user_id))
    session.add(
        FeedSecret(user_id=user_id, secret_hash=hash_token(secret), created=datetime.now(UTC))
    )
    return secret


def feed_path(secret: str) -> str:
    """The path of the feed of ``secret``, as the endpoint answers it."""
    return f"{FEED_PREFIX}{secret}.ics"
