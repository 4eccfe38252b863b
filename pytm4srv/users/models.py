from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from pytm4srv.db import NEVER_REUSE_IDS, Base

NAME_LENGTH = 100


class Role(enum.StrEnum):
    ADMIN = "admin"
    PLANNER = "planner"
    STAFF = "staff"


#: Roles that may delete holds and create, change or delete schedules.
PLANNING_ROLES = frozenset({Role.ADMIN, Role.PLANNER})


class User(Base):
    """Someone who calls the API with a bearer token."""

    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="user_role",
            values_callable=lambda e: [m.value for m in e],
            native_enum=False,
            length=16,
            validate_strings=True,
            create_constraint=True,
        )
    )
    #: SHA-256 of the API token, hex. The token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime]
