"""Recurrence engine: the fire instants of a hold schedule (CONTRACT.md section 7).

Pure: standard library only, no clock; the start instant is an argument.

How it stays fast for every valid pattern:

- Periods are numbered with integers (``Y`` year, ``M`` year*12 + month-1, ``W`` week number,
  ``D`` date ordinal, ``H`` ordinal*24 + hour). The first eligible period at or after the start
  is reached arithmetically from the anchor's period; nothing iterates from the anchor.
- Which days of a period are selected depends only on the period's calendar *type*: for ``Y``
  (leap, weekday of 1 January), for ``M`` (month, leap, weekday of the 1st), for ``W`` (month of
  the Monday, how many of the week's days are still in that month). These selections are
  computed once per (frequency, months, weekdays, indices) for every type.
- ``D`` and ``H`` skip arithmetically over disallowed weekdays (a residue table over the
  interval) and over months whose bit is unset.
- The Gregorian calendar repeats every 400 years (146097 days, 20871 weeks, 4800 months), and
  so does the pattern of eligible periods after n / gcd(n, interval) of them: ``Y``, ``M`` and
  ``W`` record the productive periods of their first cycle and replay them, and a whole cycle
  that selects nothing proves that nothing ever will.
- Local times are turned into instants with zoneinfo (fold=0). A DST gap can put a candidate
  after a later one (by up to the size of the gap, 24 h on Pacific/Apia in 2011), so instants
  are held in a small heap until no later candidate can precede them, then emitted once each.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
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
    "iter_fires",
    "never_fires",
    "next_fires",
    "zone_named",
    "zone_of",
]

FREQUENCIES = ("Y", "M", "W", "D", "H")
ALL_MONTHS = 0xFFF  # bit 0 = January ... bit 11 = December
ALL_WEEKDAYS = 0x7F  # bit 0 = Monday ... bit 6 = Sunday

_MAX_ORD = date.max.toordinal()  # 9999-12-31; ordinal 1 (0001-01-01) is a Monday
_MIDNIGHT_UTC = time(0, tzinfo=UTC)
_DAYS = tuple(timedelta(days=i) for i in range(367))
_HOURS = tuple(timedelta(hours=i) for i in range(24))
_ONE_SECOND = timedelta(seconds=1)

_MONTH_LEN = (
    (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
    (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
)


@dataclass(frozen=True, slots=True)
class Pattern:
    """The recurrence fields of a schedule (CONTRACT.md sections 5 and 7)."""

    frequency: str  # one of FREQUENCIES
    time_of_day: time  # naive time, seconds allowed, microsecond 0
    interval: int = 1  # >= 1
    indices: tuple[int, ...] = ()  # non-zero, each in -366..366; () = all
    months: int = ALL_MONTHS  # 0..4095
    weekdays: int = ALL_WEEKDAYS  # 0..127
    timezone: str | None = None  # IANA name of the zone the rules are read in; None: the default
    skip: tuple[datetime, ...] = ()  # fire instants that do not fire (aware; kept as UTC)

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
        if self.interval < 1:
            raise ValueError("interval must be >= 1")
        if any(i == 0 or not -366 <= i <= 366 for i in self.indices):
            raise ValueError("indices must be non-zero and within -366..366")
        if not 0 <= self.months <= ALL_MONTHS:
            raise ValueError("months must be within 0..4095")
        if not 0 <= self.weekdays <= ALL_WEEKDAYS:
            raise ValueError("weekdays must be within 0..127")


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


def _select(cands: list[int], indices: tuple[int, ...]) -> tuple[int, ...]:
    """The candidates kept by ``indices`` (1-based, negative from the end), ascending, once."""
    if not indices:
        return tuple(cands)
    n = len(cands)
    kept = {cands[i - 1] if i > 0 else cands[n + i] for i in indices if -n <= i <= n}
    return tuple(sorted(kept))


@lru_cache(maxsize=256)
def _type_table(
    frequency: str, months: int, weekdays: int, indices: tuple[int, ...]
) -> tuple[tuple[int, ...], ...]:
    """Selected day offsets for every calendar type of a ``Y``, ``M`` or ``W`` period.

    Y: key leap*7 + weekday of 1 January; offsets from 1 January.
    M: key (month-1)*14 + leap*7 + weekday of the 1st; offsets from the 1st.
    W: key (month of the Monday - 1)*8 + s, s = days of the week still in that month (1..7);
       offsets from the Monday.
    """
    table: list[tuple[int, ...]] = []
    if frequency == "Y":
        for leap in (0, 1):
            for wd1 in range(7):
                cands: list[int] = []
                doy = 0
                for mo, length in enumerate(_MONTH_LEN[leap]):
                    if months >> mo & 1:
                        cands.extend(
                            d for d in range(doy, doy + length) if weekdays >> ((wd1 + d) % 7) & 1
                        )
                    doy += length
                table.append(_select(cands, indices))
    elif frequency == "M":
        for mo in range(12):
            for leap in (0, 1):
                for wd1 in range(7):
                    if months >> mo & 1:
                        length = _MONTH_LEN[leap][mo]
                        cands = [d for d in range(length) if weekdays >> ((wd1 + d) % 7) & 1]
                        table.append(_select(cands, indices))
                    else:
                        table.append(())
    elif frequency == "W":
        for mo in range(12):
            for s in range(8):
                cands = [
                    i
                    for i in range(7)
                    if weekdays >> i & 1 and months >> (mo if i < s else (mo + 1) % 12) & 1
                ]
                table.append(_select(cands, indices) if s else ())
    else:
        raise ValueError(frequency)
    return tuple(table)


def _week_offsets_truncated(p: Pattern, monday: date) -> tuple[int, ...]:
    """Selection of the last, partial week of the calendar (the days after 9999-12-31 do not
    exist, so positions are counted over the days that do)."""
    days = _MAX_ORD - monday.toordinal() + 1
    mo = monday.month - 1
    s = _MONTH_LEN[_is_leap(monday.year)][mo] - monday.day + 1
    cands = [
        i
        for i in range(min(days, 7))
        if p.weekdays >> i & 1 and p.months >> (mo if i < s else (mo + 1) % 12) & 1
    ]
    return _select(cands, p.indices)


def never_fires(pattern: Pattern) -> bool:
    """True when the pattern selects nothing whatever its anchor (a cheap structural check).

    False does not promise a fire: an interval can still keep every eligible period away from
    the selected days for a given anchor (that case is detected while iterating).
    """
    if not pattern.months or not pattern.weekdays:
        return True
    f = pattern.frequency
    if f == "H":
        return False
    if f == "D":
        return bool(pattern.indices) and 1 not in pattern.indices and -1 not in pattern.indices
    # Every calendar type occurs in every 400-year cycle.
    return not any(_type_table(f, pattern.months, pattern.weekdays, pattern.indices))


# --------------------------------------------------------------------------
# Instants and periods
# --------------------------------------------------------------------------


def _utc_seconds(dt: datetime) -> int:
    """The instant as whole UTC seconds on the scale ordinal*86400 + seconds of the day."""
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("datetimes must be timezone-aware")
    wall = dt.toordinal() * 86400 + dt.hour * 3600 + dt.minute * 60 + dt.second
    return wall - offset // _ONE_SECOND


def _local_ordinal_hour(instant: datetime, zone: tzinfo) -> tuple[int, int]:
    """Local (date ordinal, hour) of an instant in ``zone``; also just outside the datetime
    range (ordinal 0 or 3652060), where no zone has transitions."""
    try:
        local = instant.astimezone(zone)
        return local.toordinal(), local.hour
    except OverflowError:
        pass
    secs = _utc_seconds(instant)
    probe = min(max(secs, 3 * 86400), (_MAX_ORD - 2) * 86400)
    probe_dt = datetime.combine(date.fromordinal(probe // 86400), _MIDNIGHT_UTC) + timedelta(
        seconds=probe % 86400
    )
    offset = probe_dt.astimezone(zone).utcoffset()
    assert offset is not None
    secs += offset // _ONE_SECOND
    return secs // 86400, secs % 86400 // 3600


def _year_month(ordinal: int) -> tuple[int, int]:
    """(year, month) of a date ordinal, one day past either end of the range included."""
    if ordinal < 1:
        return 0, 12
    if ordinal > _MAX_ORD:
        return 10000, 1
    d = date.fromordinal(ordinal)
    return d.year, d.month


def _period(frequency: str, ordinal: int, hour: int) -> int:
    if frequency == "Y":
        return _year_month(ordinal)[0]
    if frequency == "M":
        y, m = _year_month(ordinal)
        return y * 12 + m - 1
    if frequency == "W":
        return (ordinal - 1) // 7
    if frequency == "D":
        return ordinal
    return ordinal * 24 + hour


def _first_eligible(p0: int, k: int, p: int) -> int:
    """The first period >= p among p0, p0 + k, p0 + 2k, ..."""
    if p <= p0:
        return p0
    return p0 + -(-(p - p0) // k) * k


@lru_cache(maxsize=64)
def _months_ahead(months: int) -> tuple[int, ...]:
    """For each month 0..11, how many months ahead (1..12) the next month with its bit set is."""
    return tuple(
        next(step for step in range(1, 13) if months >> ((mo + step) % 12) & 1) for mo in range(12)
    )


def _residue_steps(ok: list[bool]) -> list[int] | None:
    """For each residue r, how far to the next residue (r + d) % n that is ok; None if none."""
    n = len(ok)
    if not any(ok):
        return None
    steps = [0] * n
    for r in range(n):
        d = 0
        while not ok[(r + d) % n]:
            d += 1
        steps[r] = d
    return steps


# --------------------------------------------------------------------------
# Candidates, one chunk per productive period (local aware datetimes, wall order)
# --------------------------------------------------------------------------


# Y, M and W record the productive eligible periods of their first 400-year cycle (found by
# scanning, with unwanted months skipped) and replay that list for every later cycle: the
# calendar and the interval's phase repeat exactly, so the cost is one cycle at most plus the
# fires themselves, however sparse the rule.


def _chunks_y(p: Pattern, zone: tzinfo, p0: int, o_lo: int, o_hi: int) -> Iterator[list[datetime]]:
    table = _type_table("Y", p.months, p.weekdays, p.indices)
    k = p.interval
    t = p.time_of_day.replace(tzinfo=zone)
    y_hi = date.fromordinal(o_hi).year
    j0 = (_first_eligible(p0, k, date.fromordinal(o_lo).year) - p0) // k
    cycle = 400 // gcd(400, k)  # eligible years per 400-year cycle
    record: list[tuple[int, tuple[int, ...]]] = []
    for j in range(j0, j0 + cycle):
        y = p0 + j * k
        if y > y_hi:
            return
        jan1 = datetime.combine(date(y, 1, 1), t)
        offsets = table[_is_leap(y) * 7 + jan1.weekday()]
        if offsets:
            record.append((j - j0, offsets))
            yield [jan1 + _DAYS[i] for i in offsets]
    if not record:
        return  # a whole cycle without a selection: never
    while True:
        j0 += cycle
        for r, offsets in record:
            y = p0 + (j0 + r) * k
            if y > y_hi:
                return
            jan1 = datetime.combine(date(y, 1, 1), t)
            yield [jan1 + _DAYS[i] for i in offsets]


def _chunks_m(p: Pattern, zone: tzinfo, p0: int, o_lo: int, o_hi: int) -> Iterator[list[datetime]]:
    table = _type_table("M", p.months, p.weekdays, p.indices)
    k = p.interval
    tod = p.time_of_day
    hh, mm, ss = tod.hour, tod.minute, tod.second
    months = p.months
    y, mo = _year_month(o_lo)
    y_hi = _year_month(o_hi)[0]
    j0 = (_first_eligible(p0, k, y * 12 + mo - 1) - p0) // k
    # Eligible period j falls in month-of-year (p0 + j*k) % 12: skip unset months by residue.
    c12 = 12 // gcd(12, k)
    steps = _residue_steps([bool(months >> ((p0 + r * k) % 12) & 1) for r in range(c12)])
    if steps is None:
        return
    cycle = 4800 // gcd(4800, k)  # eligible months per 400-year cycle
    record: list[tuple[int, tuple[int, ...]]] = []
    j = j0
    while True:
        j += steps[j % c12]
        if j >= j0 + cycle:
            break
        y, mi = divmod(p0 + j * k, 12)
        if y > y_hi:
            return
        first = datetime(y, mi + 1, 1, hh, mm, ss, tzinfo=zone)
        offsets = table[mi * 14 + _is_leap(y) * 7 + first.weekday()]
        if offsets:
            record.append((j - j0, offsets))
            yield [first + _DAYS[i] for i in offsets]
        j += 1
    if not record:
        return
    while True:
        j0 += cycle
        for r, offsets in record:
            y, mi = divmod(p0 + (j0 + r) * k, 12)
            if y > y_hi:
                return
            first = datetime(y, mi + 1, 1, hh, mm, ss, tzinfo=zone)
            yield [first + _DAYS[i] for i in offsets]


def _chunks_w(p: Pattern, zone: tzinfo, p0: int, o_lo: int, o_hi: int) -> Iterator[list[datetime]]:
    table = _type_table("W", p.months, p.weekdays, p.indices)
    k = p.interval
    t = p.time_of_day.replace(tzinfo=zone)
    months = p.months
    ahead = _months_ahead(months)
    w0 = _first_eligible(p0, k, (o_lo - 1) // 7)
    cycle = 20871 // gcd(20871, k) * k  # weeks spanned by one cycle of eligible weeks
    record: list[tuple[int, tuple[int, ...]]] = []
    w = w0
    while w < w0 + cycle:
        monday = 7 * w + 1
        if monday > o_hi:
            return
        d0 = date.fromordinal(monday)
        y = d0.year
        mo = d0.month - 1
        s = _MONTH_LEN[y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)][mo] - d0.day + 1
        if s > 7:
            s = 7
        if monday + 6 > _MAX_ORD:
            offsets = _week_offsets_truncated(p, d0)
        else:
            offsets = table[mo * 8 + s]
        if offsets:
            record.append((w - w0, offsets))
            base = datetime.combine(d0, t)
            yield [base + _DAYS[i] for i in offsets]
            w += k
        elif months >> mo & 1 or (s < 7 and months >> ((mo + 1) % 12) & 1):
            w += k
        else:
            # No month of this week is wanted: go to the week of the next wanted month.
            m = y * 12 + mo + (s < 7)
            y, m = divmod(m + ahead[m % 12], 12)
            if y > 9999:
                return
            w = _first_eligible(p0, k, (date(y, m + 1, 1).toordinal() - 1) // 7)
    if not record:
        return
    while True:
        w0 += cycle
        for r, offsets in record:
            monday = 7 * (w0 + r) + 1
            if monday > o_hi:
                return
            d0 = date.fromordinal(monday)
            if monday + 6 > _MAX_ORD:
                offsets = _week_offsets_truncated(p, d0)
                if not offsets:
                    return
            base = datetime.combine(d0, t)
            yield [base + _DAYS[i] for i in offsets]


def _chunks_d(p: Pattern, zone: tzinfo, p0: int, o_lo: int, o_hi: int) -> Iterator[list[datetime]]:
    if p.indices and 1 not in p.indices and -1 not in p.indices:
        return
    k = p.interval
    t = p.time_of_day.replace(tzinfo=zone)
    months, weekdays = p.months, p.weekdays
    ahead = _months_ahead(months)
    # Eligible date j is p0 + j*k; its weekday repeats with j modulo c7.
    c7 = 7 // gcd(7, k)
    steps = _residue_steps([bool(weekdays >> ((p0 + r * k + 6) % 7) & 1) for r in range(c7)])
    if steps is None:
        return
    cycle_days = 146097 // gcd(146097, k) * k
    j = (_first_eligible(p0, k, o_lo) - p0) // k
    j += steps[j % c7]
    last = p0 + j * k - 1  # last selected date (or where the search started)
    while True:
        o = p0 + j * k
        if o > o_hi:
            return
        d = date.fromordinal(o)
        mo = d.month - 1
        if months >> mo & 1:
            month_end = min(o + _MONTH_LEN[_is_leap(d.year)][mo] - d.day, o_hi)
            base = datetime.combine(d, t)
            chunk = [base]
            last = o
            while True:
                j += 1
                j += steps[j % c7]
                o2 = p0 + j * k
                if o2 > month_end:
                    break
                chunk.append(base + _DAYS[o2 - o])
                last = o2
            yield chunk
        else:
            if o - last > cycle_days:
                return  # a whole cycle of eligible dates without a wanted one
            y, m = divmod(d.year * 12 + mo + ahead[mo], 12)
            if y > 9999:
                return
            j = -(-(date(y, m + 1, 1).toordinal() - p0) // k)
            j += steps[j % c7]


def _chunks_h(p: Pattern, zone: tzinfo, p0: int, o_lo: int, o_hi: int) -> Iterator[list[datetime]]:
    k = p.interval
    t0 = p.time_of_day.replace(hour=0, tzinfo=zone)
    months, weekdays = p.months, p.weekdays
    ahead = _months_ahead(months)
    # Eligible hour j is p0 + j*k; its weekday ((p // 24) % 7 = (p % 168) // 24) repeats with
    # j modulo c168.
    c168 = 168 // gcd(168, k)
    steps = _residue_steps(
        [bool(weekdays >> (((p0 + r * k) % 168 // 24 + 6) % 7) & 1) for r in range(c168)]
    )
    if steps is None:
        return
    cycle_hours = 146097 * 24 // gcd(146097 * 24, k) * k
    j = (_first_eligible(p0, k, o_lo * 24) - p0) // k
    j += steps[j % c168]
    last = p0 + j * k - 1
    while True:
        h = p0 + j * k
        o = h // 24
        if o > o_hi:
            return
        d = date.fromordinal(o)
        mo = d.month - 1
        if months >> mo & 1:
            base = datetime.combine(d, t0)
            day_start = o * 24
            # Every eligible hour of this date shares its weekday and month.
            chunk = [base + _HOURS[hh] for hh in range(h - day_start, 24, k)]
            last = day_start + 24 - 1
            j = -(-(day_start + 24 - p0) // k)
            j += steps[j % c168]
            yield chunk
        else:
            if h - last > cycle_hours:
                return  # a whole cycle of eligible hours without a wanted one
            y, m = divmod(d.year * 12 + mo + ahead[mo], 12)
            if y > 9999:
                return
            j = -(-(date(y, m + 1, 1).toordinal() * 24 - p0) // k)
            j += steps[j % c168]


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
            o = chunk[0].toordinal() - 1
            if o != bound_ordinal:
                bound_ordinal = o
                bound = datetime.combine(date.fromordinal(o), _MIDNIGHT_UTC) if o >= 1 else None
            if bound is not None:
                while heap and heap[0] <= bound:
                    x = heapq.heappop(heap)
                    if x != previous:
                        previous = x
                        yield x
        for local in chunk:
            try:
                x = local.astimezone(UTC)
            except OverflowError:
                continue
            if after is None or x > after:
                heapq.heappush(heap, x)
    while heap:
        x = heapq.heappop(heap)
        if x != previous:
            previous = x
            yield x


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
    o_lo = max(after_utc.toordinal() - 1, 1) if after_utc is not None else 1
    o_hi = _MAX_ORD
    if until is not None:
        try:
            o_hi = min(until.astimezone(UTC).toordinal() + 1, _MAX_ORD)
        except OverflowError:
            if until.year < 5000:
                return iter(())
    if o_hi < o_lo:
        return iter(())
    a_ord, a_hour = _local_ordinal_hour(anchor, zone)
    p0 = _period(pattern.frequency, a_ord, a_hour)
    chunks = _CHUNKS[pattern.frequency](pattern, zone, p0, o_lo, o_hi)
    if isinstance(zone, timezone):
        return _instants_fixed(chunks, zone, after_utc)
    return _instants_zone(chunks, after_utc)


# --------------------------------------------------------------------------
# Public interface
# --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone_name(name: str) -> bool:
    """True when ``name`` is the IANA name of a zone this host's zone database holds."""
    return name in _zone_names()


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
    """The fire instants in the pattern's zone, without the skipped ones."""
    fires = _iterate(pattern, anchor, zone_of(pattern, zone), after, until)
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
    out: list[datetime] = []
    for f in _fires(pattern, anchor, zone, after, until):
        if f > until:
            break
        out.append(f)
    return out


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
    instant of a selected wall time inside a gap. Only a fire whose wall time has the pattern's
    time of day (for ``H``: its minutes and seconds) and that follows a change to a larger UTC
    offset within the day before can be either; for those, whether the pattern selects the wall
    time itself is asked of the engine in the fixed offset of that wall time. (A zone changes
    its offset at most once within a day: the previous fire, when it is at most a day before,
    has the same offset and followed no such change, tells that none happened since.)
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
    tod = pattern.time_of_day
    if pattern.frequency == "H":
        on_time = [(t.minute, t.second) == (tod.minute, tod.second) for t in local_times]
    else:
        on_time = [t.time() == tod for t in local_times]
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
                plain = dataclasses.replace(pattern, timezone=None, skip=())
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
