"""Wire formats of machines and of a machine's status (docs/API.md, Machine status)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validates, validates_schema

from pytm4srv.fields import QueryInstant
from pytm4srv.holds.schemas import HoldSchema
from pytm4srv.machines.models import NAME_LENGTH
from pytm4srv.schemas import StrictSchema, Text


class MachineSchema(StrictSchema):
    id = fields.Integer(dump_only=True, metadata={"example": 1})
    name = Text(
        required=True,
        min_length=1,
        max_length=NAME_LENGTH,
        metadata={"description": "Unique among machines; not blank.", "example": "Laser cutter 2"},
    )

    @validates("name")
    def not_blank(self, value: str, **kwargs: Any) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")


class MachineStatusQuerySchema(StrictSchema):
    """The instant a machine's status is asked for, or a span of time (docs/API.md, Machine
    status)."""

    at = QueryInstant(metadata={"description": "The instant asked about; default: now."})
    from_ = QueryInstant(
        data_key="from",
        metadata={"description": "With until, instead of at: the span [from, until) asked about."},
    )
    until = QueryInstant(metadata={"description": "The end of the span (exclusive); with from."})

    @validates_schema
    def one_question(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "at" in data and ("from_" in data or "until" in data):
            raise ValidationError("Give at, or from and until, not both.", "at")
        if ("from_" in data) != ("until" in data):
            missing = "until" if "from_" in data else "from"
            raise ValidationError("from and until come together.", missing)
        if "until" in data and data["until"] <= data["from_"]:
            raise ValidationError("Must be later than from.", "until")


class MachineStatusSchema(StrictSchema):
    """Whether a machine is held at an instant, by which holds, and its next hold."""

    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    held = fields.Boolean(
        dump_only=True, metadata={"description": "A hold of the machine is in effect at T."}
    )
    active_holds = fields.List(
        fields.Nested(HoldSchema),
        dump_only=True,
        metadata={"description": "The holds in effect at T, in the hold list's order."},
    )
    next_hold = fields.Nested(
        HoldSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "The first hold (in list order) that starts after T; or null."},
    )
