"""Brute-force reference implementation of the recurrence rules of docs/RECURRENCE.md.

Written from the rules alone and sharing no code with
``pytm4srv.recurrence``: it walks every local date of a window, builds every
candidate, groups candidates by period, applies ``interval`` and ``indices``
and maps local wall times to instants with its own scan of the zone's UTC
offsets (no PEP 495 ``fold`` arithmetic).  It is slow on purpose and only
meant for bounded windows.

The oracle works on the raw schedule fields, not on ``Pattern``, so that it
does not depend on the engine's data model either: the zone is passed in as
the schedule's own, and ``skip`` is filtered here by plain set membership.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache

ONE_DAY = timedelta(days=1)
ONE_HOUR = timedelta(hours=1)
ONE_SECOND = timedelta(seconds=1)
_STEP = timedelta(hours=6)

FREQUENCIES = ("Y", "M", "W", "D", "H")

# Instants at which fromutc() is evaluated are clamped into this range so
# that the local result never leaves the datetime range; the offsets right at
# the edges of the range are constant (no transitions in early January of
# year 1 nor in the last days of December 9999 for any real zone).
_SAFE_MIN = datetime(1, 1, 3)
_SAFE_MAX = datetime(9999, 12, 29)

# Ordinals of the first and last representable dates.
_ORD_MIN = date.min.toordinal()  # 1, a Monday
_ORD_MAX = date.max.toordinal()


# --------------------------------------------------------------------------
# UTC offsets of a zone, as a piecewise-constant function of the UTC instant
# --------------------------------------------------------------------------


def _offset_at(zone: tzinfo, u: datetime) -> timedelta:
    """UTC offset in force at the naive UTC instant ``u`` (local - UTC)."""
    u = min(max(u, _SAFE_MIN), _SAFE_MAX)
    local = zone.fromutc(u.replace(tzinfo=zone))
    return local.replace(tzinfo=None) - u


def utc_offset(zone: tzinfo, instant: datetime) -> timedelta:
    """UTC offset of the zone at an aware instant."""
    return _offset_at(zone, instant.astimezone(UTC).replace(tzinfo=None))


def _zone_key(zone: tzinfo) -> object:
    return getattr(zone, "key", None) or zone


_ZONES: dict[object, tzinfo] = {}


@cache
def _year_transitions(
    key: object, year: int
) -> tuple[timedelta, tuple[tuple[datetime, timedelta], ...]]:
    """Offset at the start of UTC ``year`` and every (instant, new offset) change in it.

    Sampled every 6 hours; each change between two samples is located to the second
    by bisection (tz transitions fall on whole seconds and never come twice
    within 6 hours; the fold=0 cross-check in the tests would notice otherwise).
    """
    zone = _ZONES[key]
    start = datetime(year, 1, 1)
    end = datetime(year + 1, 1, 1) if year < 9999 else datetime.max.replace(microsecond=0)
    first = _offset_at(zone, start)
    changes: list[tuple[datetime, timedelta]] = []
    prev_u, prev_o = start, first
    u = start
    while u < end:
        nxt = u + _STEP if end - u > _STEP else end
        o = _offset_at(zone, nxt)
        if o != prev_o:
            lo, hi = prev_u, nxt  # offset(lo) == prev_o, offset(hi) == o
            while hi - lo > ONE_SECOND:
                mid = lo + timedelta(seconds=(hi - lo) // ONE_SECOND // 2)
                if _offset_at(zone, mid) == prev_o:
                    lo = mid
                else:
                    hi = mid
            changes.append((hi, o))
        prev_u, prev_o = nxt, o
        u = nxt
    return first, tuple(changes)


def offset_segments(zone: tzinfo, lo: datetime, hi: datetime) -> list[tuple[datetime, timedelta]]:
    """[(start, offset)] covering the naive UTC range [lo, hi]; first start == lo."""
    key = _zone_key(zone)
    _ZONES.setdefault(key, zone)
    lo = max(lo, datetime.min)
    segs: list[tuple[datetime, timedelta]] = []
    for year in range(lo.year, hi.year + 1):
        first, changes = _year_transitions(key, year)
        if not segs:
            segs.append((lo, first))
        for when, off in changes:
            if when <= lo:
                segs[0] = (lo, off)
            elif when <= hi:
                segs.append((when, off))
    return segs


def transitions_between(zone: tzinfo, lo: datetime, hi: datetime) -> list[datetime]:
    """Aware UTC instants at which the zone's offset changes, lo < t <= hi (naive UTC in)."""
    return [s.replace(tzinfo=UTC) for s, _ in offset_segments(zone, lo, hi)[1:]]


