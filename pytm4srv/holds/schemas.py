"""Wire formats of holds (CONTRACT section 5)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from pytm4srv.db import get_session
from pytm4srv.fields import INT32_MAX, Timestamp
from pytm4srv.holds.models import NOTES_LENGTH, REASON_LENGTH
from pytm4srv.machines.models import Machine
from pytm4srv.schemas import Id, StrictSchema, Text


class MachineRefMixin:
    @validates("machine_id")
    def machine_exists(self, value: int, **kwargs: Any) -> None:
        if get_session().get(Machine, value) is None:
            raise ValidationError(f"No machine with id {value}.")


def check_end_after_start(data: dict[str, Any]) -> None:
    """``end`` must be later than ``start`` when both are known."""
    start, end = data.get("start"), data.get("end")
    if start is not None and end is not None and end <= start:
        raise ValidationError({"end": ["Must be later than start."]})


class HoldSchema(MachineRefMixin, StrictSchema):
    """A machine hold."""

    id = fields.Integer(dump_only=True, metadata={"description": "Unique, numeric ID."})
    machine_id = Id(required=True, metadata={"description": "The machine this hold applies to."})
    user_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Who created it; null if made by a schedule or user deleted."},
    )
    schedule_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The schedule that created it; null if created manually."},
    )
    reason = Text(required=True, min_length=1, max_length=REASON_LENGTH)
    notes = Text(max_length=NOTES_LENGTH, metadata={"description": "Defaults to empty."})
    start = Timestamp(metadata={"description": "UNIX seconds; defaults to now on creation."})
    end = Timestamp(
        allow_none=True,
        metadata={"description": "UNIX seconds, later than start; null: until released."},
    )

    @validates_schema
    def end_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_end_after_start(data)


class HoldQuerySchema(StrictSchema):
    """Filters of the hold list (CONTRACT section 6)."""

    machine = fields.List(
        fields.Integer(validate=validate.Range(min=0, max=INT32_MAX)),
        metadata={"description": "Only holds of these machines (repeatable)."},
    )
    user = fields.List(
        fields.Integer(validate=validate.Range(min=0, max=INT32_MAX)),
        metadata={"description": "Only holds created by these users (repeatable); 0: by none."},
    )
    end = fields.Integer(
        validate=validate.OneOf([0, 1]),
        metadata={"description": "1: only holds with an end; 0: only holds without one."},
    )
    start_after = Timestamp(metadata={"description": "Only holds with start > this instant."})
    end_before = Timestamp(
        metadata={"description": "Only holds with an end, at or before this instant."}
    )
    limit = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "At most this many holds (capped by the server's page size)."},
    )
    offset = fields.Integer(
        validate=validate.Range(min=0, max=2**62), metadata={"description": "Skip this many."}
    )

    @validates("limit")
    def limit_within_page_size(self, value: int, **kwargs: Any) -> None:
        cap = current_app.config["MAX_PAGE_SIZE"]
        if value > cap:
            raise ValidationError(f"Must be at most {cap} (the server's page size).")
