from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Interval,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pytm4srv.db import Base
from pytm4srv.recurrence import ALL_MONTHS, ALL_WEEKDAYS, FREQUENCIES

REASON_LENGTH = 500
NOTES_LENGTH = 10_000
SCHEDULE_NAME_LENGTH = 200
ZONE_NAME_LENGTH = 100
#: The GiST index of ended holds' periods (PostgreSQL only).
ENDED_PERIOD_INDEX = "ix_machine_holds_ended_period"


class MachineHold(Base):
    """A period during which one machine is unavailable."""

    __tablename__ = "machine_holds"
    __table_args__ = (
        # One hold per schedule firing: the materializer relies on it to create each hold once.
        UniqueConstraint("schedule_id", "start", name="uq_machine_holds_schedule_id_start"),
        CheckConstraint('"end" IS NULL OR "end" > start', name="end_after_start"),
        # The list endpoint filters by these and always orders by (start, id).
        Index("ix_machine_holds_start_id", "start", "id"),
        Index("ix_machine_holds_machine_id_start_id", "machine_id", "start", "id"),
        Index("ix_machine_holds_user_id_start_id", "user_id", "start", "id"),
        Index("ix_machine_holds_end_start_id", "end", "start", "id"),
        # Open holds in list order: `end=0` without walking the whole start index (migration 0002).
        Index(
            "ix_machine_holds_open_start_id",
            "start",
            "id",
            postgresql_where=text('"end" IS NULL'),
            sqlite_where=text('"end" IS NULL'),
        ),
        # What is held when (migration 0006, docs/PERFORMANCE.md): a machine's holds by end, so
        # that "in effect at T" reads only its open holds and those that end after T.
        Index("ix_machine_holds_machine_id_end_start_id", "machine_id", "end", "start", "id"),
        # PostgreSQL only: the ended holds as periods, so that the holds in effect at some
        # instant of a window are found without reading the holds that ended before it.
        Index(
            ENDED_PERIOD_INDEX,
            text('tstzrange(start, "end")'),
            postgresql_using="gist",
            postgresql_where=text('"end" IS NOT NULL'),
        ).ddl_if(dialect="postgresql"),
    )

    #: Unique, numeric ID for this hold.
    id: Mapped[int] = mapped_column(primary_key=True)
    #: ID of the machine this hold applies to.
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"))
    #: ID of the user who created this hold; NULL for holds made by a schedule or whose user
    #: was deleted.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: ID of the schedule that created this hold; NULL for holds created manually.
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("machine_hold_schedules.id", ondelete="SET NULL")
    )
    #: User-supplied reason for this hold.
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    #: User-supplied notes, usually added after creation.
    notes: Mapped[str] = mapped_column(String(NOTES_LENGTH), default="")
    #: When the hold starts.
    start: Mapped[datetime]
    #: When the hold ends; NULL means until someone ends it.
    end: Mapped[datetime | None]


class MachineHoldSchedule(Base):
    """A recurring pattern that the materializer turns into holds."""

    __tablename__ = "machine_hold_schedules"
    __table_args__ = (
        CheckConstraint(
            f"frequency IN ({', '.join(repr(f) for f in FREQUENCIES)})", name="frequency_valid"
        ),
        CheckConstraint('"interval" >= 1', name="interval_positive"),
        CheckConstraint(f"months >= 0 AND months <= {ALL_MONTHS}", name="months_range"),
        CheckConstraint(f"weekdays >= 0 AND weekdays <= {ALL_WEEKDAYS}", name="weekdays_range"),
        # The materializer's due query: next_fire_zone = Z AND next_fire <= until, and the rows
        # computed in another zone (migration 0003, docs/MATERIALIZER.md).
        Index("ix_machine_hold_schedules_next_fire_zone_next_fire", "next_fire_zone", "next_fire"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id"), index=True)
    name: Mapped[str] = mapped_column(String(SCHEDULE_NAME_LENGTH))
    reason: Mapped[str] = mapped_column(String(REASON_LENGTH))
    frequency: Mapped[str] = mapped_column(String(1))
    interval: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    indices: Mapped[list[int]] = mapped_column(JSON, default=list)
    months: Mapped[int] = mapped_column(default=ALL_MONTHS, server_default=text(str(ALL_MONTHS)))
    weekdays: Mapped[int] = mapped_column(
        default=ALL_WEEKDAYS, server_default=text(str(ALL_WEEKDAYS))
    )
    time_of_day: Mapped[time]
    #: How long each created hold lasts; NULL means indefinite.
    duration: Mapped[timedelta | None] = mapped_column(Interval)
    #: Fixes the phase of `interval` (docs/RECURRENCE.md, Rules).
    anchor: Mapped[datetime]
    #: When the schedule was created; the materializer's cursor before its first run.
    created: Mapped[datetime]
    #: The last fire instant the materializer processed; NULL before the first.
    last_fire: Mapped[datetime | None]
    #: The first fire instant after the cursor, as computed in the zone ``next_fire_zone``; NULL
    #: when there is none (or not computed yet). Kept by the schedule views and the materializer
    #: (``pytm4srv.holds.schedules.refresh_next_fire``), never by clients.
    next_fire: Mapped[datetime | None]
    #: The IANA name of the zone ``next_fire`` was computed in; NULL before the first computation.
    next_fire_zone: Mapped[str | None] = mapped_column(String(ZONE_NAME_LENGTH))
