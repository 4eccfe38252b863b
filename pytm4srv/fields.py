"""marshmallow fields for the wire formats (docs/API.md, Wire formats)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar

from marshmallow import ValidationError, fields, validate

#: Largest value of a PostgreSQL ``integer`` column (ids, interval, duration in minutes).
INT32_MAX = 2**31 - 1

#: Instants the service accepts: the years 1 to 9999 that Python and both databases can hold.
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 31, tzinfo=UTC)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_UNIX = int((MIN_INSTANT - EPOCH).total_seconds())
MAX_UNIX = int((MAX_INSTANT - EPOCH).total_seconds())
#: Something that reads as a number, and the form UNIX seconds take in a string: ASCII digits,
#: an optional minus sign, at most 6 decimals, and at most 10 digits before the point when
#: negative, 11 when not (1653-02-10 to 5138-11-16): a range inside the one instants have, so a
#: pattern (the OpenAPI document's) states it exactly. A JSON number takes the whole range.
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_SECONDS = re.compile(r"(-?[0-9]{1,10}|[0-9]{11})(\.[0-9]{1,6})?", re.ASCII)
_DECIMAL = re.compile(r"-?[0-9]+")
_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")


class StrictInteger(fields.Integer):
    """An integer that must be a JSON integer: not a float, a string or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class Bits(StrictInteger):
    """A set of named things as the bits of an integer: ``names[0]`` is 1, ``names[1]`` 2, ...
    Any other form (a list of names, a name) is invalid with a message that says how the bits
    count, ``example`` (two of the names) worked out."""

    def __init__(self, names: tuple[str, ...], example: tuple[str, str], **kwargs: Any) -> None:
        values = {name: 1 << i for i, name in enumerate(names)}
        scale = ", ".join(f"{name} = {value}" for name, value in list(values.items())[:3])
        last = names[-1]
        first, second = example
        total = values[first] + values[second]
        message = (
            f"Must be an integer whose bits are the {len(names)} choices: {scale}, ... {last} = "
            f"{values[last]}; so {first} and {second} = {total}."
        )
        super().__init__(
            validate=validate.Range(min=0, max=2 ** len(names) - 1),
            error_messages={"invalid": message},
            **kwargs,
        )


