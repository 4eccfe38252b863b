"""Schema pieces shared by every resource."""

from __future__ import annotations

from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import fields, validate

from pytm4srv.fields import INT32_MAX, StrictInteger
from pytm4srv.speedups import PlannedDumpSchema


class Text(fields.String):
    """A string the databases can store: no NUL character, no lone surrogate, at most ``max``."""

    default_error_messages = {
        "nul": "Must not contain the NUL character.",
        "encoding": "Must be valid Unicode text (no lone surrogates).",
    }
    openapi: ClassVar[dict[str, Any]] = {"pattern": "^[^\\u0000]*$"}

    def __init__(self, *, max_length: int, min_length: int = 0, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise self.make_error("encoding") from exc
        return text


def Id(**kwargs: Any) -> StrictInteger:
    """A database id in a JSON body: a positive 32-bit integer."""
    return StrictInteger(validate=validate.Range(min=1, max=INT32_MAX), **kwargs)


class StrictSchema(PlannedDumpSchema):
    """Base of every schema: unknown fields, read-only ones included, are errors.

    Dumps take marshmallow's own road or a shorter one that gives the same answer
    (``pytm4srv.speedups``).
    """

    class Meta:
        unknown = ma.RAISE
        ordered = True


class ErrorSchema(ma.Schema):
    """The envelope of every error answer (``pytm4srv.errors``)."""

    class Meta:
        ordered = True

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "The status's name."})
    message = fields.String(required=True, metadata={"description": "What went wrong."})
    errors = fields.Dict(
        required=True,
        metadata={
            "description": "Details: for invalid input, the messages of each offending field "
            'by location, e.g. {"json": {"end": ["Must be later than start."]}}; else {}.'
        },
    )
