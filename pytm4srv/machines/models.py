from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from pytm4srv.db import NEVER_REUSE_IDS, Base

NAME_LENGTH = 200


class Machine(Base):
    """A machine that can be put on hold."""

    __tablename__ = "machines"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Unique (migration 0008 renamed older duplicates "name (id)").
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)


def machine_named(session: Session, name: str) -> int | None:
    """The id of the machine named ``name`` (exactly), if there is one."""
    found: int | None = session.scalar(select(Machine.id).where(Machine.name == name))
    return found
