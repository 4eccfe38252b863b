from __future__ import annotations

import functools
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Interval,
    String,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from pytm4srv.db import NEVER_REUSE_IDS, Base
from pytm4srv.recurrence import ALL_MONTHS, ALL_WEEKDAYS, FREQUENCIES

REASON_LENGTH = 500
NOTES_LENGTH = 10_000
SCHEDULE_NAME_LENGTH = 200
ZONE_NAME_LENGTH = 100
#: Most instants a schedule's ``skip`` holds.
MAX_SKIP = 1000
#: ``next_fire_zone`` of a row whose next fire must be computed afresh (migration 0007).
UNKNOWN_ZONE = ""


class InstantList(TypeDecorator[tuple[datetime, ...]]):
    """A set of instants: a tuple of aware UTC datetimes, ascending, in Python; a JSON array of
    ISO 8601 UTC strings in the database.

    Reading is tolerant: a stored value that is not such an array (written outside the API)
    reads as None, which the schedule's readers treat as a row they cannot use, rather than
    failing every query that loads the row.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> list[str]:
        instants = sorted({instant.astimezone(UTC) for instant in value})
        return [instant.isoformat() for instant in instants]

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[datetime, ...] | None:
        if not isinstance(value, list):
            return None
        try:
            instants = {datetime.fromisoformat(text) for text in value}
            if any(instant.utcoffset() is None for instant in instants):
                return None
            return tuple(sorted(instant.astimezone(UTC) for instant in instants))
        except (TypeError, ValueError, OverflowError):
            return None


class TimeList(TypeDecorator[tuple[time, ...]]):
    """Times of day: a tuple of naive times, ascending, in Python; a JSON array of ``HH:MM:SS``
    strings in the database.

    Reading is tolerant, as :class:`InstantList`: a stored value that is not such an array reads
    as None, a row the schedule's readers name rather than fail on.
    """

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> list[str] | None:
        return None if value is None else [t.isoformat() for t in sorted(set(value))]

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[time, ...] | None:
        if not isinstance(value, list) or not all(isinstance(text, str) for text in value):
            return None
        return _times_read(tuple(value))


@functools.lru_cache(maxsize=1024)
def _times_read(texts: tuple[str, ...]) -> tuple[time, ...] | None:
    """Stored times of day, read once per distinct list (schedules share a few: the
    materializer reads thousands of rows at a time)."""
    try:
        return tuple(sorted(time.fromisoformat(text) for text in texts))
    except ValueError:
        return None


def _only_time_of_day(context: Any) -> list[time]:
    """A row inserted with ``time_of_day`` alone fires at that one time."""
    return [context.get_current_parameters()["time_of_day"]]


#: The GiST index of ended holds' periods (PostgreSQL only).
ENDED_PERIOD_INDEX = "ix_machine_holds_ended_period"


class MachineHold(Base):
    """A period during which one machine is unavailable."""

    __tablename__ = "machine_holds"
    __table_args__ = (
        # One hold per schedule fire: the materializer relies on it to create each hold once.
        # By fire, not start, so that a hold's start can be moved (migration 0010).
        UniqueConstraint("schedule_id", "fire", name="uq_machine_holds_schedule_id_fire"),
        CheckConstraint('"end" IS NULL OR "end" > start', name="end_after_start"),
        # The list endpoint filters by these and always orders by (start, id).
        Index("ix_machine_holds_start_id", "start", "id"),
        Index("ix_machine_holds_machine_id_start_id", "machine_id", "start", "id"),
        Index("ix_machine_holds_user_id_start_id", "user_id", "start", "id"),
        Index("ix_machine_holds_end_start_id", "end", "start", "id"),
        # The calendar feed's Last-Modified: the newest change, overall or of some machines.
        Index("ix_machine_holds_machine_id_modified", "machine_id", "modified"),
        Index("ix_machine_holds_modified", "modified"),
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
        NEVER_REUSE_IDS,
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
    #: The fire instant the materializer made this hold for (RFC 5545's RECURRENCE-ID); NULL
    #: for a hold made by hand. Unlike ``start``, nothing changes it.
    fire: Mapped[datetime | None]
    #: True once a user changed a hold its schedule made: a change of the schedule then leaves
    #: it as it is (docs/API.md, Changing a schedule).
    by_hand: Mapped[bool] = mapped_column(default=False, server_default=false())
    #: When the hold was created or last changed (``revisions.touch``); the calendar feed's
    #: LAST-MODIFIED and SEQUENCE.
    modified: Mapped[datetime] = mapped_column(server_default=func.now())


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
        # The materializer's due query: next_fire <= until with next_fire_zone NULL or Z, and the
        # rows computed in another zone (migrations 0003 and 0007, docs/MATERIALIZER.md).
        Index("ix_machine_hold_schedules_next_fire_zone_next_fire", "next_fire_zone", "next_fire"),
        NEVER_REUSE_IDS,
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
    #: The earliest of ``times_of_day``.
    time_of_day: Mapped[time]
    #: Every time of day a selected date fires at (docs/RECURRENCE.md); None when the stored
    #: value cannot be read.
    times_of_day: Mapped[tuple[time, ...]] = mapped_column(TimeList, default=_only_time_of_day)
    #: No fire is later than this; NULL: the schedule has no end.
    until: Mapped[datetime | None]
    #: IANA name of the zone the pattern is read in; NULL: the service's (``PYTM4SRV_TIMEZONE``).
    timezone: Mapped[str | None] = mapped_column(String(ZONE_NAME_LENGTH))
    #: Fire instants that make no hold; None when the stored value cannot be read.
    skip: Mapped[tuple[datetime, ...]] = mapped_column(InstantList, default=tuple)
    #: How long each created hold lasts; NULL means indefinite.
    duration: Mapped[timedelta | None] = mapped_column(Interval)
    #: Fixes the phase of `interval` (docs/RECURRENCE.md, Rules).
    anchor: Mapped[datetime]
    #: When the schedule was created; the materializer's cursor before its first run.
    created: Mapped[datetime]
    #: The last fire instant the materializer processed; NULL before the first.
    last_fire: Mapped[datetime | None]
    #: The first fire instant after the cursor that is not skipped; NULL when there is none. Kept
    #: by the schedule views (``pytm4srv.holds.schedules.refresh_next_fire``) and by each
    #: materializer run (with the cursor it moves), never by clients.
    next_fire: Mapped[datetime | None]
    #: The service zone ``next_fire`` was computed in, for a schedule without a ``timezone`` of
    #: its own; NULL for one with its own (its ``next_fire`` depends on no setting);
    #: ``UNKNOWN_ZONE`` for a row whose next fire is to be computed afresh.
    next_fire_zone: Mapped[str | None] = mapped_column(String(ZONE_NAME_LENGTH))
    #: When the schedule was created or last changed through the API (``revisions.touch``).
    modified: Mapped[datetime] = mapped_column(server_default=func.now())


class DeletionMark(Base):
    """When a hold or a schedule was last deleted, per kind (``revisions.mark_deletion``)."""

    __tablename__ = "deletion_marks"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime]


class DeletedFire(Base):
    """A fire of a schedule whose hold a user deleted: no change of the schedule makes it again."""

    __tablename__ = "deleted_fires"

    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("machine_hold_schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire: Mapped[datetime] = mapped_column(primary_key=True)
