"""A schedule as iCalendar lines (RFC 5545), and iCalendar lines as a schedule.

Pure, like the recurrence engine: no Flask, no session, no clock. RECUR values are read and
written with icalendar's ``vRecur``; the mapping between RECUR parts and the schedule's fields
is this module's own (docs/RECURRENCE.md, RRULE).

Writing (:func:`to_rrule`): ``DTSTART;TZID=<zone>:<local date-time>`` (the schedule's first
fire), ``RRULE:<recur>``, one ``EXDATE`` per skipped instant, joined by ``\\n``. The text is exact:
python-dateutil's ``rrulestr(text, forceset=True)`` yields exactly the schedule's fire instants.
A schedule that never fires, or that no single RRULE states exactly, has no text (None).

Reading (:func:`from_rrule`): the fields a text sets. Anything the schedule model cannot state
exactly raises :class:`RuleRefused`, whose message names the part; nothing is approximated.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import product
from typing import Any

from icalendar import vRecur

from pytm4srv import recurrence
from pytm4srv.recurrence import ALL_MONTHS, ALL_WEEKDAYS, Pattern

__all__ = ["MAX_COUNT", "RuleFields", "RuleRefused", "from_rrule", "to_rrule"]

_FREQ = {"Y": "YEARLY", "M": "MONTHLY", "W": "WEEKLY", "D": "DAILY", "H": "HOURLY"}
_FREQUENCY = {name: letter for letter, name in _FREQ.items()}
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: RFC 5545 bounds BYSETPOS (and BYYEARDAY) to 1..366 in size.
_MAX_POSITION = 366
#: The largest COUNT read (the n-th fire is computed to find ``until``).
MAX_COUNT = 100_000
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
_DATE_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)")
_KNOWN_PARTS = frozenset(
    "FREQ UNTIL COUNT INTERVAL BYSECOND BYMINUTE BYHOUR BYDAY BYMONTHDAY BYYEARDAY BYWEEKNO "
    "BYMONTH BYSETPOS WKST".split()
)


class RuleRefused(ValueError):
    """A text that the schedule model cannot state exactly (or cannot read); the message names
    the part."""


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def to_rrule(pattern: Pattern, anchor: datetime, zone: tzinfo, zone_name: str) -> str | None:
    """The schedule as DTSTART / RRULE / EXDATE lines; None when it never fires or no single
    RRULE states it.

    ``zone`` is the zone of a pattern without a ``timezone`` of its own (the service's) and
    ``zone_name`` its IANA name.
    """
    name = pattern.timezone or zone_name
    if name != "UTC" and not recurrence.is_zone_name(name):
        return None  # a zone no reader can name
    recur = _recur(pattern)
    if recur is None:
        return None
    plain = dataclasses.replace(pattern, skip=())
    first = recurrence.next_fires(plain, anchor, zone, _EARLIEST, 1)
    if not first:
        return None
    z = recurrence.zone_of(pattern, zone)
    detail = recurrence.fire_details(plain, anchor, zone, first)[0]
    wall = detail.local.replace(tzinfo=None)
    if detail.shifted:  # the wall time asked for, in the gap: it reads back as this instant
        before = (first[0] - timedelta(days=1)).astimezone(z).utcoffset()
        assert before is not None
        wall = (first[0] + before).replace(tzinfo=None)
    if pattern.until is not None:
        recur["UNTIL"] = pattern.until.replace(microsecond=0)
    lines = [
        f"DTSTART;TZID={name}:{_local_text(wall)}",
        "RRULE:" + vRecur(recur).to_ical().decode("ascii"),  # type: ignore[no-untyped-call]
    ]
    lines += [_exdate(s, plain, anchor, zone, z, name) for s in pattern.skip if not s.microsecond]
    return "\n".join(lines)


def _exdate(
    skipped: datetime, plain: Pattern, anchor: datetime, zone: tzinfo, z: tzinfo, name: str
) -> str:
    """The EXDATE line of a skipped instant: in UTC, unless it is a fire whose wall time is
    ambiguous (the first of a repeated hour) or was moved out of a DST gap. A reader compares
    EXDATE with the rule's instances as the rule writes them, in the zone's wall time (and
    python-dateutil, by PEP 495, finds no instant at such a wall time equal to one in another
    zone), so those are written as the rule writes the fire: in DTSTART's zone, the wall time
    asked for."""
    local = skipped.astimezone(z)
    wall = local.replace(tzinfo=None)
    repeated = (
        wall.replace(tzinfo=z, fold=0).utcoffset() != wall.replace(tzinfo=z, fold=1).utcoffset()
    )
    if repeated and not local.fold:  # the first of the two instants: the one a fire takes
        return f"EXDATE;TZID={name}:{_local_text(wall)}"
    day_before = (skipped - timedelta(days=1)).astimezone(z).utcoffset()
    if day_before != local.utcoffset() and recurrence.fires_between(
        plain, anchor, zone, skipped - timedelta(microseconds=1), skipped
    ) == [skipped]:
        if recurrence.fire_details(plain, anchor, zone, [skipped])[0].shifted:
            assert day_before is not None
            asked = (skipped + day_before).replace(tzinfo=None)
            return f"EXDATE;TZID={name}:{_local_text(asked)}"
    return f"EXDATE:{_utc_text(skipped)}"


def _recur(p: Pattern) -> dict[str, Any] | None:
    """The RECUR parts of a pattern (no UNTIL); None when none state it exactly.

    A period's instances are its dates times the grid BYHOUR x BYMINUTE x BYSECOND (for H:
    BYMINUTE x BYSECOND), in wall order. When the times of day are the whole grid, the dates
    are stated by BYDAY, BYMONTHDAY, BYYEARDAY or, for positions, BYSETPOS over whole blocks;
    else BYSETPOS keeps the times' positions in the block of each date it keeps.
    """
    if recurrence.never_fires(p):
        return None
    recur: dict[str, Any] = {"FREQ": _FREQ[p.frequency]}
    if p.interval != 1:
        recur["INTERVAL"] = p.interval
    hourly = p.frequency == "H"
    times = sorted({t.replace(hour=0) for t in p.times_of_day}) if hourly else p.times_of_day
    hours = sorted({t.hour for t in times})
    minutes = sorted({t.minute for t in times})
    seconds = sorted({t.second for t in times})
    grid = sorted(time(h, m, s) for h in hours for m in minutes for s in seconds)
    # The positions of the times in each date's (hour's) block of instances, 1-based.
    in_block = [grid.index(t) + 1 for t in times]
    if not hourly:
        recur["BYHOUR"] = hours
    recur["BYMINUTE"] = minutes
    recur["BYSECOND"] = seconds
    if p.months != ALL_MONTHS:
        recur["BYMONTH"] = [m + 1 for m in range(12) if p.months >> m & 1]
    weekdays = [_DAYS[d] for d in range(7) if p.weekdays >> d & 1]
    if p.frequency in "YMW" or p.weekdays != ALL_WEEKDAYS:
        # Always for Y, M, W: without BYDAY, a reader takes the day from DTSTART.
        recur["BYDAY"] = weekdays
    if p.frequency == "W":
        recur["WKST"] = "MO"
    # Positions of dates kept by BYSETPOS (None: every date the other parts give, at most
    # ``dates`` of them in a period).
    positions: list[int] | None = None
    dates = 1
    if p.frequency in "DH":
        pass  # one date (hour) per period; D's indices hold 1 or -1 here (else it never fires)
    elif p.indices and p.frequency == "M" and p.weekdays == ALL_WEEKDAYS:
        del recur["BYDAY"]  # positions among all days are days of the month
        recur["BYMONTHDAY"] = sorted({i for i in p.indices if -31 <= i <= 31})
        dates = len(recur["BYMONTHDAY"])
    elif p.indices and p.frequency == "Y" and p.weekdays == ALL_WEEKDAYS and p.months == ALL_MONTHS:
        del recur["BYDAY"]
        recur["BYYEARDAY"] = sorted(set(p.indices))
        dates = len(recur["BYYEARDAY"])
    elif p.frequency == "W" and (not p.indices or p.months == ALL_MONTHS):
        if p.indices:  # every week has the same candidates: keep those selected
            chosen = {weekdays[i - 1 if i > 0 else i] for i in p.indices if abs(i) <= len(weekdays)}
            recur["BYDAY"] = [day for day in _DAYS if day in chosen]
        dates = len(recur["BYDAY"])
    elif p.frequency == "W":
        # BYSETPOS over dates, which python-dateutil does not count over whole weeks (it starts
        # the first week at DTSTART, and cuts weeks at a new year): no text is exact for it.
        return None
    elif p.indices:
        positions = list(p.indices)
    else:
        dates = _most_dates(p.frequency, p.weekdays, p.months)
    if positions is None and len(in_block) == len(grid):
        return recur  # every time of every date
    n = len(grid)
    if positions is None:
        positions = list(range(1, dates + 1))
    setpos = set()
    for i in positions:
        for t in in_block:
            setpos.add((i - 1) * n + t if i > 0 else i * n + t - 1)
    if max(abs(pos) for pos in setpos) > _MAX_POSITION:
        return None
    recur["BYSETPOS"] = sorted(setpos)
    return recur


def _most_dates(frequency: str, weekdays: int, months: int) -> int:
    """The most candidate dates a period can hold (a BYSETPOS of every date names them all)."""
    per_weekday = bin(weekdays).count("1")
    if frequency in "DH":
        return 1
    if frequency == "W":
        return per_weekday
    if frequency == "M":
        return min(31, 5 * per_weekday)
    lengths = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    return sum(min(n, 5 * per_weekday) for m, n in enumerate(lengths) if months >> m & 1)


def _local_text(wall: datetime) -> str:
    return (
        f"{wall.year:04d}{wall.month:02d}{wall.day:02d}"
        f"T{wall.hour:02d}{wall.minute:02d}{wall.second:02d}"
    )


def _utc_text(instant: datetime) -> str:
    return _local_text(instant.astimezone(UTC)) + "Z"


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleFields:
    """What a text sets: the pattern fields, and the zone and anchor when it has a DTSTART."""

    frequency: str
    interval: int
    weekdays: int
    months: int
    indices: tuple[int, ...]
    times_of_day: tuple[time, ...]
    until: datetime | None
    skip: tuple[datetime, ...]
    timezone: str | None  # from DTSTART; None without one
    anchor: datetime | None  # DTSTART; None without one

    @property
    def time_of_day(self) -> time:
        return self.times_of_day[0]

    def values(self) -> dict[str, Any]:
        """The schedule fields it sets, by name (``timezone`` and ``anchor`` only from a
        DTSTART)."""
        values = {
            "frequency": self.frequency,
            "interval": self.interval,
            "weekdays": self.weekdays,
            "months": self.months,
            "indices": list(self.indices),
            "time_of_day": self.time_of_day,
            "times_of_day": self.times_of_day,
            "until": self.until,
            "skip": self.skip,
        }
        if self.anchor is not None:
            values |= {"timezone": self.timezone, "anchor": self.anchor}
        return values


@dataclass
class _Lines:
    dtstart: tuple[datetime, str] | None  # (naive wall time, zone name)
    recur: str
    exdates: list[tuple[datetime, str | None]]  # (naive wall time, zone name; None: floating)


def from_rrule(
    text: str,
    anchor: datetime,
    timezone: str | None,
    zone: tzinfo,
    max_skip: int = 1000,
) -> RuleFields:
    """The schedule fields ``text`` states; RuleRefused naming the part it cannot.

    Without a DTSTART line the rule keeps ``anchor`` and ``timezone`` (None: ``zone``, the
    service's): the parts a reader takes from DTSTART (the day, the time) come from the
    anchor's wall time there. With one, the fires before DTSTART in its own period (a reader
    gives none) are skipped, so the schedule fires exactly as a reader expands the text.
    """
    try:
        return _read(text, anchor, timezone, zone, max_skip)
    except RuleRefused:
        raise
    except (ValueError, OverflowError) as exc:  # e.g. instants past the calendar's ends
        raise RuleRefused(f"The rule cannot be used: {exc}.") from exc


def _read(
    text: str, anchor: datetime, timezone: str | None, zone: tzinfo, max_skip: int
) -> RuleFields:
    lines = _split(text)
    if lines.dtstart is not None:
        wall, zone_name = lines.dtstart
        z = recurrence.zone_named(zone_name)
        start: datetime = wall.replace(tzinfo=z)
        own_zone: str | None = zone_name
    else:
        own_zone = timezone
        z = zone if timezone is None else recurrence.zone_named(timezone)
        start = anchor.astimezone(z)
        wall = start.replace(tzinfo=None)
    recur = _parse_recur(lines.recur)
    fields = _fields(recur, wall)
    until = _until(recur, lines.dtstart is not None)
    pattern = Pattern(
        frequency=fields["frequency"],
        time_of_day=fields["times_of_day"][0],
        interval=fields["interval"],
        indices=fields["indices"],
        months=fields["months"],
        weekdays=fields["weekdays"],
        timezone=own_zone,
        times_of_day=fields["times_of_day"],
        until=until,
    )
    skip = [
        _instant(ex_wall, recurrence.zone_named(ex_zone) if ex_zone else z)
        for ex_wall, ex_zone in lines.exdates
    ]
    anchor_at = start
    if lines.dtstart is not None:
        if pattern.frequency == "H":
            anchor_at = _hour_anchor(wall, z, pattern.interval)
        # A reader starts at DTSTART; the engine at the start of the anchor's period.
        skip += recurrence.fires_between(
            pattern, anchor_at, zone, _EARLIEST, start.astimezone(UTC) - timedelta(microseconds=1)
        )
    if "COUNT" in recur:
        until = _nth_fire(pattern, anchor_at, start, zone, _count(recur))
    if len(set(skip)) > max_skip:
        raise RuleRefused(
            f"The rule skips more than {max_skip} instants (EXDATE, and the instances of "
            "DTSTART's period before DTSTART)."
        )
    return RuleFields(
        frequency=pattern.frequency,
        interval=pattern.interval,
        weekdays=pattern.weekdays,
        months=pattern.months,
        indices=pattern.indices,
        times_of_day=pattern.times_of_day,
        until=until,
        skip=tuple(sorted({s.astimezone(UTC) for s in skip})),
        timezone=own_zone if lines.dtstart is not None else None,
        anchor=anchor_at.astimezone(UTC) if lines.dtstart is not None else None,
    )


def _hour_anchor(wall: datetime, zone: tzinfo, interval: int) -> datetime:
    """An instant whose clock hour counts the same hourly periods as DTSTART's wall time.

    A DTSTART in a DST gap names a clock hour no instant has (a reader counts its hours from
    it, as the engine counts from the anchor's): then the latest existing hour a whole number
    of intervals before it. Its period's fires before DTSTART are skipped like the others.
    """
    step = timedelta(hours=interval)
    candidate = wall
    while True:
        instant = candidate.replace(tzinfo=zone)
        if instant.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == candidate:
            return instant
        candidate -= step


def _split(text: str) -> _Lines:
    """The DTSTART, RRULE and EXDATE lines of ``text`` (folded or not, LF or CRLF)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text.replace("\r\n", "\n").replace("\r", "\n"))
    dtstart = None
    recurs: list[str] = []
    exdates: list[tuple[datetime, str | None]] = []
    for raw in unfolded.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if ":" not in line:
            if line.upper().startswith("FREQ="):
                recurs.append(line)
                continue
            raise RuleRefused(f"Not an iCalendar line: {line[:40]!r}.")
        head, value = line.split(":", 1)
        name, *params = head.split(";")
        name = name.upper()
        parameters = dict(_parameter(p) for p in params)
        if name == "RRULE":
            recurs.append(value)
        elif name == "DTSTART":
            if dtstart is not None:
                raise RuleRefused("DTSTART is given twice.")
            wall, zone_name = _date_time(value, parameters, "DTSTART")
            if zone_name is None:
                raise RuleRefused(
                    "DTSTART has neither TZID nor Z (a floating time): give its zone."
                )
            dtstart = (wall, zone_name)
        elif name == "EXDATE":
            for item in value.split(","):
                exdates.append(_date_time(item, parameters, "EXDATE"))
        elif name in ("RDATE", "EXRULE"):
            raise RuleRefused(f"{name} is not supported: a schedule is one RRULE.")
        else:
            raise RuleRefused(f"{name} is not a line of a rule (DTSTART, RRULE, EXDATE).")
    if len(recurs) != 1:
        raise RuleRefused(
            "Exactly one RRULE is needed." if not recurs else "Several RRULEs: a schedule is one."
        )
    return _Lines(dtstart, recurs[0], exdates)


