"""What the materializer and the re-planning of a changed schedule write: holds for a batch of
schedules and their moved cursors; the coming holds a change keeps, changes or deletes.

The holds go in with ON CONFLICT (schedule_id, fire) DO NOTHING ... RETURNING; the rows it
returns are the holds that were new. On PostgreSQL both statements of a batch read their rows
from ``unnest`` of typed array parameters, one array per column: one short statement each, where
multi-row VALUES would be statements of thousands of placeholders that psycopg parses before
each execution, and 500 UPDATEs run row by row would cost as much as inserting the batch's
holds. On SQLite (no round trips) the holds are one INSERT executed for many rows, which
SQLAlchemy sends as multi-row VALUES ("insertmanyvalues"), and the cursors move row by row.

What is written is decided elsewhere (``schedules.plan``, ``schedules.next_fire_zone``): these
are statements only.
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
    delete,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from pytm4srv.holds.models import DeletedFire, MachineHold, MachineHoldSchedule

_SCHEDULES = cast(Table, MachineHoldSchedule.__table__)
_HOLDS = cast(Table, MachineHold.__table__)
_DELETED_FIRES = cast(Table, DeletedFire.__table__)

#: A batch's new cursors: (schedule id, last fire, next fire, next fire's zone).
_Cursors = list[tuple[int, datetime | None, datetime | None, str | None]]

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
        self,
        schedule_id: int,
        last_fire: datetime | None,
        next_fire: datetime | None,
        next_fire_zone: str | None,
    ) -> None:
        self.cursors.append((schedule_id, last_fire, next_fire, next_fire_zone))

    @property
    def schedules(self) -> int:
        return len(self.cursors)


class Writer:
    """Writes batches, and the changes of re-planned holds, on one database."""

    def __init__(self, dialect: str) -> None:
        try:
            insert = _INSERTS[dialect]
        except KeyError:
            raise RuntimeError(
                f"the materializer supports PostgreSQL and SQLite, not {dialect}"
            ) from None
        self._insert_deleted_fires = insert(_DELETED_FIRES).on_conflict_do_nothing()
        if dialect == "postgresql":
            self._insert_holds = _insert_holds_by_arrays
            self._move_cursors = _move_cursors_by_arrays
            self._change_holds = _change_holds_by_arrays
            self._delete_holds = _delete_holds_by_array
        else:
            self._insert_holds = _inserter(insert)
            self._move_cursors = _move_cursors
            self._change_holds = _change_holds
            self._delete_holds = _delete_holds

    def write(self, session: Session, batch: Batch) -> int:
        """Insert the batch's holds, except any that exist, and move its cursors; how many holds
        were new."""
        created = self._insert_holds(session, batch.holds) if batch.holds else 0
        if batch.cursors:
            self._move_cursors(session, batch.cursors)
        return created

    def change_holds(self, session: Session, changes: list[HoldChange]) -> None:
        """Give existing holds a new machine, reason, end and ``modified``."""
        if changes:
            self._change_holds(session, changes)

    def delete_holds(self, session: Session, ids: list[int]) -> None:
        if ids:
            self._delete_holds(session, ids)

    def remember_deleted_fires(
        self, session: Session, schedule_id: int, fires: list[datetime]
    ) -> None:
        """Record fires of a schedule whose holds users deleted, except those recorded."""
        if fires:
            rows = [{"schedule_id": schedule_id, "fire": fire} for fire in fires]
            session.execute(self._insert_deleted_fires, rows)


@dataclass(frozen=True, slots=True)
class HoldChange:
    """The new values of a hold a changed schedule keeps."""

    id: int
    machine_id: int
    reason: str
    end: datetime | None
    modified: datetime


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


_UPDATE_CURSOR = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == bindparam("b_id"))
    .values(
        last_fire=bindparam("b_last_fire"),
        next_fire=bindparam("b_next_fire"),
        next_fire_zone=bindparam("b_zone"),
    )
)


def _move_cursors(session: Session, cursors: _Cursors) -> None:
    params = [
        {"b_id": id_, "b_last_fire": last, "b_next_fire": next_, "b_zone": zone}
        for id_, last, next_, zone in cursors
    ]
    session.execute(_UPDATE_CURSOR, params)


_INSTANTS = ARRAY(DateTime(timezone=True))
_CURSOR_ROWS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Integer)),
        bindparam("last_fires", type_=_INSTANTS),
        bindparam("next_fires", type_=_INSTANTS),
        bindparam("zones", type_=ARRAY(String)),
    )
    .table_valued("id", "last_fire", "next_fire", "zone")
    .render_derived("cursors")
)
_UPDATE_CURSORS_BY_ARRAYS = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == _CURSOR_ROWS.c.id)
    .values(
        last_fire=_CURSOR_ROWS.c.last_fire,
        next_fire=_CURSOR_ROWS.c.next_fire,
        next_fire_zone=_CURSOR_ROWS.c.zone,
    )
)


def _move_cursors_by_arrays(session: Session, cursors: _Cursors) -> None:
    ids, last_fires, next_fires, zones = (list(column) for column in zip(*cursors, strict=True))
    params = {"ids": ids, "last_fires": last_fires, "next_fires": next_fires, "zones": zones}
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


# The re-planning of a changed schedule: its kept holds take new values, its holds whose fires
# are gone go. On PostgreSQL each is one statement over arrays, as above.
_UPDATE_HOLD = (
    update(_HOLDS)
    .where(_HOLDS.c.id == bindparam("b_id"))
    .values(
        machine_id=bindparam("b_machine_id"),
        reason=bindparam("b_reason"),
        end=bindparam("b_end"),
        modified=bindparam("b_modified"),
    )
)


def _change_holds(session: Session, changes: list[HoldChange]) -> None:
    params = [
        {
            "b_id": change.id,
            "b_machine_id": change.machine_id,
            "b_reason": change.reason,
            "b_end": change.end,
            "b_modified": change.modified,
        }
        for change in changes
    ]
    session.execute(_UPDATE_HOLD, params)


_CHANGED_ROWS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(Integer)),
        bindparam("machine_ids", type_=ARRAY(Integer)),
        bindparam("reasons", type_=ARRAY(String)),
        bindparam("ends", type_=_INSTANTS),
        bindparam("modified", type_=_INSTANTS),
    )
    .table_valued("id", "machine_id", "reason", "end", "modified")
    .render_derived("changed")
)
_UPDATE_HOLDS_BY_ARRAYS = (
    update(_HOLDS)
    .where(_HOLDS.c.id == _CHANGED_ROWS.c.id)
    .values(
        machine_id=_CHANGED_ROWS.c.machine_id,
        reason=_CHANGED_ROWS.c.reason,
        end=_CHANGED_ROWS.c.end,
        modified=_CHANGED_ROWS.c.modified,
    )
)


def _change_holds_by_arrays(session: Session, changes: list[HoldChange]) -> None:
    params = {
        "ids": [change.id for change in changes],
        "machine_ids": [change.machine_id for change in changes],
        "reasons": [change.reason for change in changes],
        "ends": [change.end for change in changes],
        "modified": [change.modified for change in changes],
    }
    session.execute(_UPDATE_HOLDS_BY_ARRAYS, params)


_DELETE_HOLDS = delete(_HOLDS).where(_HOLDS.c.id.in_(bindparam("ids", expanding=True)))
_DELETE_HOLDS_BY_ARRAY = delete(_HOLDS).where(
    _HOLDS.c.id == func.any(bindparam("ids", type_=ARRAY(Integer)))
)


def _delete_holds(session: Session, ids: list[int]) -> None:
    for start in range(0, len(ids), 500):  # within SQLite's limit of parameters
        session.execute(_DELETE_HOLDS, {"ids": ids[start : start + 500]})


def _delete_holds_by_array(session: Session, ids: list[int]) -> None:
    session.execute(_DELETE_HOLDS_BY_ARRAY, {"ids": ids})
