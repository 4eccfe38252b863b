"""What a window of time holds: the holds in effect in it, the fires planned in it, and which
machines are held at an instant. The board's page and ``GET /api/machines/holds/window`` both
read it from here.

Holds come from the hold list's query (``active_from``/``active_until``), planned fires from the
feed's (after each schedule's cursor, not skipped, not made into holds yet), the held machines
from the hold list's ``active_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.orm import Session

from pytm4srv.feed.queries import ComingFire, Window, coming_fires
from pytm4srv.holds.queries import filtered_holds
from pytm4srv.machines.queries import Held, held_at

#: Every hold of a window, unpaged.
_ALL = 2**31 - 1


@dataclass
class WindowPlan:
    holds: list[Any]  # rows of the hold list, in its order
    planned: list[ComingFire]  # by start
    held: dict[int, Held]  # machines held at the instant asked about, by id


def window_plan(
    session: Session,
    since: datetime,
    until: datetime,
    at: datetime,
    zone: tzinfo,
    machines: Sequence[int] | None = None,
) -> WindowPlan:
    """The holds in effect at some instant of [``since``, ``until``), the planned fires in it,
    and the machines held at ``at``; of ``machines`` when given. ``zone``: the service's."""
    connection = session.connection()
    args: dict[str, Any] = {"active_from": since, "active_until": until}
    if machines is not None:
        args["machine"] = list(machines)
    stmt, params = filtered_holds(args, _ALL)
    holds = list(connection.execute(stmt, params).mappings())
    made = {
        (hold["schedule_id"], hold["fire"])
        for hold in holds
        if hold["schedule_id"] is not None and hold["fire"] is not None
    }
    wanted = list(machines) if machines is not None else []
    if machines is not None and not wanted:
        return WindowPlan(holds, [], {})
    planned = coming_fires(session, wanted, Window(since, until), zone, made)
    planned.sort(key=lambda fire: (fire.start, fire.schedule_id))
    held = held_at(connection, at, None if machines is None else wanted)
    return WindowPlan(holds, planned, held)
