"""Which machines are held at an instant, and until when: the hold list's ``active_at`` query,
grouped by machine (the board's "held" marks, the down-now list, ``GET /api/machines/?at=T``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from pytm4srv.holds.queries import filtered_holds

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
