"""What a materializer run writes: holds for a batch of schedules, and their moved cursors.

The holds go in with ON CONFLICT (schedule_id, fire) DO NOTHING ... RETURNING; the rows it
returns are the holds that were new. On PostgreSQL both statements of a batch read their rows
from ``unnest`` of typed array parameters, one array per column: one short statement each, where
multi-row VALUES would be statements of thousands of placeholders that psycopg parses before
each execution, and 500 UPDATEs run row by row would cost as much as inserting the batch's
holds. On SQLite (no round trips) the holds are one INSERT executed for many rows, which
SQLAlchemy sends as multi-row VALUES ("insertmanyvalues"), and the cursors move row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from pytm4srv.holds.models import MachineHold, MachineHoldSchedule

_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
_HOLDS = cast(Table, MachineHold.__table__)

#: A batch's new cursors: (schedule id, last fire, next fire).
_Cursors = list[tuple[int, datetime | None, datetime | None]]

#: The INSERT constructs that know ON CONFLICT, by dialect name.
_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass
class Batch:
    """What one transaction writes: the new holds, and each schedule's new cursor."""

    holds: list[dict[str, Any]] = field(default_factory=list)
    cursors: _Cursors = field(default_factory=list)

    def add_holds(
        self, machine_id: int, schedule_id: int, reason: str, spans: list[tuple[datetime, Any]]
    ) -> None:
        """Holds of one schedule, one for each ``(fire, end)`` of ``spans``: each starts at its
        fire."""
        self.holds += [
            {
                "machine_id": machine_id,
                "user_id": None,
                "schedule_id": schedule_id,
                "reason": reason,
                "notes": "",
                "start": fire,
                "end": end,
                "fire": fire,
            }
            for fire, end in spans
        ]

    def move_cursor(
        self, schedule_id: int, last_fire: datetime | None, next_fire: datetime | None
    ) -> None:
        self.cursors.append((schedule_id, last_fire, next_fire))

    @property
    def schedules(self) -> int:
        return len(self.cursors)


class Writer:
    """Writes batches on one database, storing ``zone`` as the zone of each new next fire of a
    schedule without a zone of its own (NULL for one with its own)."""

    def __init__(self, dialect: str, zone: str) -> None:
        try:
            insert = _INSERTS[dialect]
        except KeyError:
            raise RuntimeError(
                f"the materializer supports PostgreSQL and SQLite, not {dialect}"
            ) from None
        if dialect == "postgresql":
            self._insert_holds = _insert_holds_by_arrays
            self._move_cursors = _move_cursors_by_arrays
        else:
            self._insert_holds = _inserter(insert)
            self._move_cursors = _move_cursors
        self._zone = zone

    def write(self, session: Session, batch: Batch) -> int:
        """Insert the batch's holds, except any that exist, and move its cursors; how many holds
        were new."""
        created = self._insert_holds(session, batch.holds) if batch.holds else 0
        if batch.cursors:
            self._move_cursors(session, batch.cursors, self._zone)
        return created


def _inserter(insert: Any) -> Any:
    """The holds as one INSERT ... ON CONFLICT DO NOTHING RETURNING, run for many rows."""
    statement = (
        insert(_HOLDS)
        .on_conflict_do_nothing(index_elements=["schedule_id", "fire"])
        .returning(_HOLDS.c.id)
    )

    def insert_holds(session: Session, holds: list[dict[str, Any]]) -> int:
        return len(session.execute(statement, holds).all())

    return insert_holds


def _next_fire_zone(zone: str) -> Any:
    """``next_fire_zone`` of a moved cursor: the run's zone, unless the schedule has its own."""
    return case((_SCHEDULES.c.timezone.is_(None), bindparam(zone, type_=String)), else_=None)


_UPDATE_CURSOR = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == bindparam("b_id"))
    .values(
        last_fire=bindparam("b_last_fire"),
        next_fire=bindparam("b_next_fire"),
        next_fire_zone=_next_fire_zone("b_zone"),
    )
)


def _move_cursors(session: Session, cursors: _Cursors, zone: str) -> None:
    params = [
        {"b_id": id_, "b_last_fire": last, "b_next_fire": next_, "b_zone": zone}
        for id_, last, next_ in cursors
    ]
    session.execute(_UPDATE_CURSOR, params)


_INSTANTS = ARRAY(DateTime(timezone=True))
_CURSOR_ROWS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Integer)),
        bindparam("last_fires", type_=_INSTANTS),
        bindparam("next_fires", type_=_INSTANTS),
    )
    .table_valued("id", "last_fire", "next_fire")
    .render_derived("cursors")
)
_UPDATE_CURSORS_BY_ARRAYS = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == _CURSOR_ROWS.c.id)
    .values(
        last_fire=_CURSOR_ROWS.c.last_fire,
        next_fire=_CURSOR_ROWS.c.next_fire,
        next_fire_zone=_next_fire_zone("zone"),
    )
)


def _move_cursors_by_arrays(session: Session, cursors: _Cursors, zone: str) -> None:
    ids, last_fires, next_fires = (list(column) for column in zip(*cursors, strict=True))
    params = {"ids": ids, "last_fires": last_fires, "next_fires": next_fires, "zone": zone}
    session.execute(_UPDATE_CURSORS_BY_ARRAYS, params)


# PostgreSQL: the batch's holds as one INSERT ... SELECT FROM unnest of one array per column.
# As multi-row VALUES (insertmanyvalues), a batch of 5000 holds is a few statements of
# thousands of placeholders each, which psycopg parses client-side before each execution (a
# third of the run went to that); one short statement with seven array parameters is not.
_HOLD_ROWS = (
    func.unnest(
        bindparam("machine_ids", type_=ARRAY(Integer)),
        bindparam("schedule_ids", type_=ARRAY(Integer)),
        bindparam("reasons", type_=ARRAY(String)),
        bindparam("starts", type_=_INSTANTS),
        bindparam("ends", type_=_INSTANTS),
    )
    .table_valued("machine_id", "schedule_id", "reason", "start", "end")
    .render_derived("new_holds")
)
_INSERT_HOLDS_BY_ARRAYS = (
    postgresql.insert(_HOLDS)
    .from_select(
        ["machine_id", "user_id", "schedule_id", "reason", "notes", "start", "end", "fire"],
        select(
            _HOLD_ROWS.c.machine_id,
            null(),
            _HOLD_ROWS.c.schedule_id,
            _HOLD_ROWS.c.reason,
            literal(""),
            _HOLD_ROWS.c.start,
            _HOLD_ROWS.c.end,
            _HOLD_ROWS.c.start,  # a hold starts at its fire
        ),
    )
    .on_conflict_do_nothing(index_elements=["schedule_id", "fire"])
    .returning(_HOLDS.c.id)
)


def _insert_holds_by_arrays(session: Session, holds: list[dict[str, Any]]) -> int:
    params = {
        "machine_ids": [hold["machine_id"] for hold in holds],
        "schedule_ids": [hold["schedule_id"] for hold in holds],
        "reasons": [hold["reason"] for hold in holds],
        "starts": [hold["fire"] for hold in holds],
        "ends": [hold["end"] for hold in holds],
    }
    return len(session.execute(_INSERT_HOLDS_BY_ARRAYS, params).all())
