"""What a feed shows, and the validators that tell a client whether it changed.

The window is [now - 30 days, now + 90 days), with now taken to the whole hour so that the feed
stays the same from one minute to the next. It shows every hold in effect at some instant of the
window, and every fire instant in the window of every schedule that the materializer has not
made into a hold yet (after the schedule's cursor, not skipped).

Revalidation must be cheap (a calendar client polls every few hours and usually finds nothing
new), so the ETag comes from a few aggregates of the rows the feed shows, not from the calendar:
any change to a shown hold or schedule changes ``modified`` (``holds.revisions``), a deleted or
added hold changes the count and the sum of ids, the materializer moves a cursor, a renamed
machine changes its name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import String, and_, bindparam, cast, func, or_, select
from sqlalchemy.orm import Session

from pytm4srv.feed.calendar import FeedEvent
from pytm4srv.fields import to_unix
from pytm4srv.holds.models import DeletionMark, MachineHold, MachineHoldSchedule
from pytm4srv.holds.schedules import hold_end, planned_fires, zone_name
from pytm4srv.machines.models import Machine

BEFORE = timedelta(days=30)
AFTER = timedelta(days=90)
_TICK = timedelta(microseconds=1)
#: The domain part of every UID (RFC 5545 section 3.8.4.7).
UID_DOMAIN = "pytm4srv"


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


def window_at(now: datetime) -> Window:
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return Window(hour - BEFORE, hour + AFTER)


def fire_uid(schedule_id: int, fire: datetime) -> str:
    """The UID of a schedule's fire, kept by the hold the materializer makes of it."""
    return f"fire-{schedule_id}-{to_unix(fire)}@{UID_DOMAIN}"


def hold_uid(hold_id: int) -> str:
    return f"hold-{hold_id}@{UID_DOMAIN}"


def _holds_in(window: Window, machines: Sequence[int]) -> Any:
    """The condition for holds in effect at some instant of ``window`` (of ``machines``)."""
    hold = MachineHold
    condition = and_(or_(hold.end.is_(None), hold.end > window.start), hold.start < window.end)
    return and_(condition, hold.machine_id.in_(machines)) if machines else condition


def _of_machines(stmt: Any, machine_id: Any, machines: Sequence[int]) -> Any:
    """``stmt`` limited to rows of ``machines``, when any are named."""
    return stmt.where(machine_id.in_(machines)) if machines else stmt


def feed_events(
    session: Session, machines: Sequence[int], window: Window, zone: tzinfo
) -> list[FeedEvent]:
    """The feed's events: holds first, in list order, then coming fires by start."""
    names = {id_: name for id_, name in session.execute(select(Machine.id, Machine.name))}
    schedules = list(
        session.scalars(
            _of_machines(select(MachineHoldSchedule), MachineHoldSchedule.machine_id, machines)
        )
    )
    # Every schedule's: a hold may have been moved to a machine its schedule does not hold.
    schedule_names = {
        id_: name
        for id_, name in session.execute(select(MachineHoldSchedule.id, MachineHoldSchedule.name))
    }
    hold = MachineHold
    rows = session.execute(
        select(
            hold.id,
            hold.machine_id,
            hold.schedule_id,
            hold.reason,
            hold.notes,
            hold.start,
            hold.end,
            hold.modified,
            hold.fire,
        )
        .where(_holds_in(window, machines))
        .order_by(hold.start, hold.id)
    ).all()
    events = []
    made = set()
    for row in rows:
        description = row.notes
        if row.schedule_id is not None and row.fire is not None:
            uid = fire_uid(row.schedule_id, row.fire)  # the UID its fire had, moved or not
            made.add(uid)
            # The description its fire had, then the notes.
            planned = _planned_by(schedule_names.get(row.schedule_id))
            description = f"{planned}\n\n{row.notes}" if row.notes else planned
        else:
            uid = hold_uid(row.id)
        events.append(
            FeedEvent(
                uid=uid,
                start=row.start,
                end=row.end,
                summary=f"{names.get(row.machine_id, row.machine_id)}: {row.reason}",
                description=description,
                confirmed=True,
                modified=row.modified,
            )
        )
    fires = []
    for schedule in schedules:
        try:
            instants = planned_fires(schedule, zone, window.start - _TICK, window.end - _TICK)
        except (TypeError, ValueError):
            continue  # a stored pattern the API would not accept: nothing to show of it
        machine = names.get(schedule.machine_id, schedule.machine_id)
        for fire in instants:
            uid = fire_uid(schedule.id, fire)
            if uid in made:
                continue
            fires.append(
                FeedEvent(
                    uid=uid,
                    start=fire,
                    end=hold_end(fire, schedule.duration),
                    summary=f"{machine}: {schedule.reason}",
                    description=_planned_by(schedule.name),
                    confirmed=False,
                    modified=schedule.modified,
                )
            )
    fires.sort(key=lambda event: (event.start, event.uid))
    return events + fires


