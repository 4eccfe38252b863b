"""The materializer: turns due schedule firings into holds (CONTRACT.md section 8).

Each schedule has a cursor (``last_fire``, or ``created`` before its first run). A run at ``now``
takes every fire instant f with cursor < f <= now + horizon, creates a hold for each f >= now -
catch-up, skips the older ones, and moves the cursor to the last f it took.

How it stays exactly-once and cheap (docs/MATERIALIZER.md has the operator's view):

- Every schedule stores ``next_fire``, its first fire after the cursor, and ``next_fire_zone``, the
  zone that was computed in. The schedule views (:func:`refresh_next_fire`) and the materializer
  keep it current, so the due schedules are one indexed query: ``next_fire_zone = Z AND next_fire
  <= until``. A row computed in another zone (``PYTM4SRV_TIMEZONE`` changed, or a row from before
  migration 0003) is due as well and gets recomputed: the stored value is only ever used to *find*
  schedules; the fires themselves are always computed afresh from the cursor.
- Schedules are processed in small batches, each one short transaction: lock the batch (``FOR
  UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent runs share the work instead of waiting; once
  nothing unlocked is due, a run waits for the locked rows, which a concurrent run with an
  earlier now may leave still due; ``BEGIN IMMEDIATE`` on SQLite, which serializes writers),
  insert its holds with ``ON CONFLICT (schedule_id, start) DO NOTHING``, move the cursors,
  commit. A schedule's holds and its cursor move together or not at all, so a run that fails
  leaves every schedule either done or untouched.
- The engine starts from the cursor arithmetically, so the cost does not grow with a schedule's
  age. After a long outage the skipped fires are counted one by one only up to
  :data:`SKIP_COUNT_LIMIT` per schedule; past that the count is a lower bound and the iteration
  jumps straight to now - catch-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from pytm4srv import recurrence
from pytm4srv.holds.firing import cursor_of, pattern_fields, pattern_of
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule

#: Schedules locked per transaction...
BATCH_SIZE = 500
#: ...of which the transaction processes only as many as make this many holds (at least one).
HOLDS_PER_BATCH = 5000
#: Skipped fires counted one by one per schedule; beyond, "skipped" is a lower bound.
SKIP_COUNT_LIMIT = 1000

_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)

_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
_HOLDS = cast(Table, MachineHold.__table__)


class ScheduleError(Exception):
    """A schedule the materializer could not process (a row the API would not have stored)."""

    def __init__(self, schedule_id: int, cause: Exception) -> None:
        super().__init__(f"schedule {schedule_id}: {type(cause).__name__}: {cause}")
        self.schedule_id = schedule_id


@dataclass
class Summary:
    """What a run did."""

    #: Schedules the run processed: those due in its window, plus any recomputed for a new zone.
    schedules: int = 0
    #: Holds created.
    created: int = 0
    #: Fire instants older than now - catch-up that got no hold.
    skipped: int = 0
    #: False when some schedule had more than SKIP_COUNT_LIMIT skipped fires: then ``skipped``
    #: counts SKIP_COUNT_LIMIT for it, and is a lower bound.
    skipped_exact: bool = True

    def line(self) -> str:
        """The one-line summary the command prints."""
        skipped = f"{self.skipped}{'' if self.skipped_exact else '+'}"
        return f"schedules={self.schedules} created={self.created} skipped={skipped}"


@dataclass
class _Plan:
    starts: list[datetime] = field(default_factory=list)
    skipped: int = 0
    skipped_exact: bool = True
    last_fire: datetime | None = None
    next_fire: datetime | None = None


def zone_name(zone: tzinfo) -> str:
    """The name stored in ``next_fire_zone``: the IANA key of a ZoneInfo, else ``str(zone)``."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else str(zone)


