"""The board: machines by the days of a week, with their holds and planned fires.

What the week holds comes from :func:`pytm4srv.holds.window.window_plan`, as the API's
``GET /api/machines/holds/window`` answers it; this module only lays it out by day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from pytm4srv.holds.window import window_plan
from pytm4srv.machines.models import Machine
from pytm4srv.web.times import local_midnight


@dataclass
class Entry:
    """A hold (``kind`` "hold", ``id`` the hold's) or a planned fire ("planned", the schedule's)."""

    kind: str
    id: int
    reason: str
    start: datetime
    end: datetime | None


@dataclass
class Row:
    id: int
    name: str
    held: bool
    days: list[list[Entry]] = field(default_factory=list)


@dataclass
class Board:
    monday: date
    days: list[date]
    rows: list[Row]


def week_board(session: Session, monday: date, zone: tzinfo, name_filter: str = "") -> Board:
    """The board of the week starting ``monday`` in ``zone``, rows narrowed to the machines whose
    name contains ``name_filter`` (any case)."""
    days = [monday + timedelta(days=i) for i in range(7)]
    bounds = [local_midnight(day, zone).astimezone(UTC) for day in [*days, days[-1] + timedelta(1)]]
    machines = session.execute(select(Machine.id, Machine.name).order_by(Machine.name, Machine.id))
    wanted = name_filter.strip().casefold()
    rows = {
        machine.id: Row(machine.id, machine.name, False, [[] for _ in days])
        for machine in machines
        if wanted in machine.name.casefold()
    }
    ids = list(rows) if wanted else None
    plan = window_plan(
        session, bounds[0], bounds[-1], datetime.now(UTC), current_app.config["ZONE"], ids
    )
    for machine_id in plan.held:
        if machine_id in rows:
            rows[machine_id].held = True
    for hold in plan.holds:
        entry = Entry("hold", hold["id"], hold["reason"], hold["start"], hold["end"])
        _place(rows.get(hold["machine_id"]), entry, bounds)
    for fire in plan.planned:
        entry = Entry("planned", fire.schedule_id, fire.reason, fire.start, fire.end)
        _place(rows.get(fire.machine_id), entry, bounds)
    for row in rows.values():
        for cell in row.days:
            cell.sort(key=lambda entry: (entry.start, entry.kind, entry.id))
    return Board(monday, days, list(rows.values()))


def _place(row: Row | None, entry: Entry, bounds: list[datetime]) -> None:
    """Put ``entry`` in each day of ``row`` it is in effect on."""
    if row is None:
        return
    first = max(bisect_right(bounds, entry.start) - 1, 0)
    last = 6 if entry.end is None else min(bisect_left(bounds, entry.end) - 1, 6)
    for day in range(first, last + 1):
        row.days[day].append(entry)
