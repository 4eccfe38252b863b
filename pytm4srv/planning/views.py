"""``GET /api/machines/holds/window``: a window's holds, its planned fires, and the machines held
at an instant; the data of the board page (docs/API.md, Window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from flask.views import MethodView
from marshmallow import ValidationError, fields, validate, validates_schema

from pytm4srv import db
from pytm4srv.api import Blueprint
from pytm4srv.db import reads
from pytm4srv.fields import QueryInstant, QueryInteger, Timestamp
from pytm4srv.holds.schemas import MAX_FILTER_VALUES, HoldSchema
from pytm4srv.planning.window import window_plan
from pytm4srv.schemas import StrictSchema

blp = Blueprint(
    "window",
    __name__,
    url_prefix="/api/machines/holds",
    description="A window of time: its holds and planned fires, and what is held now.",
)

#: The longest window one request may ask for: the calendar feed's (120 days).
LONGEST = timedelta(days=120)
#: The window without ``until``.
DEFAULT_LENGTH = timedelta(days=7)
INT32_MAX = 2**31 - 1


class WindowQuerySchema(StrictSchema):
    since = QueryInstant(
        data_key="from", metadata={"description": "The window's first instant; default: now."}
    )
    until = QueryInstant(
        metadata={
            "description": "The instant after the window (later than from, by 120 days at "
            "most); default: 7 days after from."
        },
    )
    at = QueryInstant(metadata={"description": "The instant `held` is about; default: now."})
    machine = fields.List(
        QueryInteger(validate=validate.Range(min=1, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only these machines (repeatable)."},
    )

    @validates_schema
    def window_fits(self, data: dict[str, Any], **kwargs: Any) -> None:
        since, until = data.get("since"), data.get("until")
        problem = window_problem(since or datetime.now(UTC), until) if until else None
        if problem:
            raise ValidationError({"until": [problem]})


def window_problem(since: datetime, until: datetime) -> str | None:
    """What is wrong with the window [since, until), if anything."""
    if until <= since:
        return "Must be later than from (default: now)."
    if until - since > LONGEST:
        return "Must be at most 120 days after from."
    return None


class PlannedFireSchema(StrictSchema):
    """A fire of a schedule that the materializer has not made into a hold yet."""

    schedule_id = fields.Integer(dump_only=True)
    machine_id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True, metadata={"description": "The schedule's name."})
    reason = fields.String(dump_only=True)
    start = Timestamp(dump_only=True, metadata={"description": "The fire instant."})
    end = Timestamp(
        dump_only=True, allow_none=True, metadata={"description": "start + duration, or null."}
    )


class HeldMachineSchema(StrictSchema):
    """A machine held at the instant asked about."""

    machine_id = fields.Integer(dump_only=True)
    until = Timestamp(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The latest end of its holds then; null if one is indefinite."},
    )


class WindowSchema(StrictSchema):
    holds = fields.List(
        fields.Nested(HoldSchema),
        dump_only=True,
        metadata={
            "description": "The holds in effect at some instant of the window, in list order."
        },
    )
    planned = fields.List(
        fields.Nested(PlannedFireSchema),
        dump_only=True,
        metadata={"description": "Fires in the window not made into holds yet, by start."},
    )
    held = fields.List(
        fields.Nested(HeldMachineSchema),
        dump_only=True,
        metadata={"description": "The machines held at `at`, by id."},
    )


@blp.route("/window")
class HoldWindow(MethodView):
    @reads
    @blp.arguments(WindowQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, WindowSchema())
    def get(self, args: dict[str, Any]) -> Any:
        """A window's holds and planned fires, and the machines held at an instant (default now)."""
        now = datetime.now(UTC)
        at = args.get("at") or now
        since = args.get("since") or now
        until = args.get("until") or since + DEFAULT_LENGTH
        zone = current_app.config["ZONE"]
        plan = window_plan(db.session(), since, until, at, zone, args.get("machine"))
        held = [
            {"machine_id": machine_id, "until": plan.held[machine_id].until}
            for machine_id in sorted(plan.held)
        ]
        return {"holds": plan.holds, "planned": plan.planned, "held": held}
