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
  nothing unlocked is due, a run waits for the locked rows one at a time, which a concurrent
  run with an earlier now may leave still due; ``BEGIN IMMEDIATE`` on SQLite, which
  serializes writers), insert its holds with ``ON CONFLICT (schedule_id, fire) DO NOTHING``,
  move the cursors, commit. A schedule's holds and its cursor move together or not at all, so
  a run that fails leaves every schedule either done or untouched.
- A schedule the run cannot process is left untouched and named in the summary, and the run
  goes on without it: a row the API would not have stored (``schedules.pattern_of`` says why),
  one whose holds the database refuses (the batch is then written one schedule at a time), one
  locked by another transaction for longer than the session's lock timeout. It is excluded
  from the due query for the rest of the run, so a row that stays due cannot hold the run up.
- Which holds a schedule's fires make, and where its cursor goes, is the planner's
  (``schedules.plan``), the same one that re-plans a changed schedule's coming holds. The
  engine starts from the cursor arithmetically, so the cost does not grow with a schedule's
  age. After a long outage the skipped fires are counted one by one only up to
  ``schedules.SKIP_COUNT_LIMIT`` per schedule; past that the count is a lower bound.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, cast

from sqlalchemy import Row, Select, Table, and_, or_, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from pytm4srv.db import is_lock_timeout
from pytm4srv.holds.models import MachineHoldSchedule
from pytm4srv.holds.schedules import (
    PATTERN_FIELDS,
    Plan,
    UnreadableSchedule,
    cursor_of,
    next_fire_zone,
    plan,
    shift,
    zone_name,
)
from pytm4srv.holds.writers import Batch, Writer

#: Schedules locked per transaction...
BATCH_SIZE = 500
#: ...of which the transaction processes only as many as make this many holds (at least one).
HOLDS_PER_BATCH = 5000
_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
#: What the run reads of a due schedule: the pattern, and what its holds and cursor need.
_DUE_COLUMNS = tuple(
    _SCHEDULES.c[name]
    for name in ("id", "machine_id", "reason", "duration", "anchor", "created", "last_fire")
    + PATTERN_FIELDS
)


