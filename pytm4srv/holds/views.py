"""Endpoints under ``/api/machines/holds/``: holds, hold schedules and the schedule preview."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from sqlalchemy import RowMapping, Select, bindparam, false, or_, select

from pytm4srv.api import Blueprint
from pytm4srv.auth import current_user, roles_required
from pytm4srv.db import get_session
from pytm4srv.fields import to_unix
from pytm4srv.holds.firing import cursor_of, pattern_fields, preview
from pytm4srv.holds.materialize import refresh_next_fire
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.holds.schemas import (
    HoldQuerySchema,
    HoldSchema,
    PreviewQuerySchema,
    PreviewSchema,
    ScheduleSchema,
    check_end_after_start,
    schedule_defaults,
)
from pytm4srv.schemas import ErrorSchema
from pytm4srv.users.models import PLANNING_ROLES

blp = Blueprint("holds", __name__, url_prefix="/api/machines/holds", description="Machine holds.")

HOLD_ID = "<int(max=2147483647):hold_id>"
SCHEDULE_ID = "<int(max=2147483647):schedule_id>"
NEXT_PAGE = {
    "description": 'RFC 8288 link to the next page (rel="next"), when the page is full.',
    "schema": {"type": "string"},
}


#: Reads that only show holds fetch plain rows through Core, not ORM objects: a page of 1000
#: holds needs no identity map, and a single hold is read as fast as the driver allows. They are
#: read as mappings, which the schema dumps by key.
HOLD_COLUMNS = tuple(MachineHold.__table__.columns)
HOLD_BY_ID = select(*HOLD_COLUMNS).where(MachineHold.id == bindparam("hold_id"))


def filtered_holds(args: dict[str, Any], page: int) -> tuple[Select[Any], dict[str, Any]]:
    """The hold list's query for the validated filters ``args`` (CONTRACT section 6), in list
    order, ``page`` rows from ``args["offset"]``; and the values of its parameters.

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


def get_hold(hold_id: int) -> MachineHold:
    return get_session().get(MachineHold, hold_id) or abort(404, message="No such hold.")


def read_hold(hold_id: int) -> RowMapping:
    """A hold as a plain row, for answers that only show it."""
    result = get_session().connection().execute(HOLD_BY_ID, {"hold_id": hold_id})
    row = result.mappings().one_or_none()
    return row or abort(404, message="No such hold.")


@blp.route("/")
class Holds(MethodView):
    @blp.arguments(HoldQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, HoldSchema(many=True), headers={"Link": NEXT_PAGE})
    def get(self, args: dict[str, Any]) -> Any:
        """List holds in order of start, with the seed's filters."""
        page = args.get("limit", current_app.config["MAX_PAGE_SIZE"])
        offset = args.get("offset", 0)
        stmt, params = filtered_holds(args, page + 1)
        holds = get_session().connection().execute(stmt, params).mappings().all()
        if len(holds) <= page or page == 0:  # limit=0: a "next" page would be this one again
            return holds[:page]
        return holds[:page], 200, {"Link": _next_page_link(offset + page, page)}

    @blp.arguments(HoldSchema())
    @blp.response(201, HoldSchema)
    def put(self, data: dict[str, Any]) -> Any:
        """Create a hold for the caller."""
        data.setdefault("start", datetime.now(UTC))
        _validate(check_end_after_start, data)
        hold = MachineHold(user_id=current_user().id, **data)
        session = get_session()
        session.add(hold)
        session.commit()
        return hold


@blp.route(f"/{HOLD_ID}")
class HoldById(MethodView):
    @blp.response(200, HoldSchema)
    def get(self, hold_id: int) -> Any:
        """Get one hold."""
        return read_hold(hold_id)

    @blp.arguments(HoldSchema(partial=True))
    @blp.response(200, HoldSchema)
    def patch(self, data: dict[str, Any], hold_id: int) -> Any:
        """Change the fields sent of a hold."""
        hold = get_hold(hold_id)
        _validate(check_end_after_start, {"start": hold.start, "end": hold.end} | data)
        for name, value in data.items():
            setattr(hold, name, value)
        get_session().commit()
        return hold

    @roles_required(*PLANNING_ROLES)
    @blp.response(204)
    def delete(self, hold_id: int) -> None:
        """Delete a hold (admins and planners)."""
        session = get_session()
        session.delete(get_hold(hold_id))
        session.commit()


