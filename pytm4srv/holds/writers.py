"""What a materializer run writes: holds for a batch of schedules, and their moved cursors.

One writer for both databases, through SQLAlchemy: the holds go in as one INSERT ... ON CONFLICT
DO NOTHING ... RETURNING executed for many rows, which SQLAlchemy sends as multi-row VALUES
statements ("insertmanyvalues"); the rows it returns are the holds that were new. The cursors move
with one UPDATE executed for many rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pytm4srv.holds.models import MachineHold, MachineHoldSchedule

_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
_HOLDS = cast(Table, MachineHold.__table__)

#: The INSERT constructs that know ON CONFLICT, by dialect name.
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass
class Batch:
    """What one transaction writes: the new holds, and each schedule's new cursor."""

    holds: list[dict[str, Any]] = field(default_factory=list)
    cursors: list[dict[str, Any]] = field(default_factory=list)

    def add_holds(
        self, machine_id: int, schedule_id: int, reason: str, spans: list[tuple[datetime, Any]]
    ) -> None:
        """Holds of one schedule, one for each ``(start, end)`` of ``spans``."""
        self.holds += [
            {
                "machine_id": machine_id,
                "user_id": None,
                "schedule_id": schedule_id,
                "reason": reason,
                "notes": "",
                "start": start,
                "end": end,
            }
            for start, end in spans
        ]

    def move_cursor(
        self, schedule_id: int, last_fire: datetime | None, next_fire: datetime | None
    ) -> None:
        self.cursors.append(
            {"b_id": schedule_id, "b_last_fire": last_fire, "b_next_fire": next_fire}
        )

    @property
    def schedules(self) -> int:
        return len(self.cursors)


class Writer:
    """Writes batches on one database, storing ``zone`` as the zone of each new next fire."""

    def __init__(self, dialect: str, zone: str) -> None:
        try:
            insert = _INSERTS[dialect]
        except KeyError:
            raise RuntimeError(
                f"the materializer supports PostgreSQL and SQLite, not {dialect}"
            ) from None
        self._insert = (
            insert(_HOLDS)
            .on_conflict_do_nothing(index_elements=["schedule_id", "start"])
            .returning(_HOLDS.c.id)
        )
        self._update = (
            update(_SCHEDULES)
            .where(_SCHEDULES.c.id == bindparam("b_id"))
            .values(
                last_fire=bindparam("b_last_fire"),
                next_fire=bindparam("b_next_fire"),
                next_fire_zone=zone,
            )
        )

    def write(self, session: Session, batch: Batch) -> int:
        """Insert the batch's holds, except any that exist, and move its cursors; how many holds
        were new."""
        created = len(session.execute(self._insert, batch.holds).all()) if batch.holds else 0
        if batch.cursors:
            session.execute(self._update, batch.cursors)
        return created
