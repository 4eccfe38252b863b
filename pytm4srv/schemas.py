"""Schema pieces shared by every resource."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import marshmallow as ma
from marshmallow import ValidationError, fields, validate

from pytm4srv import recurrence
from pytm4srv.fields import INT32_MAX, StrictInteger
from pytm4srv.speedups import PlannedDumpSchema

#: Characters no text may hold: the C0 controls U+0000–U+001F and DEL (U+007F). A calendar
#: client may refuse a whole feed for one of them (RFC 5545 text allows none but its line ends).
CONTROL = re.compile("[\x00-\x1f\x7f]")
#: The same, but for tab, LF and CR: text of several lines (a reason, notes) may hold those.
CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_problem(text: str, *, lines: bool = False) -> str | None:
    """Why ``text`` cannot be stored as a name (or, ``lines``, as text of several lines); None
    when it can. The API's fields and the commands that take names ask this."""
    if (CONTROL_IN_LINES if lines else CONTROL).search(text):
        allowed = " other than tab, line feed and carriage return" if lines else ""
        return f"Must not contain control characters (U+0000 to U+001F, U+007F){allowed}."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode text (no lone surrogates)."
    return None


class Text(fields.String):
    """A one-line string the databases can store: no control character, no lone surrogate, at
    most ``max_length`` characters."""

    openapi: ClassVar[dict[str, Any]] = {"pattern": "^[^\\u0000-\\u001f\\u007f]*$"}
    lines = False

    def __init__(self, *, max_length: int, min_length: int = 0, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(min=min_length, max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        problem = control_problem(text, lines=self.lines)
        if problem is not None:
            raise ValidationError(problem)
        return text


class TextWithLines(Text):
    """Text of several lines: as :class:`Text`, but tab, LF and CR are allowed."""

    openapi: ClassVar[dict[str, Any]] = {
        "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
    }
    lines = True


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


#: The OpenAPI component of a zone name the server takes (``pytm4srv.api`` registers it).
ZONE_NAME = "ZoneName"


def zone_name_component() -> dict[str, Any]:
    """Every IANA zone name the server's zone database holds, or null (the server's zone)."""
    return {
        "type": "string",
        "nullable": True,
        "enum": [*recurrence.zone_names(), None],
        "description": "An IANA zone name the server's zone database holds; null: the "
        "server's zone.",
    }