def _parameter(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    return name.upper(), value.strip('"')


def _date_time(value: str, parameters: dict[str, str], what: str) -> tuple[datetime, str | None]:
    """(naive wall time, zone name or None when floating) of a DATE-TIME value."""
    if parameters.get("VALUE", "DATE-TIME").upper() != "DATE-TIME":
        raise RuleRefused(f"{what} must be a date-time (VALUE=DATE has no time of day).")
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise RuleRefused(f"{what} {value!r} is not a date-time YYYYMMDDTHHMMSS[Z].")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise RuleRefused(f"{what} {value!r} is not a valid date-time.") from exc
    if match.group(7):
        return wall, "UTC"
    zone_name = parameters.get("TZID")
    if zone_name is not None and zone_name != "UTC" and not recurrence.is_zone_name(zone_name):
        raise RuleRefused(f"{what} TZID {zone_name!r} is not an IANA zone name this host knows.")
    return wall, zone_name


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    try:
        return wall.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError as exc:
        raise RuleRefused(f"{wall.isoformat()} is outside the years 1 to 9999.") from exc


def _parse_recur(text: str) -> dict[str, list[Any]]:
    try:
        recur = vRecur.from_ical(text.strip())
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise RuleRefused(f"The RRULE cannot be read: {exc}.") from exc
    parts = {str(key).upper(): list(value) for key, value in recur.items()}
    for part in parts:
        if part not in _KNOWN_PARTS:
            raise RuleRefused(f"{part} is not a part of an RRULE this service reads.")
    if "FREQ" not in parts:
        raise RuleRefused("FREQ is required.")
    return parts


def _one(recur: dict[str, list[Any]], part: str) -> Any:
    values = recur[part]
    if len(values) != 1:
        raise RuleRefused(f"{part} takes one value.")
    return values[0]


def _ints(recur: dict[str, list[Any]], part: str, low: int, high: int) -> list[int]:
    try:
        values = [int(str(v)) for v in recur.get(part, [])]
    except ValueError as exc:
        raise RuleRefused(f"{part} must list whole numbers.") from exc
    if any(not low <= abs(v) <= high or (low == 1 and v == 0) for v in values):
        raise RuleRefused(f"{part} values must be within {low}..{high}.")
    return values


def _fields(recur: dict[str, list[Any]], start: datetime) -> dict[str, Any]:
    """frequency, interval, weekdays, months, indices, times_of_day of a RECUR; ``start`` is
    DTSTART's wall time (the defaults an RRULE takes from it)."""
    freq = str(_one(recur, "FREQ")).upper()
    if freq not in _FREQUENCY:
        raise RuleRefused(
            f"FREQ={freq}: a schedule fires at most at some times of each hour "
            "(FREQ=HOURLY with BYMINUTE), not every minute or second."
        )
    frequency = _FREQUENCY[freq]
    interval = int(_one(recur, "INTERVAL")) if "INTERVAL" in recur else 1
    if not 1 <= interval <= 2**31 - 1:
        raise RuleRefused("INTERVAL must be within 1..2147483647.")
    if "COUNT" in recur and "UNTIL" in recur:
        raise RuleRefused("COUNT and UNTIL together: RFC 5545 allows one of them.")
    if "BYWEEKNO" in recur:
        raise RuleRefused(
            "BYWEEKNO: a schedule's weeks are counted from its anchor, not numbered in the year."
        )
    months_list = _ints(recur, "BYMONTH", 1, 12)
    if any(m < 0 for m in months_list):
        raise RuleRefused("BYMONTH values must be within 1..12.")
    monthdays = _ints(recur, "BYMONTHDAY", 1, 31)
    yeardays = _ints(recur, "BYYEARDAY", 1, 366)
    setpos = _ints(recur, "BYSETPOS", 1, 366)
    plain_days, ordinals = _byday(recur)
    months = sum(1 << (m - 1) for m in set(months_list)) if months_list else ALL_MONTHS
    times = _times(recur, frequency, start)

    if monthdays and (plain_days or ordinals):
        raise RuleRefused(
            "BYMONTHDAY together with BYDAY (e.g. Friday the 13th): a schedule selects days "
            "by position or by weekday, not both."
        )
    if yeardays and (frequency != "Y" or months_list or plain_days or ordinals or monthdays):
        raise RuleRefused(
            "BYYEARDAY is read only with FREQ=YEARLY and no BYMONTH, BYDAY or BYMONTHDAY."
        )
    if ordinals and frequency not in "YM":
        raise RuleRefused(f"BYDAY with ordinals (e.g. 2MO) with FREQ={freq}: RFC 5545 forbids it.")
    if monthdays and frequency in "WDH":
        raise RuleRefused(
            f"BYMONTHDAY with FREQ={freq}: a schedule cannot keep days by their date."
        )
    wkst = str(_one(recur, "WKST")).upper() if "WKST" in recur else "MO"
    if wkst not in _DAYS:
        raise RuleRefused(f"WKST={wkst} is not a weekday (MO..SU).")
    if frequency == "W" and (setpos or interval > 1):
        # Weeks from WKST group the days before it (from Monday) with the week before; that
        # changes nothing unless days on both sides of it are selected.
        start_day = _DAYS.index(wkst)
        selected = plain_days or [start.weekday()]
        if any(d < start_day for d in selected) and any(d >= start_day for d in selected):
            raise RuleRefused(
                f"WKST={wkst} where it matters: a schedule's weeks start on Monday, and with "
                f"WKST={wkst} other days share a week."
            )

    weekdays = ALL_WEEKDAYS
    indices: list[int] = []
    if plain_days:
        weekdays = sum(1 << d for d in plain_days)
    if ordinals:
        if plain_days:
            raise RuleRefused("BYDAY mixes days with and without ordinals.")
        by_day: dict[int, set[int]] = {}
        for day, n in ordinals:
            by_day.setdefault(day, set()).add(n)
        if len(set(map(frozenset, by_day.values()))) > 1:
            raise RuleRefused(
                "BYDAY ordinals that differ between weekdays (e.g. 1MO,2TU): a schedule counts "
                "positions among all its weekdays together, so each weekday cannot have its own."
            )
        weekdays = sum(1 << day for day in by_day)
        # The n-th of each of k weekdays all lie in the n-th run of 7 days from the start (the
        # end, when negative): they are the candidates at positions (n-1)k+1 .. nk.
        k = len(by_day)
        wanted = next(iter(by_day.values()))
        indices = sorted(
            {
                sign * pos
                for n in wanted
                for sign in (1 if n > 0 else -1,)
                for pos in range((abs(n) - 1) * k + 1, abs(n) * k + 1)
                if pos <= 366
            }
        )
    elif monthdays:
        indices = sorted(set(monthdays))
    elif yeardays:
        indices = sorted(set(yeardays))
    elif not plain_days and frequency in "YMW":
        # The parts a reader takes from DTSTART.
        if frequency == "W":
            weekdays = 1 << start.weekday()
        else:
            indices = [start.day]
            if frequency == "Y" and not months_list:
                months = 1 << (start.month - 1)
    # YEARLY positions within each month (BYMONTHDAY, the day of DTSTART, BYDAY ordinals with
    # BYMONTH): positions within the year when one month is wanted; with several, only every
    # year is every month of those.
    within_months = bool(monthdays) or (bool(ordinals) and bool(months_list))
    within_months |= not (plain_days or ordinals or monthdays or yeardays)
    if frequency == "Y" and within_months and bin(months).count("1") > 1:
        if interval != 1:
            raise RuleRefused(
                "FREQ=YEARLY with INTERVAL above 1 and days within each of several months: a "
                "schedule counts a year's positions over the whole year."
            )
        frequency = "M"
    if setpos:
        blocks, kept = _blocks_of_positions(setpos, len(times))
        times = tuple(times[i - 1] for i in kept)
        if frequency == "H" and not {1, -1} & blocks:
            raise RuleRefused("BYSETPOS with FREQ=HOURLY keeps no instance of an hour.")
        if frequency in "YMW" and indices:
            # BYMONTHDAY, BYYEARDAY, BYDAY ordinals or DTSTART's day give the dates: BYSETPOS
            # may only pick times, keeping every date they give.
            most = len(set(indices))
            if not (set(range(1, most + 1)) <= blocks or set(range(-most, 0)) <= blocks):
                raise RuleRefused(
                    "BYSETPOS together with BYMONTHDAY, BYYEARDAY, BYDAY ordinals or the day of "
                    "DTSTART keeps only some of their days: give the days with BYDAY."
                )
        elif frequency in "YMWD":
            most = _most_dates(frequency, weekdays, months)
            indices = [] if set(range(1, most + 1)) <= blocks else sorted(blocks)
    if len(times) > recurrence.MAX_TIMES_OF_DAY:
        raise RuleRefused(
            f"BYHOUR x BYMINUTE x BYSECOND (and BYSETPOS) give {len(times)} times of day; a "
            f"schedule has at most {recurrence.MAX_TIMES_OF_DAY}."
        )
    return {
        "frequency": frequency,
        "interval": interval,
        "weekdays": weekdays,
        "months": months,
        "indices": tuple(indices),
        "times_of_day": times,
    }


def _byday(recur: dict[str, list[Any]]) -> tuple[list[int], list[tuple[int, int]]]:
    """(weekdays without ordinal, (weekday, ordinal) pairs) of BYDAY."""
    plain: list[int] = []
    ordinals: list[tuple[int, int]] = []
    for item in recur.get("BYDAY", []):
        text = str(item).upper()
        match = re.fullmatch(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)", text)
        if match is None:
            raise RuleRefused(f"BYDAY {text!r} is not a weekday (MO..SU, with an ordinal).")
        day = _DAYS.index(match.group(2))
        if match.group(1) is None:
            plain.append(day)
        else:
            n = int(match.group(1))
            if n == 0 or abs(n) > 53:
                raise RuleRefused(f"BYDAY {text!r}: ordinals are within 1..53 or -53..-1.")
            ordinals.append((day, n))
    return sorted(set(plain)), ordinals


def _times(recur: dict[str, list[Any]], frequency: str, start: datetime) -> tuple[time, ...]:
    """Every combination of BYHOUR, BYMINUTE and BYSECOND (each defaulting to DTSTART's),
    ascending: the instants of a date (for H, of an hour), before BYSETPOS."""
    hours = _ints(recur, "BYHOUR", 0, 23) or [start.hour]
    minutes = _ints(recur, "BYMINUTE", 0, 59) or [start.minute]
    seconds = _ints(recur, "BYSECOND", 0, 60) or [start.second]
    if any(v < 0 for v in hours + minutes + seconds):
        raise RuleRefused("BYHOUR, BYMINUTE and BYSECOND take no negative values.")
    if 60 in seconds:
        raise RuleRefused("BYSECOND=60 (a leap second) never occurs in this calendar.")
    if frequency == "H":
        if "BYHOUR" in recur and set(hours) != set(range(24)):
            raise RuleRefused("BYHOUR with FREQ=HOURLY: a schedule cannot keep hours by number.")
        hours = [0]
    combos = {time(h, m, s) for h, m, s in product(set(hours), set(minutes), set(seconds))}
    return tuple(sorted(combos))


def _blocks_of_positions(setpos: Sequence[int], n: int) -> tuple[set[int], list[int]]:
    """BYSETPOS over a period's instances (dates x the ``n`` times of the grid, in wall order)
    as (positions of dates, positions of times in each date's block); refused unless it keeps
    the same times on every date it keeps."""
    kept: dict[int, set[int]] = {}
    for pos in set(setpos):
        if pos > 0:
            block, in_block = (pos - 1) // n + 1, (pos - 1) % n + 1
        else:
            block, in_block = -((-pos - 1) // n + 1), n - (-pos - 1) % n
        kept.setdefault(block, set()).add(in_block)
    times = set(map(frozenset, kept.values()))
    if len(times) != 1:
        raise RuleRefused(
            "BYSETPOS keeps different times on different days: a schedule fires at the same "
            "times on each day it selects."
        )
    return set(kept), sorted(times.pop())


def _until(recur: dict[str, list[Any]], has_dtstart: bool) -> datetime | None:
    if "UNTIL" not in recur:
        return None
    value = _one(recur, "UNTIL")
    if not isinstance(value, datetime):
        raise RuleRefused("UNTIL must be a date-time in UTC (YYYYMMDDTHHMMSSZ), not a date.")
    if value.utcoffset() is None:
        raise RuleRefused("UNTIL must be in UTC (YYYYMMDDTHHMMSSZ) when DTSTART has a zone.")
    return value.astimezone(UTC)


def _count(recur: dict[str, list[Any]]) -> int:
    try:
        count = int(_one(recur, "COUNT"))
    except ValueError as exc:
        raise RuleRefused("COUNT must be a whole number.") from exc
    if not 1 <= count <= MAX_COUNT:
        raise RuleRefused(f"COUNT must be within 1..{MAX_COUNT}.")
    return count


def _nth_fire(
    pattern: Pattern, anchor: datetime, start: datetime, zone: tzinfo, n: int
) -> datetime | None:
    """COUNT=n as ``until``: the n-th fire from DTSTART (``start``) on (skipped ones count, as
    EXDATE removes instances after COUNT); None when there are fewer."""
    after = start.astimezone(UTC) - timedelta(microseconds=1)
    fires = recurrence.next_fires(pattern, anchor, zone, after, n)
    return fires[-1] if len(fires) == n else None
