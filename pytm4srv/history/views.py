"""``GET .../holds/<id>/history`` and ``GET .../holds/schedules/<id>/history``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields
from sqlalchemy import RowMapping, select

from pytm4srv import db
from pytm4srv.api import HOLD_ID, SCHEDULE_ID, Blueprint
from pytm4srv.db import reads
from pytm4srv.fields import Timestamp
from pytm4srv.history.entries import entries_of
from pytm4srv.history.models import ACTIONS, HOLD, SCHEDULE
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.schemas import StrictSchema

blp = Blueprint(
    "history",
    __name__,
    url_prefix="/api/machines/holds",
    description="What was changed in holds and schedules through the API, by whom and when.",
)

#: What ``changes`` maps each field to: ``[old, new]``.
CHANGE = {"type": "array", "minItems": 2, "maxItems": 2, "items": {}}


class HistoryEntrySchema(StrictSchema):
    """One change of a hold or a schedule."""

    at = Timestamp(dump_only=True, metadata={"description": "When, in UNIX seconds."})
    user_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Who; null if that user was deleted since."},
    )
    action = fields.String(dump_only=True, metadata={"enum": list(ACTIONS)})
    changes = fields.Dict(
        dump_only=True,
        metadata={
            "description": "Each field to [old, new], in the wire format: every field (old "
            "null) when created, the fields whose value changed when changed, {} when deleted.",
            "additionalProperties": CHANGE,
        },
    )


def history_of(kind: str, model: Any, object_id: int, missing: str) -> Sequence[RowMapping]:
    """The entries of an object, oldest first; 404 if it has none and does not exist."""
    session = db.session()
    entries = entries_of(session, kind, object_id)
    if not entries and session.scalar(select(model.id).where(model.id == object_id)) is None:
        abort(404, message=missing)
    return entries


@blp.route(f"/{HOLD_ID}/history")
class HoldHistory(MethodView):
    @reads
    @blp.response(200, HistoryEntrySchema(many=True))
    def get(self, hold_id: int) -> Any:
        """List the changes of a hold, oldest first; also after it was deleted."""
        return history_of(HOLD, MachineHold, hold_id, "No such hold.")


@blp.route(f"/schedules/{SCHEDULE_ID}/history")
class ScheduleHistory(MethodView):
    @reads
    @blp.response(200, HistoryEntrySchema(many=True))
    def get(self, schedule_id: int) -> Any:
        """List the changes of a schedule, oldest first; also after it was deleted."""
        return history_of(SCHEDULE, MachineHoldSchedule, schedule_id, "No such hold schedule.")
