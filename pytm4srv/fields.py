"""marshmallow fields for the wire formats of CONTRACT section 5."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from marshmallow import ValidationError, fields

#: Largest value of a PostgreSQL ``integer`` column (ids, interval, duration in minutes).
INT32_MAX = 2**31 - 1

#: Instants the service accepts: the years 1 to 9999 that Python and both databases can hold.
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 12, 31, tzinfo=UTC)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class StrictInteger(fields.Integer):
    """An integer that must be a JSON integer: not a float, a string or a boolean."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
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
            text = value.strip()
            try:
                return (
                    from_unix(float(text), self) if _looks_numeric(text) else _from_iso(text, self)
                )
            except ValueError as exc:
                raise self.make_error("invalid") from exc
        raise self.make_error("invalid")


def _looks_numeric(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def to_unix(value: datetime) -> int | float:
    """UNIX seconds of an aware datetime: an int when whole, else a float."""
    delta = value - EPOCH
    if delta.microseconds == 0:
        return delta.days * 86400 + delta.seconds
    return delta.total_seconds()


def from_unix(seconds: float, field: fields.Field[datetime]) -> datetime:
    if not math.isfinite(seconds):
        raise field.make_error("invalid")
    micros = round(seconds * 1_000_000) if isinstance(seconds, float) else seconds * 1_000_000
    if not (_unix_micros(MIN_INSTANT) <= micros <= _unix_micros(MAX_INSTANT)):
        raise field.make_error("range")
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
        raise field.make_error("range") from exc
    if not MIN_INSTANT <= value <= MAX_INSTANT:
        raise field.make_error("range")
    return value


def _unix_micros(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class TimeOfDay(fields.Field[time]):
    """A local time of day: ``"HH:MM"`` or ``"HH:MM:SS"`` in, ``"HH:MM:SS"`` out."""

    default_error_messages = {"invalid": "Not a valid time of day: use 'HH:MM' or 'HH:MM:SS'."}

    def _serialize(self, value: time | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.strftime("%H:%M:%S")

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        for fmt in ("%H:%M:%S", "%H:%M"):
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            if len(value) == len(fmt.replace("%H", "00").replace("%M", "00").replace("%S", "00")):
                return parsed.time()
        raise ValidationError(self.error_messages["invalid"])


class Minutes(fields.Field[timedelta]):
    """A duration in whole minutes (integer ≥ 1) on the wire, a ``timedelta`` inside."""

    default_error_messages = {"invalid": "Not a whole number of minutes."}

    def _serialize(self, value: timedelta | None, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else int(value.total_seconds()) // 60

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> timedelta:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if not 1 <= value <= INT32_MAX:
            raise ValidationError(f"Must be between 1 and {INT32_MAX} minutes.")
        return timedelta(minutes=value)