class LockTimeout(Exception):
    """The run waited longer than its lock timeout for a lock it needs for everything (on
    SQLite, the database's write lock), so it could go on with no schedule."""


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
    #: The schedules the run left untouched, by id: why, in one line (docs/MATERIALIZER.md,
    #: Bad rows and locks). Not counted in ``schedules``.
    failed: dict[int, str] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the command prints."""
        skipped = f"{self.skipped}{'' if self.skipped_exact else '+'}"
        return f"schedules={self.schedules} created={self.created} skipped={skipped}"


def materialize(
    session: Session,
    now: datetime,
    horizon: timedelta,
    catch_up: timedelta,
    zone: tzinfo,
    *,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    lock_timeout: float | None = None,
) -> Summary:
    """Create the holds of every schedule firing due at ``now``.

    ``session`` is a write session (``db.write_session()``): on SQLite each batch's transaction
    then takes the write lock up front, so concurrent runs queue on it. Commits once per batch.

    A schedule the run cannot process is left untouched, named in ``Summary.failed``, and not
    looked at again by this run; every other schedule is processed as usual. That is a row the
    API would not have stored (found when planning it), one whose holds the database refuses
    (its batch is then written again one schedule at a time, so that the others are written),
    and, with ``lock_timeout`` (the seconds the session's lock waits are bounded by,
    ``write_session(lock_timeout=...)``), one another transaction holds locked for longer.
    Any other error rolls back the batch in progress and raises (the batches already committed
    are complete, and the next run does the rest); LockTimeout when the lock that ran out was
    needed for every schedule (SQLite's write lock, or a lock of the whole schedules table).

    ``dry_run``: the same run in one transaction that is rolled back at the end, so that its
    summary is exactly what the run would do now, and nothing is written. It holds its locks
    (on SQLite, the write lock) until it ends.
    """
    oldest = shift(now, -catch_up)
    until = shift(now, horizon)
    name = zone_name(zone)
    dialect = session.get_bind().dialect.name
    writer = Writer(dialect)
    summary = Summary()
    failed = summary.failed
    locked = "locked by another transaction " + (
        "for too long" if lock_timeout is None else f"for more than {lock_timeout:g} s"
    )
    try:
        while True:
            rows = session.execute(_due(name, until, batch_size, failed)).all()
            if not rows and dialect == "postgresql":
                # The rows skipped as locked belong to other runs, which may have an earlier now
                # and leave them still due here: wait for those rather than miss their fires.
                waited, rows = _wait_for_locked(session, name, until, batch_size, failed, locked)
                if waited and not rows:
                    continue  # those were no longer due, or are named: look again
            if not rows:
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
                return summary
            parts: list[tuple[int, Batch]] = []
            plans: dict[int, Plan] = {}
            holds = 0
            for row in rows:
                schedule = cast(Mapping[str, Any], row._mapping)
                cursor = cursor_of(row.last_fire, row.created)
                try:
                    made = plan(schedule, zone, cursor, until, oldest)
                except Exception as exc:  # this row only: named, and the others go on
                    failed[row.id] = _reason(exc)
                    continue
                part = Batch()
                part.add_holds(row.machine_id, row.id, row.reason, made.holds)
                part.move_cursor(
                    row.id,
                    made.last_fire or row.last_fire,
                    made.next_fire,
                    next_fire_zone(row.timezone, zone),
                )
                parts.append((row.id, part))
                plans[row.id] = made
                holds += len(part.holds)
                if holds >= HOLDS_PER_BATCH:
                    break  # keep transactions short; the rest stay due for the next batch
            created, written = _write(session, writer, parts, failed, locked)
            if not dry_run:
                session.commit()
            summary.created += created
            summary.schedules += len(written)
            for schedule_id in written:
                summary.skipped += plans[schedule_id].skipped
                summary.skipped_exact &= plans[schedule_id].skipped_exact
    except BaseException as exc:
        session.rollback()
        if lock_timeout is not None and is_lock_timeout(exc):
            message = f"waited more than {lock_timeout:g} s for a lock another transaction holds"
            raise LockTimeout(f"{message} ({_driver_message(exc)})") from exc
        raise


def _wait_for_locked(
    session: Session,
    zone: str,
    until: datetime,
    limit: int,
    failed: dict[int, str],
    locked: str,
) -> tuple[bool, list[Row[Any]]]:
    """PostgreSQL, once no unlocked row is due: the due rows other transactions hold, locked
    as they committed them if they are still due; whether there were any.

    One row at a time, in id order (so that waiting runs cannot deadlock each other; the
    skipping ones never wait), each in a savepoint: a row whose wait runs past the session's
    lock timeout is named in ``failed`` (the reason ``locked``) and left.
    """
    s = _SCHEDULES.c
    ids = session.scalars(_due(zone, until, limit, failed, columns=(s.id,), lock=False)).all()
    rows = []
    for schedule_id in sorted(ids):
        try:
            with session.begin_nested():
                query = _due(zone, until, 1, failed, wait=True).where(s.id == schedule_id)
                row = session.execute(query).one_or_none()
        except OperationalError as exc:
            if not is_lock_timeout(exc):
                raise
            failed[schedule_id] = locked
            continue
        if row is not None:
            rows.append(row)
    return bool(ids), rows


def _write(
    session: Session,
    writer: Writer,
    parts: list[tuple[int, Batch]],
    failed: dict[int, str],
    locked: str,
) -> tuple[int, list[int]]:
    """Write the schedules' holds and cursors as one batch; how many holds were new, and the
    ids of the schedules written.

    If the database refuses the batch for its data (a constraint, a value out of range), it is
    written again one schedule at a time, and the schedules it refuses are named in ``failed``.
    If a lock wait runs out (the holds table locked by another transaction), every schedule of
    the batch is named, with ``locked``.
    """
    whole = Batch()
    for _, part in parts:
        whole.holds += part.holds
        whole.cursors += part.cursors
    try:
        with session.begin_nested():
            return writer.write(session, whole), [schedule_id for schedule_id, _ in parts]
    except (IntegrityError, DataError):
        pass  # one of them: find it below
    except OperationalError as exc:
        if not is_lock_timeout(exc):
            raise
        failed.update((schedule_id, locked) for schedule_id, _ in parts)
        return 0, []
    created, written = 0, []
    for schedule_id, part in parts:
        try:
            with session.begin_nested():
                created += writer.write(session, part)
        except (IntegrityError, DataError) as exc:
            failed[schedule_id] = f"its holds cannot be written: {_driver_message(exc)}"
        else:
            written.append(schedule_id)
    return created, written


def _reason(exc: Exception) -> str:
    """Why a schedule could not be planned, in one line."""
    text = str(exc) if isinstance(exc, UnreadableSchedule) else f"{type(exc).__name__}: {exc}"
    return _one_line(text)


def _driver_message(exc: BaseException) -> str:
    """The database's own message, without the statement and parameters SQLAlchemy adds."""
    return _one_line(str(getattr(exc, "orig", exc)).split("\n", 1)[0])


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _due(
    zone: str,
    until: datetime,
    limit: int,
    exclude: Collection[int] = (),
    *,
    columns: tuple[Any, ...] = _DUE_COLUMNS,
    lock: bool = True,
    wait: bool = False,
) -> Select[Any]:
    """A batch of due schedules, except those of ``exclude`` (ids); locked, the rows other runs
    hold locked skipped.

    ``wait``: wait for rows other runs hold instead, and get them as those runs committed them
    if they are still due. ``lock=False``: read them without locking anything.
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
    query = select(*columns).where(due).limit(limit)
    if exclude:
        query = query.where(s.id.not_in(sorted(exclude)))
    if not lock:
        return query
    if wait:
        return query.with_for_update()
    return query.with_for_update(skip_locked=True)
