"""Recording and reading history entries (docs/API.md, History).

The views record an entry in the session of the change itself, so the entry is committed with
the change or not at all. The values are those of the wire format: the caller passes the object
as its schema dumps it, before and after the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    RowMapping,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

from pytm4srv.db import UTCDateTime
from pytm4srv.history.models import CHANGED, CREATED, DELETED, HistoryEntry

_ENTRIES = cast(Table, HistoryEntry.__table__)
_INSERT = insert(_ENTRIES)
_COLUMNS = ["object_kind", "object_id", "at", "user_id", "action", "changes"]
_OF_OBJECT = (
    select(_ENTRIES.c.at, _ENTRIES.c.user_id, _ENTRIES.c.action, _ENTRIES.c.changes)
    .where(_ENTRIES.c.object_kind == bindparam("kind"), _ENTRIES.c.object_id == bindparam("id"))
    .order_by(_ENTRIES.c.id)
)


def _record(
    session: Session,
    kind: str,
    object_id: int,
    user_id: int | None,
    action: str,
    changes: dict[str, Any],
) -> None:
    row = {
        "object_kind": kind,
        "object_id": object_id,
        "at": datetime.now(UTC),
        "user_id": user_id,
        "action": action,
        "changes": changes,
    }
    session.execute(_INSERT, row)


def created(
    session: Session, kind: str, object_id: int, user_id: int | None, new: Mapping[str, Any]
) -> None:
    """Record the creation of an object: every field, from null to its value."""
    _record(session, kind, object_id, user_id, CREATED, {k: [None, v] for k, v in new.items()})


def changed(
    session: Session,
    kind: str,
    object_id: int,
    user_id: int | None,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> None:
    """Record a change: the fields whose value differs. A change of nothing is not recorded."""
    changes = {k: [old.get(k), v] for k, v in new.items() if old.get(k) != v}
    if changes:
        _record(session, kind, object_id, user_id, CHANGED, changes)


def changed_many(
    session: Session,
    kind: str,
    object_id: ColumnElement[int] | InstrumentedAttribute[int],
    where: ColumnElement[bool],
    user_id: int | None,
    changes: Mapping[str, Sequence[Any]],
) -> None:
    """Record the same change of every object whose id (``object_id``, a column) ``where``
    selects, in one statement."""
    entries = select(
        literal(kind),
        object_id,
        literal(datetime.now(UTC), UTCDateTime()),
        literal(user_id, Integer()),
        literal(CHANGED),
        literal(dict(changes), JSON()),
    ).where(where)
    session.execute(_INSERT.from_select(_COLUMNS, entries))


def deleted(session: Session, kind: str, object_id: int, user_id: int | None) -> None:
    """Record a deletion."""
    _record(session, kind, object_id, user_id, DELETED, {})


def deleted_many(
    session: Session, kind: str, object_ids: Sequence[int], user_id: int | None
) -> None:
    """Record the deletion of each of ``object_ids``, in one statement: on PostgreSQL an INSERT
    ... SELECT over ``unnest`` of the ids (one row per id; executed for many rows, psycopg would
    send a statement per id); elsewhere one INSERT executed for many rows."""
    if not object_ids:
        return
    constants = (
        literal(kind),
        literal(datetime.now(UTC), UTCDateTime()),
        literal(user_id, Integer()),
        literal(DELETED),
        literal({}, JSON()),
    )
    if session.get_bind().dialect.name == "postgresql":
        ids = (
            func.unnest(bindparam("ids", type_=ARRAY(Integer)))
            .table_valued("id")
            .render_derived("deleted")
        )
        kind_, at, user, action, changes = constants
        rows = select(kind_, ids.c.id, at, user, action, changes)
        session.execute(_INSERT.from_select(_COLUMNS, rows), {"ids": list(object_ids)})
        return
    names = [name for name in _COLUMNS if name != "object_id"]
    values = dict(zip(names, (c.value for c in constants), strict=True))
    session.execute(_INSERT, [values | {"object_id": object_id} for object_id in object_ids])


def entries_of(session: Session, kind: str, object_id: int) -> Sequence[RowMapping]:
    """The entries of one object, oldest first."""
    result = session.connection().execute(_OF_OBJECT, {"kind": kind, "id": object_id})
    return result.mappings().all()
