"""The materializer's run: turns due schedule firings into holds (docs/MATERIALIZER.md, Rules).

Each schedule has a cursor (``last_fire``, or ``created`` before its first run). A run at ``now``
takes every fire instant f with cursor < f <= now + horizon, creates a hold for each f >= now -
catch-up, skips the older ones, and moves the cursor to the last f it took.

How it stays exactly-once and cheap (docs/MATERIALIZER.md has the operator's view):

- Every schedule stores ``next_fire``, its first fire after the cursor that is not skipped, and
  ``next_fire_zone``: NULL for a schedule with a zone of its own (the value depends on no
  setting), else the service zone it was computed in. The schedule views
  (``schedules.refresh_next_fire``) and the run keep it current, so the due schedules are one
  indexed query: ``next_fire <= until`` with ``next_fire_zone`` NULL or Z. A row computed in
  another service zone (``PYTM4SRV_TIMEZONE`` changed, or a row never computed) is due as well
  and gets recomputed: the stored value is only ever used to *find* schedules; the fires
  themselves are always computed afresh from the cursor, each schedule in its own zone.
- A fire in the schedule's ``skip`` is taken like any other, without a hold: the cursor moves
  past it.
- Schedules are processed in small batches, each one short transaction: lock the batch (``FOR
  UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent runs share the work instead of waiting; once
  nothing unlocked is due, a run waits for the locked rows, which a concurrent run with an
  earlier now may leave still due; ``BEGIN IMMEDIATE`` on SQLite, which serializes writers),
  insert its holds with ``ON CONFLICT (schedule_id, fire) DO NOTHING``, move the cursors,
  commit. A schedule's holds and its cursor move together or not at all, so a run that fails
  leaves every schedule either done or untouched.
- The engine starts from the cursor arithmetically, so the cost does not grow with a schedule's
  age. After a long outage the skipped fires are counted one by one only up to
  :data:`SKIP_COUNT_LIMIT` per schedule; past that the count is a lower bound and the iteration
  jumps straight to now - catch-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Select, Table, and_, or_, select
from sqlalchemy.orm import Session

from pytm4srv import recurrence
from pytm4srv.holds.models import MachineHoldSchedule
from pytm4srv.holds.schedules import PATTERN_FIELDS, cursor_of, pattern_of, zone_name
from pytm4srv.holds.writers import Batch, Writer

#: Schedules locked per transaction...
BATCH_SIZE = 500
#: ...of which the transaction processes only as many as make this many holds (at least one).
HOLDS_PER_BATCH = 5000
#: Skipped fires counted one by one per schedule; beyond, "skipped" is a lower bound.
SKIP_COUNT_LIMIT = 1000

_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_DAY = timedelta(days=1)

_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
#: What the run reads of a due schedule: the pattern, and what its holds and cursor need.
_DUE_COLUMNS = tuple(
    _SCHEDULES.c[name]
    for name in ("id", "machine_id", "reason", "duration", "anchor", "created", "last_fire")
    + PATTERN_FIELDS
)


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


def materialize(
    session: Session,
    now: datetime,
    horizon: timedelta,
    catch_up: timedelta,
    zone: tzinfo,
    *,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
) -> Summary:
    """Create the holds of every schedule firing due at ``now``.

    ``session`` is a write session (``db.write_session()``): on SQLite each batch's transaction
    then takes the write lock up front, so concurrent runs queue on it. Commits once per batch;
    on an error, rolls back the batch in progress and raises (the batches already committed are
    complete, and the next run does the rest).

    ``dry_run``: the same run in one transaction that is rolled back at the end, so that its
    summary is exactly what the run would do now, and nothing is written. It holds its locks
    (on SQLite, the write lock) until it ends.
    """
    oldest = _shift(now, -catch_up)
    until = _shift(now, horizon)
    name = zone_name(zone)
    dialect = session.get_bind().dialect.name
    writer = Writer(dialect, name)
    summary = Summary()
    try:
        while True:
            rows = session.execute(_due(name, until, batch_size)).all()
            if not rows and dialect == "postgresql":
                # The rows skipped as locked belong to other runs, which may have an earlier now
                # and leave them still due here: wait for those rather than miss their fires.
                rows = session.execute(_due(name, until, batch_size, wait=True)).all()
            if not rows:
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
                return summary
            batch = Batch()
            for row in rows:
                schedule = cast(Mapping[str, Any], row._mapping)
                try:
                    plan = _plan(schedule, zone, oldest, until)
                except Exception as exc:
                    raise ScheduleError(row.id, exc) from exc
                spans = [(start, _end(start, row.duration)) for start in plan.starts]
                batch.add_holds(row.machine_id, row.id, row.reason, spans)
                batch.move_cursor(row.id, plan.last_fire or row.last_fire, plan.next_fire)
                summary.skipped += plan.skipped
                summary.skipped_exact &= plan.skipped_exact
                if len(batch.holds) >= HOLDS_PER_BATCH:
                    break  # keep transactions short; the rest stay due for the next batch
            summary.created += writer.write(session, batch)
            if not dry_run:
                session.commit()
            summary.schedules += batch.schedules
    except BaseException:
        session.rollback()
        raise


def _due(zone: str, until: datetime, limit: int, *, wait: bool = False) -> Select[Any]:
    """A batch of due schedules, locked; rows other runs hold locked are skipped.

    ``wait``: wait for rows other runs hold instead, and get them as those runs committed them
    if they are still due. Rows are locked in id order then, so that waiting runs cannot
    deadlock each other (the skipping ones never wait).
    """
    s = _SCHEDULES.c
    # next_fire_zone NULL: the schedule's own zone, exact; Z: computed in this run's zone. A
    # stored next_fire of another zone (or the unknown zone '') says nothing: recompute those.
    # Four arms, each a range scan of the one index; `<` / `>` rather than `<>` for that.
    due = or_(
        and_(s.next_fire_zone.is_(None), s.next_fire <= until),
        and_(s.next_fire_zone == zone, s.next_fire <= until),
        s.next_fire_zone < zone,
        s.next_fire_zone > zone,
    )
    query = select(*_DUE_COLUMNS).where(due).limit(limit)
    if wait:
        return query.order_by(s.id).with_for_update()
    return query.with_for_update(skip_locked=True)


def _plan(row: Mapping[str, Any], zone: tzinfo, oldest: datetime, until: datetime) -> _Plan:
    """The fires one schedule takes in this run, and where its cursor goes.

    ``zone`` is the service zone, for a schedule without one of its own. A fire in the schedule's
    ``skip`` is taken like any other but gets no hold.
    """
    pattern = pattern_of(row)
    skip = frozenset(pattern.skip)
    if skip:
        pattern = dataclasses.replace(pattern, skip=())  # the cursor passes skipped fires too
    anchor = row["anchor"]
    cursor = cursor_of(row["last_fire"], row["created"])
    plan = _Plan()
    # Bounded by until: the engine then converts only the local times up to it.
    fires = recurrence.iter_fires(pattern, anchor, zone, cursor, until)
    fire = next(fires, None)
    last_skipped = None
    while fire is not None and fire < oldest:
        if plan.skipped == SKIP_COUNT_LIMIT:
            # Counting on would cost as much as the outage was long: jump to the window.
            plan.skipped_exact = False
            fires = recurrence.iter_fires(pattern, anchor, zone, oldest - _TICK, until)
            fire = next(fires, None)
            break
        plan.skipped += 1
        last_skipped = fire
        fire = next(fires, None)
    taken = None
    while fire is not None:  # every fire left is in the window
        if fire not in skip:
            plan.starts.append(fire)
        taken = fire
        fire = next(fires, None)
    # Every fire up to until is taken now, so the next one is the first after until.
    plan.next_fire = _next_fire_after(pattern, skip, anchor, zone, until)
    if taken is not None:
        plan.last_fire = taken
    elif plan.skipped:
        plan.last_fire = (
            last_skipped
            if plan.skipped_exact
            else _last_fire_before(pattern, anchor, zone, cursor, oldest)
        )
    return plan


def _next_fire_after(
    pattern: recurrence.Pattern,
    skip: frozenset[datetime],
    anchor: datetime,
    zone: tzinfo,
    after: datetime,
) -> datetime | None:
    """The first fire after ``after`` that is not in ``skip``. The day after is looked at
    first, where a daily or hourly schedule's next fire is: far cheaper than an open-ended
    look, which reads local times up to the end of the month (a daily schedule) or the day (an
    hourly one)."""
    soon = recurrence.fires_between(pattern, anchor, zone, after, _shift(after, _DAY))
    fire = next((f for f in soon if f not in skip), None)
    if fire is not None:
        return fire
    start = soon[-1] if soon else after
    for fire in recurrence.iter_fires(pattern, anchor, zone, start):
        if fire not in skip:
            return fire
    return None


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