def local_to_utc(zone: tzinfo, wall: datetime) -> datetime | None:
    """The instant of the naive local wall time ``wall``, as naive UTC, or None.

    An existing wall time maps to its earliest instant; a wall time inside a
    gap takes the offset in force before the gap.  None when the instant is
    not representable (outside years 1..9999).
    """
    return _solve(zone, wall)[0]


def wall_time_exists(zone: tzinfo, wall: datetime) -> bool:
    """True unless the naive local wall time ``wall`` lies in a gap of the zone."""
    return _solve(zone, wall)[1]


def _solve(zone: tzinfo, wall: datetime) -> tuple[datetime | None, bool]:
    """(rule 4's naive UTC instant of ``wall`` or None, whether ``wall`` exists)."""
    try:
        lo = wall - 2 * ONE_DAY
    except OverflowError:
        lo = datetime.min
    try:
        hi = wall + 2 * ONE_DAY
    except OverflowError:
        hi = datetime.max
    segs = offset_segments(zone, lo, hi)
    stops: list[datetime | None] = [s for s, _ in segs[1:]]
    stops.append(None)
    # Exact solutions u with u + offset(u) == wall; segments ascend, so the
    # first hit is the earliest instant.
    for (start, off), stop in zip(segs, stops, strict=True):
        try:
            u = wall - off
        except OverflowError:
            continue
        if start <= u and (stop is None or u < stop):
            return u, True
    # No solution: wall lies in a gap at some transition; use the offset before it.
    for (_, off_before), (t, off_after) in zip(segs, segs[1:], strict=False):
        if t + off_before <= wall < t + off_after:
            try:
                return wall - off_before, False
            except OverflowError:
                return None, False
    # Only left: wall times whose instant falls outside the datetime range.
    return None, True


# --------------------------------------------------------------------------
# Periods
# --------------------------------------------------------------------------


def _year_month_of_ordinal(ordinal: int) -> tuple[int, int]:
    if ordinal < _ORD_MIN:
        return 0, 12  # 0000-12-31 (at most one day before the range)
    if ordinal > _ORD_MAX:
        return 10000, 1  # 10000-01-01
    d = date.fromordinal(ordinal)
    return d.year, d.month


