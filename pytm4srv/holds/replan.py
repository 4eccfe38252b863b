"""A change to a schedule reaches its coming holds (docs/API.md, Changing a schedule).

A schedule's *coming holds* at an instant N are the holds it made that start after N and that
no user has changed (``by_hand``). When a change touches what the schedule's fires are or what
they make, its coming holds are brought in line in the change's own transaction: afterwards the
schedule's holds that start after N are exactly those changed by hand, and one hold for each
fire f of the new pattern with N < f <= C (C its cursor, which the change leaves where it is)
that is not skipped and whose fire has no hold changed by hand nor one a user deleted. Which
holds the fires make is asked of the materializer's own planner (``schedules.plan``), and they
are written with its own statements (``writers``); the next run goes on from C as ever.

Fires whose holds users deleted are kept in ``deleted_fires`` (the hold views record them). A
fire of the old pattern up to the cursor that has no hold was deleted too (a run makes a hold
for every fire after N it takes, and only a user removes one): the re-planning records those as
well, which covers holds deleted before ``deleted_fires`` existed.

The caller holds the schedule's row locked (as a materializer run does while it writes its
holds), so a change and concurrent runs take turns; the coming holds are locked as they are
read, so a concurrent change of one by a user is seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pytm4srv.holds import revisions
from pytm4srv.holds.models import DeletedFire, MachineHold, MachineHoldSchedule
from pytm4srv.holds.schedules import (
    PATTERN_FIELDS,
    REPLAN_FIELDS,
    UnreadableSchedule,
    cursor_of,
    plan,
)
from pytm4srv.holds.writers import Batch, HoldChange, Writer

#: What the re-planning reads of a schedule as it was before a change.
_BEFORE_FIELDS = (*PATTERN_FIELDS, "anchor", "duration", "machine_id", "reason")


def before_change(schedule: MachineHoldSchedule) -> dict[str, Any]:
    """What :func:`replan` needs to know of a schedule as it is before a change."""
    return {name: getattr(schedule, name) for name in _BEFORE_FIELDS}


def reaches_holds(before: Mapping[str, Any], schedule: MachineHoldSchedule) -> bool:
    """Whether the change from ``before`` reaches the schedule's holds: a field of
    :data:`~pytm4srv.holds.schedules.REPLAN_FIELDS` has a new value."""
    return any(before[name] != getattr(schedule, name) for name in REPLAN_FIELDS)


def replan(
    session: Session,
    schedule: MachineHoldSchedule,
    before: Mapping[str, Any],
    now: datetime,
    zone: tzinfo,
) -> list[int]:
    """Bring the coming holds at ``now`` of ``schedule`` (changed, its row locked) in line with
    its fields; ``before``: :func:`before_change` of it. ``zone``: the service zone. The ids of
    the holds it deleted."""
    cursor = cursor_of(schedule.last_fire, schedule.created)
    if cursor <= now:
        return []  # every hold it made starts by now: none is coming
    # No fire before the schedule's creation has a hold; only a clock set back finds one here.
    wanted = dict(plan(schedule, zone, max(now, schedule.created), cursor).holds)
    hold = MachineHold
    held = session.execute(
        select(hold.id, hold.fire, hold.start, hold.by_hand, hold.machine_id)
        .add_columns(hold.reason, hold.end, hold.modified)
        .where(hold.schedule_id == schedule.id, hold.fire > now)
        .order_by(hold.fire)
        .with_for_update()
    ).all()
    by_fire = {row.fire: row for row in held}
    deleted = set(
        session.scalars(
            select(DeletedFire.fire).where(
                DeletedFire.schedule_id == schedule.id, DeletedFire.fire > now
            )
        )
    )
    old = _old_fires(before, schedule, zone, now, cursor, wanted)
    found = [fire for fire in old if fire not in by_fire and fire not in deleted]
    deleted.update(found)

    coming = [row for row in held if not row.by_hand and row.start > now]
    gone = [row for row in coming if row.fire not in wanted]
    changes = [
        HoldChange(
            row.id,
            schedule.machine_id,
            schedule.reason,
            wanted[row.fire],
            revisions.touch(row.modified, now),
        )
        for row in coming
        if row.fire in wanted
        and (row.machine_id, row.reason, row.end)
        != (schedule.machine_id, schedule.reason, wanted[row.fire])
    ]
    new = [
        (fire, end) for fire, end in wanted.items() if fire not in by_fire and fire not in deleted
    ]

    writer = Writer(session.get_bind().dialect.name)
    writer.remember_deleted_fires(session, schedule.id, found)
    writer.delete_holds(session, [row.id for row in gone])
    writer.change_holds(session, changes)
    batch = Batch()
    batch.add_holds(schedule.machine_id, schedule.id, schedule.reason, new)
    writer.write(session, batch)
    if gone:
        newest = max(row.modified for row in gone)
        revisions.mark_deletion(session, "hold", SimpleNamespace(modified=newest), now)
    return [row.id for row in gone]


def _old_fires(
    before: Mapping[str, Any],
    schedule: MachineHoldSchedule,
    zone: tzinfo,
    now: datetime,
    cursor: datetime,
    wanted: Mapping[datetime, Any],
) -> list[datetime]:
    """The fires f with now < f <= cursor that the schedule made holds for before the change:
    those of its old pattern, not skipped (none when the old row could not be read)."""
    if all(before[name] == getattr(schedule, name) for name in (*PATTERN_FIELDS, "anchor")):
        return list(wanted)  # the same pattern: the same fires
    try:
        after = max(now, schedule.created)
        return [fire for fire, _ in plan(before, zone, after, cursor).holds]
    except (UnreadableSchedule, TypeError, ValueError):
        return []  # a row changed outside the API, being repaired: nothing to learn from it


def delete_coming_holds(session: Session, schedule_id: int, now: datetime) -> list[int]:
    """Delete the holds of a schedule being deleted that start after ``now`` and that no user
    changed; its other holds stay. The ids of those deleted."""
    hold = MachineHold
    coming = (hold.schedule_id == schedule_id, hold.start > now, hold.by_hand.is_(False))
    rows = session.execute(select(hold.id, hold.modified).where(*coming).with_for_update()).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    Writer(session.get_bind().dialect.name).delete_holds(session, ids)
    newest = max(row.modified for row in rows)
    revisions.mark_deletion(session, "hold", SimpleNamespace(modified=newest), now)
    return ids


def remember_deleted(session: Session, hold: MachineHold) -> None:
    """Record the fire of a schedule's hold a user deletes: no change of the schedule makes it
    again."""
    if hold.schedule_id is not None and hold.fire is not None:
        writer = Writer(session.get_bind().dialect.name)
        writer.remember_deleted_fires(session, hold.schedule_id, [hold.fire])
