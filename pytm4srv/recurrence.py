"""Recurrence engine: the fire instants of a hold schedule (docs/RECURRENCE.md, Rules).

Pure: standard library only, no clock; the start instant is an argument.

How it stays fast for every valid pattern:

- Periods are numbered with integers (``Y`` year, ``M`` year*12 + month-1, ``W`` week number,
  ``D`` date ordinal, ``H`` ordinal*24 + hour). Eligible period number ``index`` is
  ``first_period + index * interval``, where ``first_period`` is the anchor's period; the first
  eligible index at or after the start is computed, nothing iterates from the anchor.
- Which days of a period are selected depends only on the period's calendar *type*: for ``Y``
  (leap, weekday of 1 January), for ``M`` (month, leap, weekday of the 1st), for ``W`` (month of
  the Monday, how many of the week's days are still in that month). These selections are
  computed once per (frequency, months, weekdays, indices) for every type.
- Months whose bit is unset are skipped by residue arithmetic (``M``) or by jumping to the first
  eligible period of the next wanted month (``W``, ``D``, ``H``); ``D`` and ``H`` skip disallowed
  weekdays with a residue table over the interval.
- The Gregorian calendar repeats every 400 years (146097 days, 20871 weeks, 4800 months), and
  so does the pattern of eligible periods after n / gcd(n, interval) of them. ``Y``, ``M`` and
  ``W`` scan their first cycle of eligible periods, and one shared helper (``_replay_cycles``)
  records the productive ones and replays them, shifted by whole 400-year spans, for every
  later cycle; a whole cycle that selects nothing proves that nothing ever will. ``D`` and
  ``H`` stop after a cycle's span of dates or hours without a wanted month.
- Local times are turned into instants with zoneinfo (fold=0). A DST gap can put a candidate
  after a later one (by up to the size of the gap, 24 h on Pacific/Apia in 2011), so instants
  are held in a small heap until no later candidate can precede them, then emitted once each.
"""

from __future__ import annotations

import dataclasses
import heapq
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache, partial
from itertools import islice, takewhile
from math import gcd
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

__all__ = [
    "ALL_MONTHS",
    "ALL_WEEKDAYS",
    "FREQUENCIES",
    "Fire",
    "Pattern",
    "fire_details",
    "fires_between",
    "is_zone_name",
    "zone_names",
    "iter_fires",
    "never_fires",
    "next_fires",
    "zone_named",
    "zone_of",
]

FREQUENCIES = ("Y", "M", "W", "D", "H")
ALL_MONTHS = 0xFFF  # bit 0 = January ... bit 11 = December
ALL_WEEKDAYS = 0x7F  # bit 0 = Monday ... bit 6 = Sunday

_LAST_ORDINAL = date.max.toordinal()  # 9999-12-31; ordinal 1 (0001-01-01) is a Monday
_MIDNIGHT_UTC = time(0, tzinfo=UTC)
_DAYS = tuple(timedelta(days=i) for i in range(367))
_HOURS = tuple(timedelta(hours=i) for i in range(24))
_ONE_SECOND = timedelta(seconds=1)