def _period_id(freq: str, ordinal: int, hour: int) -> int:
    """A number that grows by exactly 1 from one period to the next."""
    if freq == "Y":
        return _year_month_of_ordinal(ordinal)[0]
    if freq == "M":
        y, m = _year_month_of_ordinal(ordinal)
        return y * 12 + (m - 1)
    if freq == "W":
        return (ordinal - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    if freq == "D":
        return ordinal
    if freq == "H":
        return ordinal * 24 + hour
    raise ValueError(freq)


def _local_wall_of_instant(zone: tzinfo, instant: datetime) -> tuple[int, int]:
    """(local ordinal, local hour) of an aware instant; works past the datetime edges."""
    u = instant.astimezone(UTC).replace(tzinfo=None)
    off = _offset_at(zone, u)
    secs = u.hour * 3600 + u.minute * 60 + u.second + off // ONE_SECOND
    day_shift, sec_of_day = divmod(secs, 86400)
    return u.toordinal() + day_shift, sec_of_day // 3600


def _period_dates(freq: str, first: date, last: date) -> tuple[date, date]:
    """Widen [first, last] to whole periods of ``freq`` (clamped to the date range)."""
    if freq == "Y":
        a, b = date(first.year, 1, 1), date(last.year, 12, 31)
    elif freq == "M":
        a = first.replace(day=1)
        if last.month == 12:
            b = date(last.year, 12, 31)
        else:
            b = date(last.year, last.month + 1, 1) - ONE_DAY
    elif freq == "W":
        a_ord = max(first.toordinal() - first.weekday(), _ORD_MIN)
        b_ord = min(last.toordinal() + 6 - last.weekday(), _ORD_MAX)
        a, b = date.fromordinal(a_ord), date.fromordinal(b_ord)
    else:
        a, b = first, last
    return a, b


# --------------------------------------------------------------------------
# The oracle
# --------------------------------------------------------------------------


def _select(cands: list[datetime], indices: tuple[int, ...] | list[int]) -> list[datetime]:
    if not indices:
        return cands
    n = len(cands)
    out = []
    for i in indices:
        if 1 <= i <= n:
            out.append(cands[i - 1])
        elif -n <= i <= -1:
            out.append(cands[n + i])
    return out


def oracle_fires(
    *,
    frequency: str,
    time_of_day: time,
    interval: int,
    indices: tuple[int, ...] | list[int],
    months: int,
    weekdays: int,
    anchor: datetime,
    zone: tzinfo,
    after: datetime,
    until: datetime,
    skip: tuple[datetime, ...] | list[datetime] = (),
    times_of_day: tuple[time, ...] | list[time] = (),
    end: datetime | None = None,
) -> list[datetime]:
    """Every fire instant f with after < f <= until, ascending, once each (aware UTC), except
    those equal to an instant of ``skip``; ``times_of_day`` (default: ``time_of_day`` alone)
    and ``end`` (the schedule's ``until``: no fire later) as in section 16."""
    return [
        instant
        for instant, _ in oracle_details(
            frequency=frequency,
            time_of_day=time_of_day,
            interval=interval,
            indices=indices,
            months=months,
            weekdays=weekdays,
            anchor=anchor,
            zone=zone,
            after=after,
            until=until,
            skip=skip,
            times_of_day=times_of_day,
            end=end,
        )
    ]


def oracle_details(
    *,
    frequency: str,
    time_of_day: time,
    interval: int,
    indices: tuple[int, ...] | list[int],
    months: int,
    weekdays: int,
    anchor: datetime,
    zone: tzinfo,
    after: datetime,
    until: datetime,
    skip: tuple[datetime, ...] | list[datetime] = (),
    times_of_day: tuple[time, ...] | list[time] = (),
    end: datetime | None = None,
) -> list[tuple[datetime, bool]]:
    """``oracle_fires`` with, for each fire, whether it is *shifted*: every selected wall time
    whose instant it is lies in a DST gap (none of them exists)."""
    assert frequency in FREQUENCIES
    assert interval >= 1
    after_u = after.astimezone(UTC).replace(tzinfo=None)
    until_u = until.astimezone(UTC).replace(tzinfo=None)
    if end is not None:
        until_u = min(until_u, end.astimezone(UTC).replace(tzinfo=None))
    day_times = list(times_of_day) or [time_of_day]
    if until_u <= after_u:
        return []
    skipped = {s.astimezone(UTC).replace(tzinfo=None) for s in skip}

    # Local dates whose candidates can land in (after, until]: offsets are
    # below 15 h and a gap shifts a wall time by at most 24 h, so 3 days of
    # margin on each side is plenty.
    first_ord = max(after_u.toordinal() - 3, _ORD_MIN)
    last_ord = min(until_u.toordinal() + 3, _ORD_MAX)
    first, last = _period_dates(frequency, date.fromordinal(first_ord), date.fromordinal(last_ord))

    a_ord, a_hour = _local_wall_of_instant(zone, anchor)
    period0 = _period_id(frequency, a_ord, a_hour)

    # 1. candidates (dates; for H, clock hours), grouped by period
    by_period: dict[int, list] = defaultdict(list)
    d = first
    while True:
        if months >> (d.month - 1) & 1 and weekdays >> d.weekday() & 1:
            ordinal = d.toordinal()
            if frequency == "H":
                for hh in range(24):
                    by_period[_period_id("H", ordinal, hh)].append(datetime.combine(d, time(hh)))
            else:
                by_period[_period_id(frequency, ordinal, 0)].append(d)
        if d == last:
            break
        d += ONE_DAY

    # 2.-3. eligible periods and indices; each chosen date (hour) fires once per time
    walls: list[datetime] = []
    for pid, cands in by_period.items():
        n = pid - period0
        if n < 0 or n % interval:
            continue
        if frequency == "H":
            minutes_seconds = {(t.minute, t.second) for t in day_times}
            for hour in cands:
                for mm, ss in minutes_seconds:
                    walls.append(hour.replace(minute=mm, second=ss))
            continue
        cands.sort()
        for day in _select(cands, tuple(indices)):
            for t in day_times:
                walls.append(datetime.combine(day, t))

    # 4. instants
    shifted: dict[datetime, bool] = {}
    for wall in walls:
        u, exists = _solve(zone, wall)
        if u is not None and after_u < u <= until_u and u not in skipped:
            shifted[u] = shifted.get(u, True) and not exists
    # 5. ascending, once each
    return [(u.replace(tzinfo=UTC), shifted[u]) for u in sorted(shifted)]
