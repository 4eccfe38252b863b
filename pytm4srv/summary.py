"""A schedule's summary: one English sentence saying when it fires.

The sentence is written from the structured pattern fields, never from an RRULE, so every index
form reads right ("the last weekday (Mon–Fri)", not "weekdays"). The wording rules and a table
of examples are in docs/RECURRENCE.md, Summaries; the tests check every row of that table.

Pure: standard library only, no clock; the zone database only to show ``until`` as a wall time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo

from pytm4srv import recurrence

__all__ = ["describe"]

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_WORKWEEK = 0b0011111  # Monday to Friday
_WEEKEND = 0b1100000  # Saturday and Sunday

_PERIODS = {"Y": "year", "M": "month", "W": "week", "D": "day", "H": "hour"}
_ORDINAL_WORDS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
)


def describe(
    pattern: recurrence.Pattern,
    zone: str,
    duration: timedelta | None,
    zone_info: tzinfo | None = None,
) -> str:
    """One sentence saying when ``pattern`` fires, read in ``zone``, each fire lasting
    ``duration`` (None: until further notice).

    ``zone`` is the IANA name the schedule is read in and is quoted as given; ``zone_info``, that
    zone (default: the zone of that name), shows ``until`` as a wall time. ``duration`` must be
    positive and hold whole seconds (the API stores whole minutes).
    """
    if not zone:
        raise ValueError("zone must be a zone name")
    rule = _head(pattern) + _days(pattern) + _time(pattern) + f" ({zone}), " + _duration(duration)
    if pattern.until is not None:
        rule += ", until " + _wall_time(pattern.until, zone_info or _zone(zone))
    if recurrence.never_fires(pattern):
        return "Never fires: " + rule[0].lower() + rule[1:]
    return rule


# --------------------------------------------------------------------------
# Parts of the sentence
# --------------------------------------------------------------------------


def _head(p: recurrence.Pattern) -> str:
    period = _PERIODS[p.frequency]
    if p.interval == 1:
        return f"Every {period}"
    if p.interval == 2:
        return f"Every other {period}"
    return f"Every {p.interval} {period}s"


def _days(p: recurrence.Pattern) -> str:
    """Which days of each eligible period fire, and in which months (leading space, or "")."""
    f = p.frequency
    months = _months_in(p.months)
    if f in ("D", "H"):
        text = "" if p.weekdays == recurrence.ALL_WEEKDAYS else " on " + _every_day(p.weekdays, f)
        if f == "D" and p.indices and 1 not in p.indices and -1 not in p.indices:
            # A date has one candidate: only position 1 (or -1) selects it.
            text += f" taking the {_positions(p.indices)} occurrence of each day"
        return text + months
    if not p.weekdays:
        return " on no day" + months
    if not p.indices:
        return " on " + _every_day(p.weekdays, f) + months
    noun = f"the {_positions(p.indices)} {_one_day(p.weekdays)}"
    if f == "Y":
        # Positions count over the whole year's candidates, whatever months are chosen.
        if p.months == recurrence.ALL_MONTHS or not p.months:
            return f" on {noun} of the year" + months
        chosen = _month_list(p.months)
        if len(chosen) == 1:
            return f" on {noun} of {chosen[0]}"
        return f" on {noun} of {_join(chosen, 'and')} together"
    if f == "W" and p.months != recurrence.ALL_MONTHS:
        # Positions count over the week's days that lie in the chosen months.
        return f" on {noun} of the week" + months
    return f" on {noun}" + months


def _every_day(weekdays: int, frequency: str) -> str:
    """Every candidate day of a period: "every day", "weekdays (Mon–Fri)", "Mondays", ..."""
    if weekdays == recurrence.ALL_WEEKDAYS:
        return "every day"
    if weekdays == _WORKWEEK:
        return "weekdays (Mon–Fri)"
    if weekdays == _WEEKEND:
        return "weekends"
    if not weekdays:
        return "no day"
    names = _weekday_list(weekdays)
    if frequency != "W":  # a week holds one of each; longer periods hold several
        names = [n + "s" for n in names]
    return _join(names, "and")


def _one_day(weekdays: int) -> str:
    """The candidate counted by an index, singular: "day", "weekday (Mon–Fri)", "Monday", ..."""
    if weekdays == recurrence.ALL_WEEKDAYS:
        return "day"
    if weekdays == _WORKWEEK:
        return "weekday (Mon–Fri)"
    if weekdays == _WEEKEND:
        return "weekend day"
    return _join(_weekday_list(weekdays), "or")


def _months_in(months: int) -> str:
    if months == recurrence.ALL_MONTHS:
        return ""
    if not months:
        return " in no month"
    return " in " + _join(_month_list(months), "and")


def _time(p: recurrence.Pattern) -> str:
    if p.frequency != "H":
        return " at " + _join([_clock(t) for t in p.times_of_day], "and")
    # Hourly: the hours of the times are not used, only their minutes and seconds.
    past = sorted({t.replace(hour=0) for t in p.times_of_day})
    on_the_hour = past[0] == time(0)
    parts = [_past_the_hour(t) for t in past[on_the_hour:]]
    if not parts:
        return " on the hour"
    words = " at " + _join(parts, "and") + " past the hour"
    return " on the hour and" + words if on_the_hour else words


def _past_the_hour(t: time) -> str:
    parts = [_count(t.minute, "minute")] if t.minute else []
    if t.second:
        parts.append(_count(t.second, "second"))
    return " ".join(parts)


def _zone(name: str) -> tzinfo:
    """The zone of that name; UTC for a name this host does not know (a stored row's)."""
    try:
        return recurrence.zone_named(name)
    except ValueError:
        return UTC


def _wall_time(instant: datetime, zone: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM`` in ``zone`` (in UTC past the end of the calendar there)."""
    try:
        local = instant.astimezone(zone)
    except OverflowError:
        local = instant
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"


def _clock(t: time) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _duration(duration: timedelta | None) -> str:
    if duration is None:
        return "indefinitely"
    if duration <= timedelta(0) or duration.microseconds:
        raise ValueError("duration must be a positive whole number of seconds")
    hours, rest = divmod(duration.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        _count(n, unit)
        for n, unit in (
            (duration.days, "day"),
            (hours, "hour"),
            (minutes, "minute"),
            (seconds, "second"),
        )
        if n
    ]
    return "for " + " ".join(parts)


# --------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------


def _positions(indices: Sequence[int]) -> str:
    """ "first and last", "1st and 14th", "second to last": in calendar order, each once.

    Positions 1 to 10 are words, unless the list holds one past 10: then all are numerals, so a
    list never mixes the two ("1st and 14th", not "first and 14th").
    """
    unique = sorted(set(indices), key=lambda i: (i < 0, i))  # 1, 2, ..., -3, -2, -1
    words = all(abs(i) <= len(_ORDINAL_WORDS) for i in unique)
    return _join([_position(i, words) for i in unique], "and")


def _position(i: int, words: bool) -> str:
    if i == -1:
        return "last"
    n = abs(i)
    name = _ORDINAL_WORDS[n - 1] if words else _ordinal_numeral(n)
    return name if i > 0 else name + " to last"


def _ordinal_numeral(n: int) -> str:
    if n % 100 in (11, 12, 13):
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _month_list(months: int) -> list[str]:
    return [name for bit, name in enumerate(MONTH_NAMES) if months >> bit & 1]


def _weekday_list(weekdays: int) -> list[str]:
    return [name for bit, name in enumerate(WEEKDAY_NAMES) if weekdays >> bit & 1]


def _join(items: Sequence[str], conjunction: str) -> str:
    """ "A", "A and B", "A, B and C" (no serial comma)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]