class QueryInteger(fields.Integer):
    """An integer in a query string: ASCII decimal digits with an optional minus sign.

    (``int()`` would also take spaces, underscores and non-ASCII digits, which the document does
    not allow.)
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or _DECIMAL.fullmatch(value) is None:
            raise self.make_error("invalid")
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class Timestamp(fields.Field[datetime]):
    """An instant: a UNIX timestamp in seconds (number) out; in, also ISO 8601 with an offset.

    Deserializes to an aware UTC datetime, rounded to the microsecond. Booleans, naive strings,
    non-finite numbers and instants outside the years 1–9999 are invalid.
    """

    default_error_messages = {
        "invalid": "Not a valid timestamp: give UNIX seconds or ISO 8601 with a UTC offset.",
        "naive": "ISO 8601 timestamp without a UTC offset; add one (e.g. 'Z' or '+02:00').",
        "range": "Timestamp out of range: it must fall within the years 1 to 9999.",
        "seconds": "UNIX seconds in a string are ASCII digits with an optional minus sign and "
        "at most 6 decimals, at most 10 digits before the point when negative, 11 when not; "
        "send a JSON number, or ISO 8601, for another instant.",
        # Apart from "range": the OpenAPI document states the range of numbers, not of ISO
        # strings, whose UTC offset may carry an instant written in the years 1 or 9999 out.
        "iso_range": "ISO 8601 instant out of range: in UTC it must fall within 0001-01-02 "
        "00:00:00 and 9999-12-31 00:00:00.",
    }
    #: How the OpenAPI document describes it (pytm4srv.api reads ``openapi`` of custom fields).
    openapi: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "type": "number",
                "minimum": MIN_UNIX,
                "maximum": MAX_UNIX,
                "description": "UNIX seconds",
            },
            {"type": "string", "format": "date-time", "description": "ISO 8601 with an offset"},
            {"type": "string", "pattern": rf"^{_SECONDS.pattern}$", "description": "UNIX seconds"},
        ],
    }

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return to_unix(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int | float):
            return from_unix(value, self)
        if isinstance(value, str):
            if _SECONDS.fullmatch(value):
                return from_unix(float(value), self)
            if _NUMBER.fullmatch(value):
                raise self.make_error("seconds")
            return _from_iso(value, self)
        raise self.make_error("invalid")


#: An ISO 8601 instant whose offset's "+" arrived as a space (a "+" in a query string means one).
_SPACE_FOR_PLUS = re.compile(r".*\d\d:\d\d(:\d\d(\.\d+)?)? \d\d(:?\d\d)?")


class QueryInstant(Timestamp):
    """An instant in a query string: as :class:`Timestamp`, or the word ``now`` (the instant
    the request is read). An offset whose ``+`` arrived as a space is named as such."""

    default_error_messages = {
        "plus": "The '+' of the UTC offset arrived as a space: in a query string a '+' means a "
        "space, so send it as %2B (e.g. 2027-03-01T00:00:00%2B01:00), or use 'Z'.",
    }
    openapi: ClassVar[dict[str, Any]] = {
        "oneOf": [
            # A query string holds strings only: ISO 8601 with an offset; UNIX seconds.
            *Timestamp.openapi["oneOf"][1:],
            {"type": "string", "enum": ["now"], "description": "the instant of the request"},
        ],
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if value == "now":
            return datetime.now(UTC)
        if isinstance(value, str) and _SPACE_FOR_PLUS.fullmatch(value):
            raise self.make_error("plus")
        return super()._deserialize(value, attr, data, **kwargs)


def to_unix(value: datetime) -> int | float:
    """UNIX seconds of an aware datetime: an int when whole, else a float."""
    delta = value - EPOCH
    if delta.microseconds == 0:
        return delta.days * 86400 + delta.seconds
    return delta.total_seconds()


def from_unix(seconds: float, field: fields.Field[datetime]) -> datetime:
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise field.make_error("invalid")
    # Compare before scaling: a huge float times 10**6 is infinite, and round() of that raises.
    if not MIN_UNIX <= seconds <= MAX_UNIX:
        raise field.make_error("range")
    micros = round(seconds * 1_000_000) if isinstance(seconds, float) else seconds * 1_000_000
    return EPOCH + timedelta(microseconds=int(micros))


def _from_iso(text: str, field: fields.Field[datetime]) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise field.make_error("invalid") from exc
    if value.tzinfo is None or value.utcoffset() is None:
        raise field.make_error("naive")
    try:
        value = value.astimezone(UTC)
    except OverflowError as exc:
        raise field.make_error("iso_range") from exc
    if not MIN_INSTANT <= value <= MAX_INSTANT:
        raise field.make_error("iso_range")
    return value


class InstantSet(fields.List[datetime]):
    """A set of instants: in, a list of them (any order, repeats allowed, at most
    ``max_length``); out, ascending and each once."""

    def __init__(self, *, max_length: int, **kwargs: Any) -> None:
        super().__init__(Timestamp(), validate=validate.Length(max=max_length), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        instants = super()._deserialize(value, attr, data, **kwargs)
        return sorted(set(instants))


class TimeOfDay(fields.Field[time]):
    """A local time of day: ``"HH:MM"`` or ``"HH:MM:SS"`` in, ``"HH:MM:SS"`` out."""

    default_error_messages = {"invalid": "Not a valid time of day: use 'HH:MM' or 'HH:MM:SS'."}
    openapi: ClassVar[dict[str, Any]] = {
        "type": "string",
        "pattern": rf"^{_TIME_OF_DAY.pattern}$",
    }

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.strftime("%H:%M:%S")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        # A strict pattern first: strptime alone also takes non-ASCII digits.
        if not isinstance(value, str) or _TIME_OF_DAY.fullmatch(value) is None:
            raise self.make_error("invalid")
        hour, minute, second = (int(part) for part in f"{value}:00".split(":")[:3])
        return time(hour, minute, second)


class Minutes(fields.Field[timedelta]):
    """A duration in whole minutes (integer ≥ 1) on the wire, a ``timedelta`` inside."""

    default_error_messages = {"invalid": "Not a whole number of minutes."}
    openapi: ClassVar[dict[str, Any]] = {"type": "integer", "minimum": 1, "maximum": INT32_MAX}

    def _serialize(self, value: timedelta | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else int(value.total_seconds()) // 60

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> timedelta:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if not 1 <= value <= INT32_MAX:
            raise ValidationError(f"Must be between 1 and {INT32_MAX} minutes.")
        return timedelta(minutes=value)
