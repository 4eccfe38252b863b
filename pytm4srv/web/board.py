"""The board: machines by the days of a week, with their holds and planned fires.

What the week holds comes from :func:`pytm4srv.planning.window.window_plan`, as the API's
``GET /api/machines/holds/window`` answers it; this module only lays it out by day.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

from flask import current_app, url_for
from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from pytm4srv.machines.models import Machine
from pytm4srv.planning.window import window_plan
from pytm4srv.web.times import local_midnight

#: An entry of a day: its start (UNIX seconds), 0 for a hold or 1 for a planned fire, its id
#: (the hold's or the schedule's) and its link, in the order the day lists them.
_Entry = tuple[float, int, int, str]


@dataclass
class Row:
    """A machine's row: its name, whether it is held now, and each day's links.

    A day's links are written here, once per hold or fire however many days it spans, rather
    than by the template in every cell: a week's board holds thousands, and writing each in the
    template took most of the page's time (docs/PERFORMANCE.md, Web pages). Each link holds
    the wall time ``HH:MM`` of its start and its reason, escaped.
    """

    id: int
    name: str
    held: bool
    entries: list[list[_Entry]] = field(default_factory=list)
    days: list[Markup] = field(default_factory=list)


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
    edges = [bound.timestamp() for bound in bounds]
    # One url_for each, not one per link.
    hold_link = url_for("web.hold", hold_id=0).removesuffix("0")
    schedule_link = url_for("web.schedule", schedule_id=0).removesuffix("0")
    for hold in plan.holds:
        row = rows.get(hold["machine_id"])
        if row is None:
            continue
        start, end, hold_id = hold["start"], hold["end"], hold["id"]
        local = start.astimezone(zone)
        anchor, reason = f'<a class="hold" href="{hold_link}{hold_id}">', escape(hold["reason"])
        at = f"{local.hour:02d}:{local.minute:02d}"
        _place(row, (start.timestamp(), 0, hold_id), end, edges, anchor, at, f"{reason}</a>")
    for fire in plan.planned:
        row = rows.get(fire.machine_id)
        if row is None:
            continue
        local = fire.start.astimezone(zone)
        anchor = f'<a class="planned" href="{schedule_link}{fire.schedule_id}">'
        anchor += '<span class="tag">planned</span> '
        at = f"{local.hour:02d}:{local.minute:02d}"
        key = (fire.start.timestamp(), 1, fire.schedule_id)
        _place(row, key, fire.end, edges, anchor, at, f"{escape(fire.reason)}</a>")
    for row in rows.values():
        row.days = [Markup("".join(entry[3] for entry in sorted(day))) for day in row.entries]
    return Board(monday, days, list(rows.values()))


def _place(
    row: Row,
    key: tuple[float, int, int],
    end: datetime | None,
    edges: list[float],
    anchor: str,
    at: str,
    rest: str,
) -> None:
    """Put a link in each day of ``row`` that its hold or fire is in effect on (``edges``: the
    days' bounds): ``anchor`` + its start ``at`` + ``rest`` on the day it starts, "…" in place of
    the start on the days it goes on."""
    start = key[0]
    first = max(bisect_right(edges, start) - 1, 0)
    last = 6 if end is None else min(bisect_left(edges, end.timestamp()) - 1, 6)
    starts_here = start >= edges[0]
    for day in range(first, last + 1):
        shown = at if day == first and starts_here else "…"
        row.entries[day].append((*key, f"{anchor}{shown} {rest}"))