def refresh_next_fire(schedule: MachineHoldSchedule, zone: tzinfo) -> None:
    """Store the schedule's first fire instant after its cursor, computed in ``zone``.

    The schedule views call this whenever they create or change a schedule, so that the
    materializer finds it with its due query.
    """
    pattern = pattern_of(pattern_fields(schedule))
    fires = recurrence.next_fires(pattern, schedule.anchor, zone, cursor_of(schedule), 1)
    schedule.next_fire = fires[0] if fires else None
    schedule.next_fire_zone = zone_name(zone)


def materialize(
    session: Session,
    now: datetime,
    horizon: timedelta,
    catch_up: timedelta,
    zone: tzinfo,
    *,
    batch_size: int = BATCH_SIZE,
) -> Summary:
    """Create the holds of every schedule firing due at ``now`` (CONTRACT.md section 8).

    Commits once per batch of schedules; on an error, rolls back the batch in progress and
    raises (the batches already committed are complete, and the next run does the rest).
    """
    oldest = _shift(now, -catch_up)
    until = _shift(now, horizon)
    name = zone_name(zone)
    dialect = session.get_bind().dialect.name
    writer = _writer_for(dialect, name)
    summary = Summary()
    try:
        while True:
            if not session.in_transaction():
                # SQLite: take the write lock up front, so that concurrent runs queue on it.
                session.connection(execution_options={"sqlite_begin_immediate": True})
            rows = session.connection().execute(_due(name, until, batch_size)).all()
            if not rows and dialect == "postgresql":
                # The rows skipped as locked belong to other runs, which may have an earlier now
                # and leave them still due here: wait for those rather than miss their fires.
                due = _due(name, until, batch_size, wait=True)
                rows = session.connection().execute(due).all()
            if not rows:
                session.commit()
                return summary
            batch = _Batch()
            for row in rows:
                try:
                    plan = _plan(cast(Mapping[str, Any], row._mapping), zone, oldest, until)
                except Exception as exc:
                    raise ScheduleError(row.id, exc) from exc
                batch.add(row, plan)
                summary.skipped += plan.skipped
                summary.skipped_exact &= plan.skipped_exact
                if len(batch.starts) >= HOLDS_PER_BATCH:
                    break  # keep transactions short; the rest stay due for the next batch
            if batch.starts:
                summary.created += writer.insert_holds(session, batch)
            writer.move_cursors(session, batch)
            session.commit()
            summary.schedules += len(batch.ids)
    except BaseException:
        session.rollback()
        raise


@dataclass
class _Batch:
    """What one transaction writes, column by column."""

    machine_ids: list[int] = field(default_factory=list)
    schedule_ids: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    starts: list[datetime] = field(default_factory=list)
    ends: list[datetime | None] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    last_fires: list[datetime | None] = field(default_factory=list)
    next_fires: list[datetime | None] = field(default_factory=list)

    def add(self, row: Any, plan: _Plan) -> None:
        count = len(plan.starts)
        self.machine_ids += [row.machine_id] * count
        self.schedule_ids += [row.id] * count
        self.reasons += [row.reason] * count
        self.starts += plan.starts
        self.ends += [_end(start, row.duration) for start in plan.starts]
        self.ids.append(row.id)
        self.last_fires.append(plan.last_fire or row.last_fire)
        self.next_fires.append(plan.next_fire)


