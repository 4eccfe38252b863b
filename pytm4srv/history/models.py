from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from pytm4srv.db import Base

#: The kinds of object whose changes are recorded.
HOLD = "hold"
SCHEDULE = "schedule"
KINDS = (HOLD, SCHEDULE)

CREATED = "created"
CHANGED = "changed"
DELETED = "deleted"
ACTIONS = (CREATED, CHANGED, DELETED)


class HistoryEntry(Base):
    """One change of a hold or a schedule made through the API (docs/API.md, History).

    ``object_id`` has no foreign key: entries outlive the object they describe. ``user_id`` is
    set to null when the user is deleted, as the user's holds are; the entry stays.
    """

    __tablename__ = "history_entries"
    __table_args__ = (
        CheckConstraint(
            f"object_kind IN ({', '.join(repr(k) for k in KINDS)})", name="object_kind_valid"
        ),
        CheckConstraint(f"action IN ({', '.join(repr(a) for a in ACTIONS)})", name="action_valid"),
        # An object's entries, oldest first.
        Index("ix_history_entries_object_kind_object_id_id", "object_kind", "object_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    object_kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int]
    at: Mapped[datetime]
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    #: ``{"field": [old, new], ...}`` in the wire format.
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
