"""A machine's status: whether it is held at an instant, by which holds, and its next hold
(docs/API.md, Machine status); and which machines are held at an instant, until when (the hold
list's ``active_at`` query, grouped by machine: the machine list's ``held`` and ``until``, the
pages' "held" marks and down-now list)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, case, func, or_, select

from pytm4srv.holds.models import MachineHold
from pytm4srv.holds.queries import HELD_AT, NEXT_HOLD, filtered_holds
from pytm4srv.machines.models import Machine

MACHINE_BY_ID = select(Machine.id, Machine.name).where(Machine.id == bindparam("machine_id"))


def machine_status(
    connection: Connection, machine_id: int, at: datetime, until: datetime | None = None
) -> dict[str, Any] | None:
    """Whether machine ``machine_id`` is held at ``at`` (with ``until``: at some instant of
    [``at``, ``until``)), by which holds, and its next hold (the first that starts after
    ``at``; with ``until``, at or after it); None when there is no such machine."""
    machine = connection.execute(MACHINE_BY_ID, {"machine_id": machine_id}).mappings().first()
    if machine is None:
        return None
    if until is None:
        params = {"machine_id": machine_id, "active_at": at}
        held: list[RowMapping] = list(connection.execute(HELD_AT, params).mappings())
    else:
        # The hold list's own query for machine=M&active_from=A&active_until=B.
        window = {"machine": [machine_id], "active_from": at, "active_until": until}
        statement, params = filtered_holds(window, MAX_WINDOW_HOLDS)
        held = list(connection.execute(statement, params).mappings())
        # Instants are whole microseconds: "after until - 1 µs" is "at or after until".
        params = {"machine_id": machine_id, "active_at": until - _TICK}
    following = connection.execute(NEXT_HOLD, params).mappings().first()
    return {**machine, "held": bool(held), "active_holds": held, "next_hold": following}


#: Most holds a machine's status lists for a window (a machine has few at once).
MAX_WINDOW_HOLDS = 10_000
_TICK = timedelta(microseconds=1)


#: Every hold in effect at one instant: far more than a shop holds at once.
_ALL = 2**31 - 1


@dataclass
class Held:
    """A machine held at an instant: the holds in effect then (list order), and the latest of
    their ends (None when one of them is indefinite)."""

    holds: list[Any] = field(default_factory=list)
    until: datetime | None = None
    indefinite: bool = False


def held_at(
    connection: Connection, at: datetime, machines: list[int] | None = None
) -> dict[int, Held]:
    """The machines (of ``machines``, when given) held at ``at``, by id."""
    args: dict[str, Any] = {"active_at": at}
    if machines is not None:
        args["machine"] = machines
    stmt, params = filtered_holds(args, _ALL)
    found: dict[int, Held] = {}
    for hold in connection.execute(stmt, params).mappings():
        held = found.setdefault(hold["machine_id"], Held())
        held.holds.append(hold)
        if hold["end"] is None:
            held.indefinite = True
        elif held.until is None or hold["end"] > held.until:
            held.until = hold["end"]
    for held in found.values():
        if held.indefinite:
            held.until = None
    return found


_HOLDS = MachineHold.__table__.c
_AT: Any = bindparam("active_at", type_=MachineHold.start.type)
#: Per machine of ``machines`` held at ``active_at``: whether one of its holds in effect then is
#: indefinite, and the latest end among them. One index range per machine (``machine_id``,
#: ``end``, ``start``), however many machines and holds there are in all.
_HELD_UNTIL = (
    select(
        _HOLDS.machine_id,
        func.max(case((_HOLDS.end.is_(None), 1), else_=0)).label("indefinite"),
        func.max(_HOLDS.end).label("until"),
    )
    .where(
        _HOLDS.machine_id.in_(bindparam("machines", expanding=True)),
        _HOLDS.start <= bindparam("active_at", type_=MachineHold.start.type),
        or_(
            _HOLDS.end.is_(None), _HOLDS.end > bindparam("active_at", type_=MachineHold.start.type)
        ),
    )
    .group_by(_HOLDS.machine_id)
)


def held_until(
    connection: Connection, at: datetime, machines: list[int]
) -> dict[int, datetime | None]:
    """The machines of ``machines`` held at ``at``, by id: until when (the latest end of the
    holds in effect then; None when one of them is indefinite)."""
    if not machines:
        return {}
    rows = connection.execute(_HELD_UNTIL, {"machines": machines, "active_at": at})
    return {row.machine_id: None if row.indefinite else row.until for row in rows}