class _Writer:
    """Writes a batch with portable statements: executemany, one row per parameter set."""

    def __init__(self, zone: str) -> None:
        self.insert: Any = (
            sqlite.insert(_HOLDS)
            .on_conflict_do_nothing(index_elements=["schedule_id", "start"])
            .returning(_HOLDS.c.id)
        )
        self.update = (
            update(_SCHEDULES)
            .where(_SCHEDULES.c.id == bindparam("b_id"))
            .values(
                last_fire=bindparam("b_last_fire"),
                next_fire=bindparam("b_next_fire"),
                next_fire_zone=zone,
            )
        )

    def insert_holds(self, session: Session, batch: _Batch) -> int:
        """Insert the batch's holds, except any that exist; how many were new."""
        rows = [
            {
                "machine_id": machine_id,
                "user_id": None,
                "schedule_id": schedule_id,
                "reason": reason,
                "notes": "",
                "start": start,
                "end": end,
            }
            for machine_id, schedule_id, reason, start, end in zip(
                batch.machine_ids,
                batch.schedule_ids,
                batch.reasons,
                batch.starts,
                batch.ends,
                strict=True,
            )
        ]
        return len(session.execute(self.insert, rows).all())

    def move_cursors(self, session: Session, batch: _Batch) -> None:
        """Store each schedule's new ``last_fire``, ``next_fire`` and zone."""
        params = [
            {"b_id": id_, "b_last_fire": last_fire, "b_next_fire": next_fire}
            for id_, last_fire, next_fire in zip(
                batch.ids, batch.last_fires, batch.next_fires, strict=True
            )
        ]
        session.execute(self.update, params)


class _PostgresWriter(_Writer):
    """Writes a batch with two statements whose rows come from ``unnest`` of array parameters.

    A multi-row VALUES list is a new, long SQL text for every batch size, which psycopg parses
    again each time; arrays keep the statement short and the same. Instants travel as one array
    literal string each: psycopg's text dumping of a list of datetimes costs ten times more.
    """

    def __init__(self, zone: str) -> None:
        source = (
            func.unnest(
                bindparam("machine_ids", type_=ARRAY(Integer)),
                bindparam("schedule_ids", type_=ARRAY(Integer)),
                bindparam("reasons", type_=ARRAY(String)),
                _instant_array("starts"),
                _instant_array("ends"),
            )
            .table_valued("machine_id", "schedule_id", "reason", "start", "end")
            .render_derived("u")
        )
        columns = ["machine_id", "schedule_id", "reason", "notes", "start", "end"]
        values = select(
            source.c.machine_id,
            source.c.schedule_id,
            source.c.reason,
            literal(""),
            source.c.start,
            source.c.end,
        )
        self.insert = (
            postgresql.insert(_HOLDS)
            .from_select(columns, values)
            .on_conflict_do_nothing(index_elements=["schedule_id", "start"])
            .execution_options(preserve_rowcount=True)
        )
        cursors = (
            func.unnest(
                bindparam("ids", type_=ARRAY(Integer)),
                _instant_array("last_fires"),
                _instant_array("next_fires"),
            )
            .table_valued("id", "last_fire", "next_fire")
            .render_derived("u")
        )
        self.update = (
            update(_SCHEDULES)
            .where(_SCHEDULES.c.id == cursors.c.id)
            .values(
                last_fire=cursors.c.last_fire, next_fire=cursors.c.next_fire, next_fire_zone=zone
            )
        )

    def insert_holds(self, session: Session, batch: _Batch) -> int:
        params = {
            "machine_ids": batch.machine_ids,
            "schedule_ids": batch.schedule_ids,
            "reasons": batch.reasons,
            "starts": _array_literal(batch.starts),
            "ends": _array_literal(batch.ends),
        }
        result = session.connection().execute(self.insert, params)
        return result.rowcount

    def move_cursors(self, session: Session, batch: _Batch) -> None:
        params = {
            "ids": batch.ids,
            "last_fires": _array_literal(batch.last_fires),
            "next_fires": _array_literal(batch.next_fires),
        }
        session.execute(self.update, params)


def _instant_array(name: str) -> Any:
    """A ``timestamptz[]`` parameter given as the text of an array literal."""
    return bindparam(name, type_=Text).cast(ARRAY(DateTime(timezone=True)))


def _array_literal(instants: Sequence[datetime | None]) -> str:
    """``{2027-01-04T08:00:00+00:00,NULL,...}``: no element needs quoting."""
    return "{" + ",".join("NULL" if i is None else i.isoformat() for i in instants) + "}"