_MONTH_LENGTHS = (
    (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
    (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
)


@dataclass(frozen=True, slots=True)
class Pattern:
    """The recurrence fields of a schedule (docs/RECURRENCE.md, Rules)."""

    frequency: str  # one of FREQUENCIES
    time_of_day: time  # naive time, seconds allowed, microsecond 0
    interval: int = 1  # >= 1
    indices: tuple[int, ...] = ()  # non-zero, each in -366..366; () = all
    months: int = ALL_MONTHS  # 0..4095
    weekdays: int = ALL_WEEKDAYS  # 0..127
    timezone: str | None = None  # IANA name of the zone the rules are read in; None: the default
    skip: tuple[datetime, ...] = ()  # fire instants that do not fire (aware; kept as UTC)
    #: Every time of day a selected date fires at, ascending, each once; () = (time_of_day,).
    #: ``time_of_day`` is the earliest of them.
    times_of_day: tuple[time, ...] = ()
    until: datetime | None = None  # no fire is later (aware; kept as UTC); None: no end

    def __post_init__(self) -> None:
        if not isinstance(self.indices, tuple):  # a list straight from JSON, say
            object.__setattr__(self, "indices", tuple(self.indices))
        if self.timezone is not None and (not isinstance(self.timezone, str) or not self.timezone):
            raise ValueError("timezone must be a zone name or None")
        if not isinstance(self.skip, list | tuple) or not all(
            isinstance(s, datetime) and s.utcoffset() is not None for s in self.skip
        ):
            raise ValueError("skip must hold timezone-aware datetimes")
        object.__setattr__(self, "skip", _utc_instants(self.skip))
        if self.frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {FREQUENCIES}")
        if self.time_of_day.tzinfo is not None or self.time_of_day.microsecond:
            raise ValueError("time_of_day must be naive, without microseconds")
        object.__setattr__(self, "times_of_day", _times_of_day(self.time_of_day, self.times_of_day))
        if self.until is not None:
            if not isinstance(self.until, datetime) or self.until.utcoffset() is None:
                raise ValueError("until must be a timezone-aware datetime or None")
            object.__setattr__(self, "until", self.until.astimezone(UTC))
        if self.interval < 1:
            raise ValueError("interval must be >= 1")
        if any(i == 0 or not -366 <= i <= 366 for i in self.indices):
            raise ValueError("indices must be non-zero and within -366..366")
        if not 0 <= self.months <= ALL_MONTHS:
            raise ValueError("months must be within 0..4095")
        if not 0 <= self.weekdays <= ALL_WEEKDAYS:
            raise ValueError("weekdays must be within 0..127")


MAX_TIMES_OF_DAY = 24


def _times_of_day(time_of_day: time, times: Iterable[time]) -> tuple[time, ...]:
    """``times`` checked and ascending; (time_of_day,) when empty. ``time_of_day`` must be the
    earliest of them."""
    if not isinstance(times, list | tuple):
        raise ValueError("times_of_day must be a list of times")
    if not times or (len(times) == 1 and times[0] == time_of_day):
        return (time_of_day,)  # one time: the common case, checked with time_of_day
    if not all(isinstance(t, time) and t.tzinfo is None and not t.microsecond for t in times):
        raise ValueError("times_of_day must hold naive times, without microseconds")
    ordered = tuple(sorted(times))
    if len(set(ordered)) != len(ordered):
        raise ValueError("times_of_day must not repeat a time")
    if len(ordered) > MAX_TIMES_OF_DAY:
        raise ValueError(f"times_of_day holds at most {MAX_TIMES_OF_DAY} times")
    if ordered[0] != time_of_day:
        raise ValueError("time_of_day must be the earliest of times_of_day")
    return ordered


def _utc_instants(instants: Iterable[datetime]) -> tuple[datetime, ...]:
    """Aware instants as UTC, ascending, each once; those past the UTC range dropped (no fire is
    there). UTC, because an instant in a zone's gap or overlap compares unequal to every other
    zone's (PEP 495)."""
    utc: set[datetime] = set()
    for instant in instants:
        try:
            utc.add(instant.astimezone(UTC))
        except OverflowError:
            pass
    return tuple(sorted(utc))


# --------------------------------------------------------------------------
# Selections per calendar type
# --------------------------------------------------------------------------


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _select(candidates: list[int], indices: tuple[int, ...]) -> tuple[int, ...]:
    """The candidates kept by ``indices`` (1-based, negative from the end), ascending, once."""
    if not indices:
        return tuple(candidates)
    count = len(candidates)
    kept = {
        candidates[i - 1] if i > 0 else candidates[count + i]
        for i in indices
        if -count <= i <= count
    }
    return tuple(sorted(kept))


def _week_candidates(
    months: int, weekdays: int, month_index: int, days_in_month: int, days: int = 7
) -> list[int]:
    """Candidate day offsets of a week whose Monday is in month ``month_index`` (0-based),
    ``days_in_month`` of its days (from the Monday on) in that month, the rest in the next one;
    ``days`` is how many of the week's days exist."""
    next_month_index = (month_index + 1) % 12
    return [
        day
        for day in range(days)
        if weekdays >> day & 1
        and months >> (month_index if day < days_in_month else next_month_index) & 1
    ]


@lru_cache(maxsize=256)
def _type_table(
    frequency: str, months: int, weekdays: int, indices: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    """Selected day offsets for every calendar type of a ``Y``, ``M`` or ``W`` period.

    Y: key leap*7 + weekday of 1 January; offsets from 1 January.
    M: key month_index*14 + leap*7 + weekday of the 1st; offsets from the 1st.
    W: key month_index*8 + days_in_month, where month_index is the Monday's month (0-based)
       and days_in_month (1..7) how many of the week's days are still in it; offsets from the
       Monday. Key month_index*8 + 0 is unused.
    """
    table: list[tuple[int, ...]] = []
    if frequency == "Y":
        for leap in (0, 1):
            for first_weekday in range(7):
                candidates: list[int] = []
                day_of_year = 0
                for month_index, length in enumerate(_MONTH_LENGTHS[leap]):
                    if months >> month_index & 1:
                        candidates.extend(
                            day
                            for day in range(day_of_year, day_of_year + length)
                            if weekdays >> ((first_weekday + day) % 7) & 1
                        )
                    day_of_year += length
                table.append(_select(candidates, indices))
    elif frequency == "M":
        for month_index in range(12):
            for leap in (0, 1):
                for first_weekday in range(7):
                    if months >> month_index & 1:
                        length = _MONTH_LENGTHS[leap][month_index]
                        candidates = [
                            day
                            for day in range(length)
                            if weekdays >> ((first_weekday + day) % 7) & 1
                        ]
                        table.append(_select(candidates, indices))
                    else:
                        table.append(())
    elif frequency == "W":
        for month_index in range(12):
            table.append(())
            for days_in_month in range(1, 8):
                candidates = _week_candidates(months, weekdays, month_index, days_in_month)
                table.append(_select(candidates, indices))
    else:
        raise ValueError(frequency)
    return tuple(table)


def _days_in_month_from(day: date) -> int:
    """How many days of ``day``'s month there are from ``day`` on, itself included."""
    return _MONTH_LENGTHS[_is_leap(day.year)][day.month - 1] - day.day + 1


def _last_week_offsets(pattern: Pattern, monday: date) -> tuple[int, ...]:
    """Selection of the last, partial week of the calendar (the days after 9999-12-31 do not
    exist, so positions are counted over the days that do)."""
    candidates = _week_candidates(
        pattern.months,
        pattern.weekdays,
        monday.month - 1,
        _days_in_month_from(monday),
        min(_LAST_ORDINAL - monday.toordinal() + 1, 7),
    )
    return _select(candidates, pattern.indices)


def never_fires(pattern: Pattern) -> bool:
    """True when the pattern selects nothing whatever its anchor (a cheap structural check).

    False does not promise a fire: an interval can still keep every eligible period away from
    the selected days for a given anchor (that case is detected while iterating).
    """
    if not pattern.months or not pattern.weekdays:
        return True
    frequency = pattern.frequency
    if frequency == "H":
        return False
    if frequency == "D":
        return bool(pattern.indices) and 1 not in pattern.indices and -1 not in pattern.indices
    # Every calendar type occurs in every 400-year cycle.
    return not any(_type_table(frequency, pattern.months, pattern.weekdays, pattern.indices))


# --------------------------------------------------------------------------
# Instants and periods
# --------------------------------------------------------------------------


def _utc_seconds(instant: datetime) -> int:
    """The instant as whole UTC seconds on the scale ordinal*86400 + seconds of the day."""
    offset = instant.utcoffset()
    if offset is None:
        raise ValueError("datetimes must be timezone-aware")
    wall = instant.toordinal() * 86400 + instant.hour * 3600 + instant.minute * 60 + instant.second
    return wall - offset // _ONE_SECOND


def _local_ordinal_hour(instant: datetime, zone: tzinfo) -> tuple[int, int]:
    """Local (date ordinal, hour) of an instant in ``zone``; also just outside the datetime
    range (ordinal 0 or 3652060), where no zone has transitions."""
    try:
        local = instant.astimezone(zone)
        return local.toordinal(), local.hour
    except OverflowError:
        pass
    seconds = _utc_seconds(instant)
    probe = min(max(seconds, 3 * 86400), (_LAST_ORDINAL - 2) * 86400)
    probe_instant = datetime.combine(date.fromordinal(probe // 86400), _MIDNIGHT_UTC) + timedelta(
        seconds=probe % 86400
    )
    offset = probe_instant.astimezone(zone).utcoffset()
    assert offset is not None
    seconds += offset // _ONE_SECOND
    return seconds // 86400, seconds % 86400 // 3600


def _year_month(ordinal: int) -> tuple[int, int]:
    """(year, month) of a date ordinal, one day past either end of the range included."""
    if ordinal < 1:
        return 0, 12
    if ordinal > _LAST_ORDINAL:
        return 10000, 1
    day = date.fromordinal(ordinal)
    return day.year, day.month


def _period(frequency: str, ordinal: int, hour: int) -> int:
    """The number of the period of ``frequency`` that holds local date ``ordinal`` at ``hour``."""
    if frequency == "Y":
        return _year_month(ordinal)[0]
    if frequency == "M":
        year, month = _year_month(ordinal)
        return year * 12 + month - 1
    if frequency == "W":
        return (ordinal - 1) // 7
    if frequency == "D":
        return ordinal
    return ordinal * 24 + hour


def _first_index(first_period: int, interval: int, period: int) -> int:
    """The least index >= 0 whose eligible period, first_period + index * interval, is at or
    after ``period``."""
    if period <= first_period:
        return 0
    return -(-(period - first_period) // interval)


@lru_cache(maxsize=64)
def _months_ahead(months: int) -> tuple[int, ...]:
    """For each month 0..11, how many months ahead (1..12) the next month with its bit set is."""
    return tuple(
        next(step for step in range(1, 13) if months >> ((month_index + step) % 12) & 1)
        for month_index in range(12)
    )


def _next_wanted_month(month_number: int, months_ahead: tuple[int, ...]) -> int | None:
    """Ordinal of the 1st of the first wanted month after ``month_number`` (year*12 + month-1);
    None when that month is past the calendar."""
    year, month_index = divmod(month_number + months_ahead[month_number % 12], 12)
    if year > 9999:
        return None
    return date(year, month_index + 1, 1).toordinal()


def _residue_steps(wanted: list[bool]) -> list[int] | None:
    """For each residue r, how far to the next residue (r + step) % n that is wanted; None
    if none is."""
    count = len(wanted)
    if not any(wanted):
        return None
    steps = [0] * count
    for residue in range(count):
        step = 0
        while not wanted[(residue + step) % count]:
            step += 1
        steps[residue] = step
    return steps


# --------------------------------------------------------------------------
# Candidates, one chunk per productive period (local aware datetimes, wall order)
# --------------------------------------------------------------------------

# A productive period: its start (local, aware, at time_of_day) and the offsets in days from
# the start of the candidates it selects.
_Productive = tuple[datetime, tuple[int, ...]]


def _replay_cycles(
    first_cycle: Iterable[_Productive],
    spans_per_cycle: int,
    ordinal_high: int,
    last_week: Callable[[date], tuple[int, ...]] | None = None,
) -> Iterator[list[datetime]]:
    """The chunks of a ``Y``, ``M`` or ``W`` rule: its first cycle of eligible periods, then
    that cycle replayed.

    ``first_cycle`` yields the productive periods of the first cycle of eligible periods in
    order (it stops early at the end of the calendar or of the requested range). One cycle
    spans ``spans_per_cycle`` whole 400-year spans, over which the calendar and the interval's
    phase repeat exactly: every later cycle selects the same offsets from the same month and
    day, that many 400-year spans later. The cost is one cycle at most plus the fires
    themselves, however sparse the rule. The replay ends before the first period that starts
    after local date ``ordinal_high``. ``last_week`` gives the selection of a period that runs
    past 9999-12-31 (only the calendar's last week does).
    """
    record: list[_Productive] = []
    for start, offsets in first_cycle:
        record.append((start, offsets))
        yield [start + _DAYS[i] for i in offsets]
    if not record:
        return  # a whole cycle without a selection: never
    local_time = record[0][0].timetz()  # time_of_day in the zone, as every period start
    replayed = [
        (start.year, start.month, start.day, start.toordinal(), offsets)
        for start, offsets in record
    ]
    years_per_cycle = 400 * spans_per_cycle
    days_per_cycle = 146097 * spans_per_cycle
    shift_years = 0
    # The limits on a first-cycle ordinal for its shifted period to start by ``ordinal_high``
    # and to be a whole week.
    high = ordinal_high
    whole_week = _LAST_ORDINAL - 6
    while True:
        shift_years += years_per_cycle
        high -= days_per_cycle
        whole_week -= days_per_cycle
        for year, month, day, ordinal, offsets in replayed:
            if ordinal > high:
                return
            year += shift_years
            if ordinal > whole_week and last_week is not None:
                offsets = last_week(date(year, month, day))
                if not offsets:
                    return
            start = datetime.combine(date(year, month, day), local_time)
            yield [start + _DAYS[i] for i in offsets]


def _first_cycle_y(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[_Productive]:
    table = _type_table("Y", pattern.months, pattern.weekdays, pattern.indices)
    interval = pattern.interval
    local_time = pattern.time_of_day.replace(tzinfo=zone)
    last_year = date.fromordinal(ordinal_high).year
    start_index = _first_index(first_period, interval, date.fromordinal(ordinal_low).year)
    for index in range(start_index, start_index + 400 // gcd(400, interval)):
        year = first_period + index * interval
        if year > last_year:
            return
        january_first = datetime.combine(date(year, 1, 1), local_time)
        offsets = table[_is_leap(year) * 7 + january_first.weekday()]
        if offsets:
            yield january_first, offsets


def _first_cycle_m(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[_Productive]:
    table = _type_table("M", pattern.months, pattern.weekdays, pattern.indices)
    interval = pattern.interval
    local_time = pattern.time_of_day.replace(tzinfo=zone)
    months = pattern.months
    year, month = _year_month(ordinal_low)
    last_year = _year_month(ordinal_high)[0]
    start_index = _first_index(first_period, interval, year * 12 + month - 1)
    # Eligible month ``index`` is month-of-year (first_period + index * interval) % 12, which
    # repeats with index modulo month_residues: skip unwanted months by residue.
    month_residues = 12 // gcd(12, interval)
    steps = _residue_steps(
        [bool(months >> ((first_period + r * interval) % 12) & 1) for r in range(month_residues)]
    )
    if steps is None:
        return
    end_index = start_index + 4800 // gcd(4800, interval)
    index = start_index
    while True:
        index += steps[index % month_residues]
        if index >= end_index:
            return
        year, month_index = divmod(first_period + index * interval, 12)
        if year > last_year:
            return
        first_day = datetime.combine(date(year, month_index + 1, 1), local_time)
        offsets = table[month_index * 14 + _is_leap(year) * 7 + first_day.weekday()]
        if offsets:
            yield first_day, offsets
        index += 1


def _first_cycle_w(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[_Productive]:
    table = _type_table("W", pattern.months, pattern.weekdays, pattern.indices)
    interval = pattern.interval
    local_time = pattern.time_of_day.replace(tzinfo=zone)
    months = pattern.months
    months_ahead = _months_ahead(months)
    start_index = _first_index(first_period, interval, (ordinal_low - 1) // 7)
    end_index = start_index + 20871 // gcd(20871, interval)
    index = start_index
    while index < end_index:
        monday_ordinal = 7 * (first_period + index * interval) + 1
        if monday_ordinal > ordinal_high:
            return
        monday = date.fromordinal(monday_ordinal)
        month_index = monday.month - 1
        # Days of the week in the Monday's month (a month has 28 days at least).
        days_in_month = 7 if monday.day <= 22 else min(_days_in_month_from(monday), 7)
        if monday_ordinal + 6 > _LAST_ORDINAL:
            offsets = _last_week_offsets(pattern, monday)
        else:
            offsets = table[month_index * 8 + days_in_month]
        if offsets:
            yield datetime.combine(monday, local_time), offsets
            index += 1
        elif months >> month_index & 1 or (
            days_in_month < 7 and months >> ((month_index + 1) % 12) & 1
        ):
            index += 1
        else:
            # No month of this week is wanted: go to the week of the next wanted month.
            month_number = monday.year * 12 + month_index + (days_in_month < 7)
            month_start = _next_wanted_month(month_number, months_ahead)
            if month_start is None:
                return
            index = _first_index(first_period, interval, (month_start - 1) // 7)


def _chunks_y(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[list[datetime]]:
    first_cycle = _first_cycle_y(pattern, zone, first_period, ordinal_low, ordinal_high)
    spans = pattern.interval // gcd(400, pattern.interval)
    return _replay_cycles(first_cycle, spans, ordinal_high)


def _chunks_m(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[list[datetime]]:
    first_cycle = _first_cycle_m(pattern, zone, first_period, ordinal_low, ordinal_high)
    spans = pattern.interval // gcd(4800, pattern.interval)
    return _replay_cycles(first_cycle, spans, ordinal_high)


def _chunks_w(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[list[datetime]]:
    first_cycle = _first_cycle_w(pattern, zone, first_period, ordinal_low, ordinal_high)
    spans = pattern.interval // gcd(20871, pattern.interval)
    return _replay_cycles(first_cycle, spans, ordinal_high, partial(_last_week_offsets, pattern))


def _chunks_d(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[list[datetime]]:
    if pattern.indices and 1 not in pattern.indices and -1 not in pattern.indices:
        return
    interval = pattern.interval
    local_time = pattern.time_of_day.replace(tzinfo=zone)
    months, weekdays = pattern.months, pattern.weekdays
    months_ahead = _months_ahead(months)
    # Eligible date ``index`` is ordinal first_period + index * interval; its weekday repeats
    # with index modulo weekday_residues (ordinal 1 is a Monday).
    weekday_residues = 7 // gcd(7, interval)
    steps = _residue_steps(
        [
            bool(weekdays >> ((first_period + r * interval + 6) % 7) & 1)
            for r in range(weekday_residues)
        ]
    )
    if steps is None:
        return
    days_per_cycle = 146097 // gcd(146097, interval) * interval
    index = _first_index(first_period, interval, ordinal_low)
    index += steps[index % weekday_residues]
    last_selected = first_period + index * interval - 1  # or the day before the search
    while True:
        ordinal = first_period + index * interval
        if ordinal > ordinal_high:
            return
        day = date.fromordinal(ordinal)
        month_index = day.month - 1
        if months >> month_index & 1:
            month_end = min(ordinal + _days_in_month_from(day) - 1, ordinal_high)
            start = datetime.combine(day, local_time)
            chunk = [start]
            last_selected = ordinal
            while True:
                index += 1
                index += steps[index % weekday_residues]
                next_ordinal = first_period + index * interval
                if next_ordinal > month_end:
                    break
                chunk.append(start + _DAYS[next_ordinal - ordinal])
                last_selected = next_ordinal
            yield chunk
        else:
            if ordinal - last_selected > days_per_cycle:
                return  # a whole cycle of eligible dates without a wanted one
            month_start = _next_wanted_month(day.year * 12 + month_index, months_ahead)
            if month_start is None:
                return
            index = -(-(month_start - first_period) // interval)  # month_start > first_period
            index += steps[index % weekday_residues]


def _chunks_h(
    pattern: Pattern, zone: tzinfo, first_period: int, ordinal_low: int, ordinal_high: int
) -> Iterator[list[datetime]]:
    interval = pattern.interval
    local_midnight = _day_times(pattern)[0].replace(tzinfo=zone)
    months, weekdays = pattern.months, pattern.weekdays
    months_ahead = _months_ahead(months)
    # Eligible hour ``index`` is hour number first_period + index * interval; its weekday
    # ((hour_number // 24) % 7 = (hour_number % 168) // 24) repeats with index modulo
    # week_hour_residues.
    week_hour_residues = 168 // gcd(168, interval)
    steps = _residue_steps(
        [
            bool(weekdays >> (((first_period + r * interval) % 168 // 24 + 6) % 7) & 1)
            for r in range(week_hour_residues)
        ]
    )
    if steps is None:
        return
    hours_per_cycle = 146097 * 24 // gcd(146097 * 24, interval) * interval
    index = _first_index(first_period, interval, ordinal_low * 24)
    index += steps[index % week_hour_residues]
    last_selected = first_period + index * interval - 1
    while True:
        hour_number = first_period + index * interval
        ordinal = hour_number // 24
        if ordinal > ordinal_high:
            return
        day = date.fromordinal(ordinal)
        month_index = day.month - 1
        if months >> month_index & 1:
            start = datetime.combine(day, local_midnight)
            day_start = ordinal * 24
            # Every eligible hour of this date shares its weekday and month.
            chunk = [start + _HOURS[hour] for hour in range(hour_number - day_start, 24, interval)]
            last_selected = day_start + 24 - 1
            index = -(-(day_start + 24 - first_period) // interval)  # next date, > first_period
            index += steps[index % week_hour_residues]
            yield chunk
        else:
            if hour_number - last_selected > hours_per_cycle:
                return  # a whole cycle of eligible hours without a wanted one
            month_start = _next_wanted_month(day.year * 12 + month_index, months_ahead)
            if month_start is None:
                return
            index = -(-(month_start * 24 - first_period) // interval)  # > first_period
            index += steps[index % week_hour_residues]


def _day_times(pattern: Pattern) -> tuple[time, tuple[timedelta, ...]]:
    """The wall time of a selected date's (for ``H``: hour's) first fire, and how long after
    it its other fires come, ascending.

    The chunk functions build the first fire of each selected date (hour); every other time is
    the same wall time moved forward within that date (hour), so wall order is kept.
    """
    return _day_times_of(pattern.frequency == "H", pattern.times_of_day)


@lru_cache(maxsize=256)
def _day_times_of(hourly: bool, times: tuple[time, ...]) -> tuple[time, tuple[timedelta, ...]]:
    if hourly:
        seconds = sorted({t.minute * 60 + t.second for t in times})
        first = time(0, seconds[0] // 60, seconds[0] % 60)
    else:
        seconds = [t.hour * 3600 + t.minute * 60 + t.second for t in times]
        first = times[0]
    return first, tuple(timedelta(seconds=s - seconds[0]) for s in seconds[1:])


def _with_later_times(
    chunks: Iterable[list[datetime]], later: tuple[timedelta, ...]
) -> Iterator[list[datetime]]:
    """Each chunk with, after each of its first fires, the other fires of its date (hour)."""
    for chunk in chunks:
        yield [fire for first in chunk for fire in (first, *[first + d for d in later])]


_CHUNKS = {"Y": _chunks_y, "M": _chunks_m, "W": _chunks_w, "D": _chunks_d, "H": _chunks_h}


# --------------------------------------------------------------------------
# Local -> instant, ordering, de-duplication
# --------------------------------------------------------------------------


def _instants_fixed(
    chunks: Iterable[list[datetime]], zone: timezone, after: datetime | None
) -> Iterator[datetime]:
    """A fixed offset keeps wall order and never maps two wall times to one instant."""
    convert = zone is not UTC
    for chunk in chunks:
        for local in chunk:
            if convert:
                try:
                    local = local.astimezone(UTC)
                except OverflowError:
                    continue
            if after is None or local > after:
                yield local


def _instants_zone(chunks: Iterable[list[datetime]], after: datetime | None) -> Iterator[datetime]:
    """Instants in ascending order, each once.

    Every later candidate has a wall time on or after the first date d of the current chunk;
    as a UTC offset is less than 24 h, its instant is after (d - 1 day) 00:00 UTC. Anything
    in the heap up to that bound is final.
    """
    heap: list[datetime] = []
    previous: datetime | None = None
    bound_ordinal = 0
    bound: datetime | None = None
    for chunk in chunks:
        if heap:
            ordinal = chunk[0].toordinal() - 1
            if ordinal != bound_ordinal:
                bound_ordinal = ordinal
                bound = (
                    datetime.combine(date.fromordinal(ordinal), _MIDNIGHT_UTC)
                    if ordinal >= 1
                    else None
                )
            if bound is not None:
                while heap and heap[0] <= bound:
                    instant = heapq.heappop(heap)
                    if instant != previous:
                        previous = instant
                        yield instant
        for local in chunk:
            try:
                instant = local.astimezone(UTC)
            except OverflowError:
                continue
            if after is None or instant > after:
                heapq.heappush(heap, instant)
    while heap:
        instant = heapq.heappop(heap)
        if instant != previous:
            previous = instant
            yield instant


def _iterate(
    pattern: Pattern, anchor: datetime, zone: tzinfo, after: datetime, until: datetime | None
) -> Iterator[datetime]:
    if anchor.utcoffset() is None or after.utcoffset() is None:
        raise ValueError("anchor and after must be timezone-aware")
    if never_fires(pattern):
        return iter(())
    try:
        after_utc: datetime | None = after.astimezone(UTC)
    except OverflowError:
        if after.year > 5000:
            return iter(())  # after the last representable instant
        after_utc = None  # before the first one
    # Local dates that can hold a fire in (after, until]: a UTC offset is under 24 h.
    ordinal_low = max(after_utc.toordinal() - 1, 1) if after_utc is not None else 1
    ordinal_high = _LAST_ORDINAL
    if until is not None:
        try:
            ordinal_high = min(until.astimezone(UTC).toordinal() + 1, _LAST_ORDINAL)
        except OverflowError:
            if until.year < 5000:
                return iter(())
    if ordinal_high < ordinal_low:
        return iter(())
    anchor_ordinal, anchor_hour = _local_ordinal_hour(anchor, zone)
    first_period = _period(pattern.frequency, anchor_ordinal, anchor_hour)
    chunks = _CHUNKS[pattern.frequency](pattern, zone, first_period, ordinal_low, ordinal_high)
    later = _day_times(pattern)[1]
    if later:
        chunks = _with_later_times(chunks, later)
    if isinstance(zone, timezone):
        return _instants_fixed(chunks, zone, after_utc)
    return _instants_zone(chunks, after_utc)


# --------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # Less "localtime", which some hosts' zone folders hold: no IANA name but the host's own
    # zone, which another host (the one cron runs on) would read as another.
    return frozenset(available_timezones()) - {"localtime"}


def is_zone_name(name: str) -> bool:
    """True when ``name`` is the IANA name of a zone this host's zone database holds."""
    return name in _zone_names()


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every name :func:`is_zone_name` takes, sorted."""
    return tuple(sorted(_zone_names()))


@lru_cache(maxsize=512)
def zone_named(name: str) -> tzinfo:
    """The zone of an IANA name; ValueError when the zone database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def zone_of(pattern: Pattern, default: tzinfo) -> tzinfo:
    """The zone ``pattern`` is read in: its own ``timezone``, or ``default`` when it has none."""
    return default if pattern.timezone is None else zone_named(pattern.timezone)


def _fires(
    pattern: Pattern, anchor: datetime, zone: tzinfo, after: datetime, until: datetime | None
) -> Iterator[datetime]:
    """The fire instants in the pattern's zone up to its ``until``, without the skipped ones."""
    end = pattern.until
    if end is not None and until is not None:
        until = min(until, end)
    until = end if until is None else until
    fires = _iterate(pattern, anchor, zone_of(pattern, zone), after, until)
    if end is not None:
        fires = takewhile(partial(operator.ge, end), fires)
    if not pattern.skip:
        return fires
    skip = frozenset(pattern.skip)
    return (f for f in fires if f not in skip)


def iter_fires(
    pattern: Pattern,
    anchor: datetime,
    zone: tzinfo,
    after: datetime,
    until: datetime | None = None,
) -> Iterator[datetime]:
    """Fire instants strictly after `after`, ascending, each once, as aware UTC datetimes; with
    `until`, only those up to it (the iteration then reads no local dates past it).

    `zone` is the zone of a pattern without a `timezone` of its own; the instants in
    `pattern.skip` are left out (as in `next_fires` and `fires_between`).
    """
    fires = _fires(pattern, anchor, zone, after, until)
    if until is None:
        return fires
    return takewhile(lambda f: f <= until, fires)


def next_fires(
    pattern: Pattern, anchor: datetime, zone: tzinfo, after: datetime, count: int
) -> list[datetime]:
    """The first `count` fire instants strictly after `after`."""
    if count <= 0:
        return []
    return list(islice(_fires(pattern, anchor, zone, after, None), count))


def fires_between(
    pattern: Pattern, anchor: datetime, zone: tzinfo, after: datetime, until: datetime
) -> list[datetime]:
    """Every fire instant f with after < f <= until, ascending."""
    fires: list[datetime] = []
    for instant in _fires(pattern, anchor, zone, after, until):
        if instant > until:
            break
        fires.append(instant)
    return fires


class Fire(NamedTuple):
    """A fire instant as its schedule's zone shows it."""

    instant: datetime  # aware UTC
    local: datetime  # the same instant in the pattern's zone
    #: The wall time the pattern asks for does not exist that day (a DST gap), so the instant
    #: is that of a later wall time (rule 4 of docs/RECURRENCE.md, Rules).
    shifted: bool


_DAY = timedelta(days=1)


def fire_details(
    pattern: Pattern, anchor: datetime, zone: tzinfo, fires: Iterable[datetime]
) -> list[Fire]:
    """Each of ``fires`` (ascending fire instants of ``pattern`` with this anchor and default
    zone) with its local time, and whether it was shifted out of a DST gap.

    A fire is shifted when its own wall time is not one the pattern selects, i.e. it is the
    instant of a selected wall time inside a gap. Only a fire whose wall time is one of the
    pattern's times of day (for ``H``: their minutes and seconds) and that follows a change to
    a larger UTC offset within the day before can be either; for those, whether the pattern
    selects the wall time itself is asked of the engine in the fixed offset of that wall time.
    (A zone changes its offset at most once within a day: the previous fire, when it is at most
    a day before, has the same offset and followed no such change, tells that none happened
    since.)
    """
    z = zone_of(pattern, zone)
    instants = list(fires)
    local_times = [instant.astimezone(z) for instant in instants]
    if z.utcoffset(None) is not None:  # one offset for all time (UTC, Etc/GMT+5): no gap
        return [
            Fire(instant, local, False)
            for instant, local in zip(instants, local_times, strict=True)
        ]
    offsets = [local.utcoffset() for local in local_times]
    times = pattern.times_of_day
    if pattern.frequency == "H":
        minutes = {(t.minute, t.second) for t in times}
        on_time = [(t.minute, t.second) in minutes for t in local_times]
    else:
        wall_times = set(times)
        on_time = [t.time().replace(fold=0) in wall_times for t in local_times]
    shifted = [not x for x in on_time]
    # A fire need not be checked when the fire before it is at most a day before, has the same
    # offset and followed no change: then no change happened within the day before it either.
    # So check the first fire, those after a change of offset or a longer pause, and the one
    # after each fire that followed a change.
    pending = [
        i
        for i in range(len(instants) - 1, 0, -1)
        if offsets[i] != offsets[i - 1] or instants[i] - instants[i - 1] > _DAY
    ]
    if instants:
        pending.append(0)  # a stack, smallest index on top
    plain: Pattern | None = None
    checked = -1
    while pending:
        i = pending.pop()
        if i <= checked:
            continue
        checked = i
        if not _offset_grew(instants[i], offsets[i], z):
            continue
        if i + 1 < len(instants):
            pending.append(i + 1)
        if on_time[i]:
            if plain is None:
                plain = dataclasses.replace(pattern, timezone=None, skip=(), until=None)
            shifted[i] = not _selects_wall_time(plain, anchor.astimezone(z), local_times[i])
    return list(map(Fire, instants, local_times, shifted))


def _offset_grew(instant: datetime, offset: timedelta | None, zone: tzinfo) -> bool:
    """Whether the UTC offset ``offset`` at ``instant`` is larger than a day before (a gap lies
    between: gaps are at most a day long, 24 h on Pacific/Apia in 2011)."""
    try:
        before = (instant - _DAY).astimezone(zone).utcoffset()
    except OverflowError:
        return False
    return before is not None and offset is not None and offset > before


def _selects_wall_time(plain: Pattern, anchor_local: datetime, local: datetime) -> bool:
    """Whether ``plain`` (no zone, no skip) selects the wall time of ``local``: asked in the
    fixed offset of ``local``, where every wall time exists once and the periods, counted from
    the anchor's wall time, are the same."""
    offset = local.utcoffset()
    assert offset is not None
    fixed = timezone(offset)
    wall = local.replace(tzinfo=fixed)
    anchor = anchor_local.replace(tzinfo=fixed)
    return bool(fires_between(plain, anchor, fixed, wall - _ONE_SECOND, wall))
