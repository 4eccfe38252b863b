"""Endpoints under ``/api/machines/holds/``: holds, hold schedules and the schedule preview."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import ValidationError
from sqlalchemy import RowMapping, select

from pytm4srv import db, idempotency
from pytm4srv.api import HOLD_ID, NEXT_PAGE, SCHEDULE_ID, Blueprint, next_page_link
from pytm4srv.auth import current_user, roles_required
from pytm4srv.db import reads, writes
from pytm4srv.fields import to_unix
from pytm4srv.history import entries as history
from pytm4srv.history.models import HOLD, SCHEDULE
from pytm4srv.holds import replan, revisions
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.holds.queries import HOLD_BY_ID, filtered_holds
from pytm4srv.holds.schedules import (
    UnreadableSchedule,
    answer,
    detailed_preview,
    preview,
    preview_request,
    refresh_next_fire,
    stored_problems,
    with_rule,
)
from pytm4srv.holds.schemas import (
    HOLD_EXAMPLE,
    HOLD_PATCH_EXAMPLE,
    PREVIEW_EXAMPLE,
    SCHEDULE_EXAMPLE,
    SCHEDULE_PATCH_EXAMPLE,
    HoldQuerySchema,
    HoldSchema,
    PreviewFireSchema,
    PreviewQuerySchema,
    PreviewSchema,
    ScheduleQuerySchema,
    ScheduleSchema,
    check_end_after_start,
    dump_preview_fires,
)
from pytm4srv.ical import RuleRefused
from pytm4srv.schemas import ErrorSchema
from pytm4srv.users.models import PLANNING_ROLES

blp = Blueprint("holds", __name__, url_prefix="/api/machines/holds", description="Machine holds.")


#: The wire form of an object, as its history records it (docs/API.md, History).
dump_hold = HoldSchema().dump
SCHEDULE_DUMP = ScheduleSchema().dump


#: Fields a schedule's answer derives from its others; a change records the fields it was sent
#: for, not these (``next_fire`` also moves with every materializer run, which records nothing).
DERIVED = ("next_fire", "summary", "rrule")


def dump_schedule(schedule: MachineHoldSchedule) -> dict[str, Any]:
    """A schedule's stored fields in the wire format, as its history compares them (the
    derived ones are not computed)."""
    dumped: dict[str, Any] = SCHEDULE_DUMP(
        answer(schedule, current_app.config["ZONE"], derived=False)
    )
    for name in DERIVED:
        dumped.pop(name)
    return dumped


def get_hold(hold_id: int, *, lock: bool = False) -> MachineHold:
    """The hold, or 404. ``lock``: lock its row until the transaction ends (PostgreSQL; SQLite's
    write transaction holds the whole database), so that concurrent changes of one hold take
    turns and each checks the row the one before it stored."""
    hold = db.session().get(MachineHold, hold_id, with_for_update=lock)
    return hold or abort(404, message="No such hold.")


def read_hold(hold_id: int) -> RowMapping:
    """A hold as a plain row, for answers that only show it."""
    result = db.session().connection().execute(HOLD_BY_ID, {"hold_id": hold_id})
    row = result.mappings().one_or_none()
    return row or abort(404, message="No such hold.")


@blp.route("/")
class Holds(MethodView):
    @reads
    @blp.arguments(HoldQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, HoldSchema(many=True), headers={"Link": NEXT_PAGE})
    def get(self, args: dict[str, Any]) -> Any:
        """List holds in order of start, filtered."""
        page = args.get("limit", current_app.config["MAX_PAGE_SIZE"])
        offset = args.get("offset", 0)
        stmt, params = filtered_holds(args, page + 1)
        holds = db.session().connection().execute(stmt, params).mappings().all()
        if len(holds) <= page or page == 0:  # limit=0: a "next" page would be this one again
            return holds[:page]
        return holds[:page], 200, {"Link": next_page_link(offset + page, page)}

    @writes
    @idempotency.idempotent
    @blp.arguments(HoldSchema(), example=HOLD_EXAMPLE)
    @blp.response(201, HoldSchema)
    def put(self, data: dict[str, Any]) -> Any:
        """Create a hold for the caller."""
        now = datetime.now(UTC)
        data.setdefault("start", now)
        _validate(check_end_after_start, data)
        user_id = current_user().id
        hold = MachineHold(user_id=user_id, modified=now, **data)
        session = db.session()
        session.add(hold)
        session.flush()
        history.created(session, HOLD, hold.id, user_id, dump_hold(hold))
        idempotency.commit(hold, HoldSchema())
        return hold


@blp.route(f"/{HOLD_ID}")
class HoldById(MethodView):
    @reads
    @blp.response(200, HoldSchema)
    def get(self, hold_id: int) -> Any:
        """Get one hold."""
        return read_hold(hold_id)

    @writes
    @blp.arguments(HoldSchema(partial=True), example=HOLD_PATCH_EXAMPLE)
    @blp.response(200, HoldSchema)
    def patch(self, data: dict[str, Any], hold_id: int) -> Any:
        """Change the fields sent of a hold."""
        hold = get_hold(hold_id, lock=True)
        _validate(check_end_after_start, {"start": hold.start, "end": hold.end} | data)
        old = dump_hold(hold)
        for name, value in data.items():
            setattr(hold, name, value)
        hold.by_hand = hold.schedule_id is not None  # a change of its schedule leaves it be
        hold.modified = revisions.touch(hold.modified, datetime.now(UTC))
        session = db.session()
        history.changed(session, HOLD, hold_id, current_user().id, old, dump_hold(hold))
        session.commit()
        return hold

    @writes
    @roles_required(*PLANNING_ROLES)
    @blp.response(204)
    def delete(self, hold_id: int) -> None:
        """Delete a hold (admins and planners)."""
        session = db.session()
        hold = get_hold(hold_id, lock=True)
        replan.remember_deleted(session, hold)  # its fire is never made again
        session.delete(hold)
        history.deleted(session, HOLD, hold_id, current_user().id)
        revisions.mark_deletion(session, "hold", hold, datetime.now(UTC))
        session.commit()


def get_schedule(schedule_id: int, *, lock: bool = False) -> MachineHoldSchedule:
    """The schedule, or 404; ``lock`` as for :func:`get_hold`."""
    schedule = db.session().get(MachineHoldSchedule, schedule_id, with_for_update=lock)
    return schedule or abort(404, message="No such hold schedule.")


def ok_doc(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI text of a 200 answer whose shape no marshmallow schema can dump."""
    content = {"application/json": {"schema": schema}}
    return {"responses": {"200": {"description": description, "content": content}}}


