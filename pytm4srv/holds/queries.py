"""Read queries of holds: the list's filters, a single hold and a machine's holds at an instant,
as prebuilt Core statements.

Reads that only show holds fetch plain rows through Core, not ORM objects: a page of 1000 holds
needs no identity map, and a single hold is read as fast as the driver allows. They are read as
mappings, which the schema dumps by key.

**What is held when** (docs/API.md, Hold list). A hold is in effect at T when ``start <= T`` and it
is open (``end`` NULL) or ends after T. Asked as one condition, ``end IS NULL OR end > T`` makes the
database walk the start index from the first hold ever made, past every hold that ended before T,
to fill a page. So the statements read the holds in parts that each cost what they answer, and
merge them in list order:

- the *open* holds that started in time: in list order from the partial indexes of open holds;
- the *ended* holds that span the instant (``active_at``, or the start of the
  ``active_from`` window): ``start <= T < end``, a few in any history, looked up (``InEffectAt``)
  and then sorted;
- with ``active_from``, the ended holds that start within the window: a range of the start
  index, in list order.

Each ordered part stops at the end of the page (offset + limit rows). The lookup is kept apart
from the ordering (a subquery with ``OFFSET 0``, which neither database merges into the outer
query): offered the order, the PostgreSQL planner misjudges how few ended holds span an instant
(it takes start and end for independent) and walks the start index from the beginning instead.

The plans and their times at 1 000 000 holds: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    BindParameter,
    Boolean,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    false,
    func,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from pytm4srv.holds.models import MachineHold

HOLD_COLUMNS = tuple(MachineHold.__table__.columns)
HOLD_BY_ID = select(*HOLD_COLUMNS).where(MachineHold.id == bindparam("hold_id"))

_HOLDS = MachineHold.__table__
_INSTANT = _HOLDS.c.start.type
ACTIVE_AT = bindparam("active_at", type_=_INSTANT)
ACTIVE_FROM = bindparam("active_from", type_=_INSTANT)
ACTIVE_UNTIL = bindparam("active_until", type_=_INSTANT)
END_BEFORE = bindparam("end_before", type_=_INSTANT)

#: A statement of the hold list: one SELECT, or the merge of its parts.
ListStatement = Select[Any] | CompoundSelect[Any]


class InEffectAt(ColumnElement[bool]):
    """A hold with an end is in effect at ``instant``: ``start <= instant < end``.

    Few holds span any one instant, but neither database can tell from its statistics, so each
    is told in its own way:

    - PostgreSQL: the condition is also stated as ``tstzrange(start, "end") @> instant``, which
      the GiST index of ended periods answers (migration 0006) without reading the holds that
      ended since: an instant long past is as quick as today. The comparisons stay beside it, so
      that the planner can take a machine's btree index (``machine_id, end``) when narrower.
    - SQLite has statistics of index prefixes only, and would read every hold that started before
      the instant through the start index (or a machine's whole history through ``machine_id,
      start``): ``end > instant`` is marked ``unlikely()``, its planner's hint that few rows pass
      it, and the start comparison is written ``+start``, SQLite's documented way to keep a term
      from choosing an index. So the indexes on ``end`` are taken: the holds that end after the
      instant, few for a recent one (all later holds for an old one).
    """

    __visit_name__ = "in_effect_at"
    type = Boolean()
    _is_implicitly_boolean = True  # a condition in itself (no "= 1" on SQLite)
    _traverse_internals = [("instant", InternalTraversal.dp_clauseelement)]

    def __init__(self, instant: ColumnElement[Any]) -> None:
        self.instant = instant


@compiles(InEffectAt)
def _in_effect_at(element: InEffectAt, compiler: SQLCompiler, **kw: Any) -> str:
    start, end, instant = _sql(compiler, kw, _HOLDS.c.start, _HOLDS.c.end, element.instant)
    return f"({end} > {instant} AND {start} <= {instant})"


@compiles(InEffectAt, "sqlite")
def _in_effect_at_sqlite(element: InEffectAt, compiler: SQLCompiler, **kw: Any) -> str:
    ends_after = func.unlikely(_HOLDS.c.end > element.instant)
    ends, start, instant = _sql(compiler, kw, ends_after, _HOLDS.c.start, element.instant)
    return f"({ends} AND +{start} <= {instant})"


@compiles(InEffectAt, "postgresql")
def _in_effect_at_postgresql(element: InEffectAt, compiler: SQLCompiler, **kw: Any) -> str:
    start, end, instant = _sql(compiler, kw, _HOLDS.c.start, _HOLDS.c.end, element.instant)
    return (
        f"({end} > {instant} AND {start} <= {instant} AND tstzrange({start}, {end}) @> {instant})"
    )


def _sql(compiler: SQLCompiler, kw: dict[str, Any], *elements: Any) -> list[str]:
    return [compiler.process(element, **kw) for element in elements]


def filtered_holds(args: dict[str, Any], page: int) -> tuple[ListStatement, dict[str, Any]]:
    """The hold list's query for the validated filters ``args`` (docs/API.md, Endpoints), in
    list order, ``page`` rows from ``args["offset"]``; and the values of its parameters.

    The statement depends only on which filters are given, not on their values: it is built once
    per combination and SQLAlchemy reuses its compiled form, where building it anew for every
    request cost more than running it.
    """
    users, schedules = args.get("user", []), args.get("schedule", [])
    user_ids = [user for user in users if user != 0]
    schedule_ids = [schedule for schedule in schedules if schedule != 0]
    after, before = args.get("start_after"), args.get("end_before")
    # Nothing can match when the end must come before start_after (an end is after its start)
    # or must both exist and not: say so, or PostgreSQL scans the start index from start_after
    # to the end of the table to find out.
    never = before is not None and (args.get("end") == 0 or (after is not None and after >= before))
    stmt = _hold_list_statement(
        machine="machine" in args,
        user=bool(user_ids),
        no_user=0 in users,
        schedule=bool(schedule_ids),
        no_schedule=0 in schedules,
        end=args.get("end"),
        start_after=after is not None,
        end_before=before is not None,
        active_at="active_at" in args,
        active_from="active_from" in args,
        active_until="active_until" in args,
        never=never,
    )
    offset = args.get("offset", 0)
    params = {"machine": args.get("machine"), "user": user_ids, "schedule": schedule_ids}
    params |= {"start_after": after, "end_before": before, "offset": offset, "limit": page}
    params |= {name: args.get(name) for name in ("active_at", "active_from", "active_until")}
    params["part_limit"] = offset + page
    return stmt, params


@functools.cache
def _hold_list_statement(
    *,
    machine: bool,
    user: bool,
    no_user: bool,
    schedule: bool,
    no_schedule: bool,
    end: int | None,
    start_after: bool,
    end_before: bool,
    active_at: bool,
    active_from: bool,
    active_until: bool,
    never: bool,
) -> ListStatement:
    where: list[ColumnElement[bool]] = []
    if machine:
        where.append(MachineHold.machine_id.in_(bindparam("machine", expanding=True)))
    if user or no_user:
        where.append(_one_of(MachineHold.user_id, "user", user, no_user))
    if schedule or no_schedule:
        where.append(_one_of(MachineHold.schedule_id, "schedule", schedule, no_schedule))
    if start_after:
        where.append(MachineHold.start > bindparam("start_after"))
    if end_before:
        where.extend([MachineHold.end.is_not(None), MachineHold.end <= END_BEFORE])
    if never:
        where.append(false())
    if not (active_at or active_from):  # no condition on end from the active filters
        if end == 1:
            where.append(MachineHold.end.is_not(None))
        elif end == 0:
            where.append(MachineHold.end.is_(None))
        if active_until:
            where.append(MachineHold.start < ACTIVE_UNTIL)
        return _page(select(*HOLD_COLUMNS).where(*where))

    opened, spanning, later = _active_parts(where, active_at, active_from, active_until, end_before)
    part_limit: BindParameter[int] = bindparam("part_limit")
    parts = []
    if end != 1 and not end_before:
        parts.append(_in_list_order(opened).limit(part_limit).subquery())
    if end != 0:
        parts.append(spanning.offset(0).subquery())  # looked up, then sorted
        if later is not None:
            parts.append(_in_list_order(later).limit(part_limit).subquery())
    if not parts:  # end=0 with end_before: `never` holds, nothing matches
        parts.append(opened.subquery())
    if len(parts) == 1:
        return _page(select(*parts[0].c))
    return _page(union_all(*(select(*part.c) for part in parts)))


def _one_of(column: Any, name: str, values: bool, null: bool) -> ColumnElement[bool]:
    """``column`` is one of the values of parameter ``name``, or (``null``) NULL."""
    alternatives = [column.in_(bindparam(name, expanding=True))] if values else []
    if null:
        alternatives.append(column.is_(None))
    return or_(*alternatives)


def _active_parts(
    where: list[ColumnElement[bool]],
    active_at: bool,
    active_from: bool,
    active_until: bool,
    end_before: bool,
) -> tuple[Select[Any], Select[Any], Select[Any] | None]:
    """The holds that pass ``where`` and the active filters, in three disjoint parts: the open
    ones, the ended ones that span the first instant asked about (``active_at``, else
    ``active_from``), and (with ``active_from`` only) the ended ones that start after it."""
    before = [MachineHold.start < ACTIVE_UNTIL] if active_until else []
    started = [MachineHold.start <= ACTIVE_AT] if active_at else []
    opened = select(*HOLD_COLUMNS).where(*where, *started, *before, MachineHold.end.is_(None))
    if active_at:
        # Every hold in effect at active_at started by then: all are open or span it.
        spanning_where = [*where, InEffectAt(ACTIVE_AT), *before]
        if active_from:
            spanning_where.append(MachineHold.end > ACTIVE_FROM)
        return opened, select(*HOLD_COLUMNS).where(*spanning_where), None
    # active_from < active_until: a hold spanning active_from starts before active_until.
    spanning = select(*HOLD_COLUMNS).where(*where, InEffectAt(ACTIVE_FROM))
    later_where = [*where, MachineHold.end.is_not(None), MachineHold.start > ACTIVE_FROM, *before]
    if end_before:  # an end is after its start: bounds the start index's range
        later_where.append(MachineHold.start < END_BEFORE)
    return opened, spanning, select(*HOLD_COLUMNS).where(*later_where)


def _in_list_order(stmt: Any) -> Any:
    return stmt.order_by(*(stmt.selected_columns[name] for name in ("start", "id")))


def _page(stmt: Any) -> ListStatement:
    page: ListStatement = _in_list_order(stmt).offset(bindparam("offset")).limit(bindparam("limit"))
    return page


# -- a machine's holds at an instant (its status: pytm4srv.machines.queries) -------------------

_MACHINE = [MachineHold.machine_id == bindparam("machine_id")]
#: A machine's holds in effect at ``active_at``, in list order (all of them: they are few).
HELD_AT = _in_list_order(union_all(*_active_parts(_MACHINE, True, False, False, False)[:2]))
#: A machine's first hold (in list order) that starts after ``active_at``.
NEXT_HOLD = _in_list_order(
    select(*HOLD_COLUMNS).where(*_MACHINE, MachineHold.start > ACTIVE_AT)
).limit(1)


_SPAN_COLUMNS: tuple[Any, ...] = (MachineHold.id, MachineHold.start, MachineHold.end)


@functools.cache
def holds_in_effect(*, bounded: bool) -> Select[Any]:
    """(id, start, end) of the holds of machine ``machine`` in effect at some instant of
    [``since``, ``until``) (``bounded``) or of [``since``, forever), ordered by start."""
    hold = MachineHold
    stmt = select(*_SPAN_COLUMNS).where(
        hold.machine_id == bindparam("machine"),
        or_(hold.end.is_(None), hold.end > bindparam("since")),
    )
    if bounded:
        stmt = stmt.where(hold.start < bindparam("until"))
    return stmt.order_by(hold.start, hold.id)
