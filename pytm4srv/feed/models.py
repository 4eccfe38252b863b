from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from pytm4srv.db import Base


class FeedSecret(Base):
    """The secret of a user's calendar feed URL: only its hash is kept, one per user."""

    __tablename__ = "feed_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: A new secret replaces the user's old one; deleting the user deletes it.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    #: SHA-256 of the secret, hex (``pytm4srv.users.tokens.hash_token``).
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime]
