"""Read queries of holds: the list's filters and a single hold, as prebuilt Core statements.

Reads that only show holds fetch plain rows through Core, not ORM objects: a page of 1000 holds
needs no identity map, and a single hold is read as fast as the driver allows. They are read as
mappings, which the schema dumps by key.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, false, or_, select

from pytm4srv.holds.models import MachineHold

HOLD_COLUMNS = tuple(MachineHold.__table__.columns)
HOLD_BY_ID = select(*HOLD_COLUMNS).where(MachineHold.id == bindparam("hold_id"))


def filtered_holds(args: dict[str, Any], page: int) -> tuple[Select[Any], dict[str, Any]]:
    """The hold list's query for the validated filters ``args`` (docs/API.md, Endpoints), in
    list order, ``page`` rows from ``args["offset"]``; and the values of its parameters.

    The statement depends only on which filters are given, not on their values: it is built once
    per combination and SQLAlchemy reuses its compiled form, where building it anew for every
    request cost more than running it.
    """
    users = args.get("user", [])
    user_ids = [user for user in users if user != 0]
    after, before = args.get("start_after"), args.get("end_before")
    # Nothing can match when the end must come before start_after (an end is after its start)
    # or must both exist and not: say so, or PostgreSQL scans the start index from start_after
    # to the end of the table to find out.
    never = before is not None and (args.get("end") == 0 or (after is not None and after >= before))
    stmt = _hold_list_statement(
        machine="machine" in args,
        user=bool(user_ids),
        no_user=0 in users,
        end=args.get("end"),
        start_after=after is not None,
        end_before=before is not None,
        never=never,
    )
    params = {"machine": args.get("machine"), "user": user_ids, "start_after": after}
    params |= {"end_before": before, "offset": args.get("offset", 0), "limit": page}
    return stmt, params


@functools.cache
def _hold_list_statement(
    *,
    machine: bool,
    user: bool,
    no_user: bool,
    end: int | None,
    start_after: bool,
    end_before: bool,
    never: bool,
) -> Select[Any]:
    stmt = select(*HOLD_COLUMNS)
    if machine:
        stmt = stmt.where(MachineHold.machine_id.in_(bindparam("machine", expanding=True)))
    if user or no_user:
        by_user = [MachineHold.user_id.in_(bindparam("user", expanding=True))] if user else []
        if no_user:
            by_user.append(MachineHold.user_id.is_(None))
        stmt = stmt.where(or_(*by_user))
    if end == 1:
        stmt = stmt.where(MachineHold.end.is_not(None))
    elif end == 0:
        stmt = stmt.where(MachineHold.end.is_(None))
    if start_after:
        stmt = stmt.where(MachineHold.start > bindparam("start_after"))
    if end_before:
        stmt = stmt.where(MachineHold.end.is_not(None), MachineHold.end <= bindparam("end_before"))
    if never:
        stmt = stmt.where(false())
    stmt = stmt.order_by(MachineHold.start, MachineHold.id)
    return stmt.offset(bindparam("offset")).limit(bindparam("limit"))


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