def _planned_by(schedule_name: str | None) -> str:
    """The description of a schedule's fire, and of the hold made of it."""
    return f"Planned by the schedule {schedule_name!r}."


def validators(
    session: Session, machines: Sequence[int], window: Window, zone: tzinfo
) -> tuple[str, datetime]:
    """The feed's ETag and Last-Modified, without building it: one query of aggregates.

    ETag: the count, ids and newest change of the holds shown, and the id, change and cursor of
    every schedule and the name of every machine shown, with the window and the zone.
    Last-Modified: the newest change to any hold or schedule of the machines shown, or deletion.
    The statement is built once (per whether machines are named): a revalidation that finds
    nothing new costs little more than this one query.
    """
    params: dict[str, Any] = {"window_start": window.start, "window_end": window.end}
    if machines:
        params["machines"] = list(machines)
    row = session.execute(_VALIDATORS[bool(machines)], params).one()
    state = repr((window.start, sorted(machines), zone_name(zone), tuple(row[:5])))
    etag = hashlib.sha256(state.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    known = [instant for instant in row[5:] if instant is not None]
    return etag, max(known, default=window.start)


def _validators_statement(of_machines: bool) -> Any:
    """The aggregates of :func:`validators`, with the window (and the machines) as parameters."""
    hold, schedule = MachineHold, MachineHoldSchedule
    named: Any = bindparam("machines", expanding=True)

    def mine(stmt: Any, machine_id: Any) -> Any:
        return stmt.where(machine_id.in_(named)) if of_machines else stmt

    start: Any = bindparam("window_start", type_=MachineHold.start.type)
    end: Any = bindparam("window_end", type_=MachineHold.start.type)
    in_window = and_(or_(hold.end.is_(None), hold.end > start), hold.start < end)
    shown_holds = mine(select(hold.id, hold.modified).where(in_window), hold.machine_id).subquery()
    parts = {
        "holds": select(func.count()).select_from(shown_holds),
        "hold_ids": select(func.sum(shown_holds.c.id)),
        "hold_change": select(func.max(shown_holds.c.modified)),
        "schedules": _joined(
            mine(select(schedule.id, schedule.modified, schedule.last_fire), schedule.machine_id)
        ),
        "machines": _joined(mine(select(Machine.id, Machine.name), Machine.id)),
        "latest_hold": mine(select(func.max(hold.modified)), hold.machine_id),
        "latest_schedule": mine(select(func.max(schedule.modified)), schedule.machine_id),
        "latest_deletion": select(func.max(DeletionMark.at)),
    }
    return select(*(part.scalar_subquery().label(name) for name, part in parts.items()))


def _joined(rows: Any) -> Any:
    """The rows of ``rows`` (id first) as one string, in id order: "id:value:...,..."."""
    ordered = rows.order_by(rows.selected_columns[0]).subquery()
    texts = [func.coalesce(cast(column, String), "-") for column in ordered.c]
    joined: Any = texts[0]
    for text in texts[1:]:
        joined = joined + ":" + text
    return select(func.aggregate_strings(joined, ","))


#: The statements of :func:`validators`: of every machine, and of the machines named.
_VALIDATORS = {False: _validators_statement(False), True: _validators_statement(True)}