def get_schedule(schedule_id: int) -> MachineHoldSchedule:
    schedule = get_session().get(MachineHoldSchedule, schedule_id)
    return schedule or abort(404, message="No such hold schedule.")


def ok_doc(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI text of a 200 answer whose shape no marshmallow schema can dump."""
    content = {"application/json": {"schema": schema}}
    return {"responses": {"200": {"description": description, "content": content}}}


SCHEDULE_MAP = {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Schedule"}}
INSTANTS = {"type": "array", "items": {"type": "number", "description": "UNIX seconds"}}


@blp.route("/schedules/")
class Schedules(MethodView):
    @blp.response(200)
    @blp.doc(**ok_doc("Every schedule, keyed by its id (as a string).", SCHEDULE_MAP))
    def get(self) -> Any:
        """Get every schedule, as an object keyed by id."""
        schedules = get_session().scalars(
            select(MachineHoldSchedule).order_by(MachineHoldSchedule.id)
        )
        dump = ScheduleSchema().dump
        return {str(schedule.id): dump(schedule) for schedule in schedules}

    @roles_required(*PLANNING_ROLES)
    @blp.arguments(ScheduleSchema())
    @blp.response(201, ScheduleSchema)
    def put(self, data: dict[str, Any]) -> Any:
        """Create a schedule (admins and planners)."""
        now = datetime.now(UTC)
        data.setdefault("anchor", now)
        schedule = MachineHoldSchedule(created=now, **data)
        refresh_next_fire(schedule, current_app.config["ZONE"])
        session = get_session()
        session.add(schedule)
        session.commit()
        return schedule


@blp.route(f"/schedules/{SCHEDULE_ID}")
class ScheduleById(MethodView):
    @blp.response(200, ScheduleSchema)
    def get(self, schedule_id: int) -> Any:
        """Get one schedule."""
        return get_schedule(schedule_id)

    @roles_required(*PLANNING_ROLES)
    @blp.arguments(ScheduleSchema(partial=True))
    @blp.response(200, ScheduleSchema)
    def patch(self, data: dict[str, Any], schedule_id: int) -> Any:
        """Change the fields sent of a schedule; a new pattern applies after its cursor."""
        schedule = get_schedule(schedule_id)
        for name, value in data.items():
            setattr(schedule, name, value)
        refresh_next_fire(schedule, current_app.config["ZONE"])
        get_session().commit()
        return schedule

    @roles_required(*PLANNING_ROLES)
    @blp.response(204)
    def delete(self, schedule_id: int) -> None:
        """Delete a schedule; the holds it created stay."""
        session = get_session()
        session.delete(get_schedule(schedule_id))
        session.commit()


@blp.route("/schedules/previewSchedule")
class PreviewSchedule(MethodView):
    @blp.arguments(PreviewQuerySchema(), location="query", as_kwargs=False)
    @blp.arguments(PreviewSchema(partial=True), as_kwargs=False)
    @blp.response(200)
    @blp.doc(**ok_doc("The next fire instants, ascending.", INSTANTS))
    @blp.alt_response(404, schema=ErrorSchema, description="No schedule with the body's id.")
    def post(self, query: dict[str, Any], body: dict[str, Any]) -> Any:
        """List the next fire instants of a schedule, as UNIX timestamps."""
        stored = get_schedule(body["id"]) if "id" in body else None
        fields = (pattern_fields(stored) if stored else schedule_defaults()) | body
        start = query.get("start") or (cursor_of(stored) if stored else datetime.now(UTC))
        anchor = body.get("anchor") or (stored.anchor if stored else start)
        zone = current_app.config["ZONE"]
        return [to_unix(f) for f in preview(fields, anchor, zone, start, query["count"])]


def _validate(rule: Any, data: dict[str, Any]) -> None:
    try:
        rule(data)
    except ValidationError as exc:
        abort(422, errors={"json": exc.messages}, message="Invalid request body.")


def _next_page_link(offset: int, limit: int) -> str:
    """RFC 8288 link to the next page, for a list cut short by the page size."""
    args = request.args.copy()
    args["offset"] = str(offset)
    args["limit"] = str(limit)
    return f'<{request.base_url}?{urlencode(list(args.items(multi=True)))}>; rel="next"'
