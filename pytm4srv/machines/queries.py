"""A machine's status: whether it is held at an instant, by which holds, and its next hold
(docs/API.md, Machine status)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, select

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