def _writer_for(dialect: str, zone: str) -> _Writer:
    if dialect == "postgresql":
        return _PostgresWriter(zone)
    if dialect == "sqlite":
        return _Writer(zone)
    raise RuntimeError(f"the materializer supports PostgreSQL and SQLite, not {dialect}")


def _due(zone: str, until: datetime, limit: int, *, wait: bool = False) -> Select[Any]:
    """A batch of due schedules, locked; rows other runs hold locked are skipped.

    ``wait``: wait for rows other runs hold instead, and get them as those runs committed them
    if they are still due. Rows are locked in id order then, so that waiting runs cannot
    deadlock each other (the skipping ones never wait).
    """
    s = _SCHEDULES.c
    # A stored next_fire of another zone (or none computed yet) says nothing: recompute those.
    # `<` / `>` rather than `<>` so that both stay range scans of the same index.
    due = or_(
        and_(s.next_fire_zone == zone, s.next_fire <= until),
        s.next_fire_zone.is_(None),
        s.next_fire_zone < zone,
        s.next_fire_zone > zone,
    )
    columns = (
        s.id,
        s.machine_id,
        s.reason,
        s.duration,
        s.anchor,
        s.created,
        s.last_fire,
        s.frequency,
        s.time_of_day,
        s.interval,
        s.indices,
        s.months,
        s.weekdays,
    )
    query = select(*columns).where(due).limit(limit)
    if wait:
        return query.order_by(s.id).with_for_update()
    return query.with_for_update(skip_locked=True)


def _plan(row: Mapping[str, Any], zone: tzinfo, oldest: datetime, until: datetime) -> _Plan:
    """The fires one schedule takes in this run, and where its cursor goes."""
    pattern = pattern_of(row)
    anchor = row["anchor"]
    cursor: datetime = row["last_fire"] or row["created"]
    plan = _Plan()
    fires = recurrence.iter_fires(pattern, anchor, zone, cursor)
    fire = next(fires, None)
    last_skipped = None
    while fire is not None and fire < oldest:
        if plan.skipped == SKIP_COUNT_LIMIT:
            # Counting on would cost as much as the outage was long: jump to the window.
            plan.skipped_exact = False
            fires = recurrence.iter_fires(pattern, anchor, zone, oldest - _TICK)
            fire = next(fires, None)
            break
        plan.skipped += 1
        last_skipped = fire
        fire = next(fires, None)
    while fire is not None and fire <= until:
        plan.starts.append(fire)
        fire = next(fires, None)
    plan.next_fire = fire
    if plan.starts:
        plan.last_fire = plan.starts[-1]
    elif plan.skipped:
        plan.last_fire = (
            last_skipped
            if plan.skipped_exact
            else _last_fire_before(pattern, anchor, zone, cursor, oldest)
        )
    return plan


def _last_fire_before(
    pattern: recurrence.Pattern, anchor: datetime, zone: tzinfo, after: datetime, before: datetime
) -> datetime | None:
    """The last fire f with after < f < before, looking back over doubling spans."""
    span = timedelta(hours=1)
    while True:
        start = after if before - after <= span else before - span
        fires = recurrence.fires_between(pattern, anchor, zone, start, before - _TICK)
        if fires:
            return fires[-1]
        if start == after:
            return None
        span *= 2


def _end(start: datetime, duration: timedelta | None) -> datetime | None:
    """A hold's end: ``duration`` of elapsed time after its start.

    An end past the last representable instant (9999-12-31 23:59:59.999999 UTC) becomes null:
    "until someone ends it", which such a hold effectively is.
    """
    if duration is None:
        return None
    try:
        return start + duration
    except OverflowError:
        return None


def _shift(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, clamped to the datetime range."""
    try:
        return instant + delta
    except OverflowError:
        return _LAST if delta > timedelta(0) else _FIRST
