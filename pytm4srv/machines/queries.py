"""A machine's status: whether it is held at an instant, by which holds, and its next hold
(docs/API.md, Machine status)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, bindparam, select

from pytm4srv.holds.queries import HELD_AT, NEXT_HOLD
from pytm4srv.machines.models import Machine

MACHINE_BY_ID = select(Machine.id, Machine.name).where(Machine.id == bindparam("machine_id"))


def machine_status(connection: Connection, machine_id: int, at: datetime) -> dict[str, Any] | None:
    """Whether machine ``machine_id`` is held at ``at``, by which holds, and its next hold;
    None when there is no such machine."""
    machine = connection.execute(MACHINE_BY_ID, {"machine_id": machine_id}).mappings().first()
    if machine is None:
        return None
    params = {"machine_id": machine_id, "active_at": at}
    held: list[RowMapping] = list(connection.execute(HELD_AT, params).mappings())
    following = connection.execute(NEXT_HOLD, params).mappings().first()
    return {**machine, "held": bool(held), "active_holds": held, "next_hold": following}