SCHEDULE_MAP = {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Schedule"}}
INSTANTS = {"type": "array", "items": {"type": "number", "description": "UNIX seconds"}}
# anyOf, not oneOf: an empty answer ([], no fire at all) is an array of either kind.
PREVIEW_ANSWER = {
    "anyOf": [
        INSTANTS | {"description": "Without detail: UNIX seconds."},
        {"type": "array", "items": PreviewFireSchema, "description": "With detail=1."},
    ]
}


def shown(schedule: MachineHoldSchedule) -> dict[str, Any]:
    """A schedule as answers show it, with its next fire and summary."""
    return answer(schedule, current_app.config["ZONE"])


@blp.route("/schedules/")
class Schedules(MethodView):
    @reads
    @blp.arguments(ScheduleQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200)
    @blp.doc(**ok_doc("The schedules, keyed by id (as a string), in id order.", SCHEDULE_MAP))
    def get(self, args: dict[str, Any]) -> Any:
        """Get every schedule (or those of the machines asked for), as an object keyed by id."""
        stmt = select(MachineHoldSchedule).order_by(MachineHoldSchedule.id)
        if "machine" in args:
            stmt = stmt.where(MachineHoldSchedule.machine_id.in_(args["machine"]))
        schedules = db.session().scalars(stmt)
        dump = ScheduleSchema().dump
        return {str(schedule.id): dump(shown(schedule)) for schedule in schedules}

    @writes
    @roles_required(*PLANNING_ROLES)
    @idempotency.idempotent
    @blp.arguments(ScheduleSchema(), example=SCHEDULE_EXAMPLE)
    @blp.response(201, ScheduleSchema)
    def put(self, data: dict[str, Any]) -> Any:
        """Create a schedule (admins and planners)."""
        now = datetime.now(UTC)
        data = _read_rule(data, None, now)
        data.setdefault("anchor", now)
        schedule = MachineHoldSchedule(created=now, modified=now, **data)
        refresh_next_fire(schedule, current_app.config["ZONE"])
        session = db.session()
        session.add(schedule)
        session.flush()  # its id, for the answer
        answer = shown(schedule)
        history.created(session, SCHEDULE, schedule.id, current_user().id, SCHEDULE_DUMP(answer))
        idempotency.commit(answer, ScheduleSchema())
        return answer


@blp.route(f"/schedules/{SCHEDULE_ID}")
class ScheduleById(MethodView):
    @reads
    @blp.response(200, ScheduleSchema)
    def get(self, schedule_id: int) -> Any:
        """Get one schedule."""
        return shown(get_schedule(schedule_id))

    @writes
    @roles_required(*PLANNING_ROLES)
    @blp.arguments(ScheduleSchema(partial=True), example=SCHEDULE_PATCH_EXAMPLE)
    @blp.response(200, ScheduleSchema)
    def patch(self, data: dict[str, Any], schedule_id: int) -> Any:
        """Change the fields sent of a schedule; its coming holds follow the change."""
        schedule = get_schedule(schedule_id, lock=True)
        data = _read_rule(data, schedule, datetime.now(UTC))
        old = dump_schedule(schedule)
        before = replan.before_change(schedule)
        for name, value in data.items():
            setattr(schedule, name, value)
        _refuse_unreadable(schedule, data)
        now, zone = datetime.now(UTC), current_app.config["ZONE"]
        schedule.modified = revisions.touch(schedule.modified, now)
        refresh_next_fire(schedule, zone)
        session = db.session()
        user_id = current_user().id
        if replan.reaches_holds(before, schedule):
            gone = replan.replan(session, schedule, before, now, zone)
            history.deleted_many(session, HOLD, gone, user_id)
        history.changed(session, SCHEDULE, schedule_id, user_id, old, dump_schedule(schedule))
        session.commit()
        return shown(schedule)

    @writes
    @roles_required(*PLANNING_ROLES)
    @blp.response(204)
    def delete(self, schedule_id: int) -> None:
        """Delete a schedule and its coming holds; the holds in effect and past stay."""
        session = db.session()
        schedule = get_schedule(schedule_id, lock=True)
        user_id = current_user().id
        now = datetime.now(UTC)
        gone = replan.delete_coming_holds(session, schedule_id, now)
        history.deleted_many(session, HOLD, gone, user_id)
        # Its holds lose their schedule_id (the foreign key sets it null): a change of each.
        made_by_it = MachineHold.schedule_id == schedule_id
        unlinked = {"schedule_id": [schedule_id, None]}
        history.changed_many(session, HOLD, MachineHold.id, made_by_it, user_id, unlinked)
        history.deleted(session, SCHEDULE, schedule_id, user_id)
        session.delete(schedule)
        revisions.mark_deletion(session, "schedule", schedule, now)
        session.commit()


@blp.route("/schedules/previewSchedule")
class PreviewSchedule(MethodView):
    @reads
    @blp.arguments(PreviewQuerySchema(), location="query", as_kwargs=False)
    @blp.arguments(PreviewSchema(partial=True), as_kwargs=False, example=PREVIEW_EXAMPLE)
    @blp.response(200)
    @blp.doc(**ok_doc("The next fire instants, ascending.", PREVIEW_ANSWER))
    @blp.alt_response(404, schema=ErrorSchema, description="No schedule with the body's id.")
    def post(self, query: dict[str, Any], body: dict[str, Any]) -> Any:
        """List the next fire instants of a schedule, as UNIX timestamps or (detail=1) objects."""
        stored = get_schedule(body["id"]) if "id" in body else None
        start, now = query.get("start"), datetime.now(UTC)
        body = _read_rule(body, stored, start or now)
        try:
            asked = preview_request(stored, body, start, now, with_ends=query["detail"])
        except UnreadableSchedule as exc:  # a stored value the body may replace
            message = f"The stored schedule cannot be read ({exc}); send the field in the body."
            abort(422, errors={"json": {"id": [message]}}, message="Invalid request body.")
        zone = current_app.config["ZONE"]
        fires = preview(asked.fields, asked.anchor, zone, asked.start, query["count"])
        if not query["detail"]:
            return [to_unix(f) for f in fires]
        details = detailed_preview(
            db.session(), asked.fields, asked.anchor, zone, fires, asked.duration, asked.machine_id
        )
        return dump_preview_fires(details)


def _read_rule(sent: dict[str, Any], stored: Any | None, now: datetime) -> dict[str, Any]:
    """The fields sent, an ``rrule`` among them replaced by those it sets; 422 naming ``rrule``
    when the schedule model cannot state it exactly."""
    try:
        return with_rule(sent, stored, current_app.config["ZONE"], now)
    except RuleRefused as exc:
        abort(422, errors={"json": {"rrule": [str(exc)]}}, message="Invalid request body.")
        raise  # abort raises


def _refuse_unreadable(schedule: MachineHoldSchedule, data: dict[str, Any]) -> None:
    """A PATCH must leave no stored field the API would refuse: 422 naming each one not sent
    (docs/API.md, Schedule fields)."""
    problems = stored_problems(schedule)
    errors = {
        name: [f"The stored value cannot be used ({problem}); send a new one."]
        for name, problem in problems.items()
        if name not in data
    }
    if errors:
        abort(422, errors={"json": errors}, message="Invalid request body.")


def _validate(rule: Any, data: dict[str, Any]) -> None:
    try:
        rule(data)
    except ValidationError as exc:
        abort(422, errors={"json": exc.messages}, message="Invalid request body.")
