"""pytm4srv.recurrence checked against dateutil's ``rrule``, a second, independent reference.

Every pattern here is one an RRULE (RFC 5545, as dateutil implements it) expresses exactly:

- ``frequency`` Y, M, W, D, H is YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY with the same
  ``interval``; weeks run Monday to Sunday (``wkst=MO``).
- ``months`` is BYMONTH and ``weekdays`` is BYDAY (plain weekdays, never "the 2nd Monday"),
  both always given, so that dateutil never falls back to the day of ``dtstart``. In YEARLY
  and MONTHLY they select the days of the period, in WEEKLY, DAILY and HOURLY they filter it:
  the same candidates as the engine's (a week that runs into January keeps its January days
  when January is wanted).
- ``time_of_day`` is BYHOUR, BYMINUTE, BYSECOND (HOURLY: BYMINUTE and BYSECOND only).
- ``indices`` is BYSETPOS: dateutil, like the engine, counts positions over the set of each
  period, from the end when negative, skips positions past the end and fires a day named
  twice once. Any list of values in -366..366 maps. A D period holds one candidate, so for
  BYSETPOS as for the engine only 1 and -1 select it. H is the exception: the engine ignores
  ``indices`` for H while BYSETPOS would select within each hour, so H rules get no BYSETPOS
  (which checks that the engine does ignore them).
- ``dtstart`` is the start of the anchor's period, local wall time in the zone (1 January,
  the 1st, the Monday, the date at 00:00, or the hour at :00), so that the RRULE counts its
  intervals from the engine's period 0 and no candidate of period 0 lies before it.

Zones: UTC, fixed offsets, and Asia/Kolkata and Asia/Tokyo (whose offsets have not changed
since 1945 and 1951), from 1970 on. There every wall time exists exactly once, so an RRULE's
wall times converted to UTC are the fire instants. Zones with DST are left to the brute-force
oracle (test_recurrence_oracle.py): an RRULE lists wall times, and says nothing about a time
in a DST gap, a time that occurs twice, or the order and de-duplication of the instants.

Each example compares the first fires after a random start within a bounded window: a few
years (90 days for H), or 40 eligible periods when that is longer, so that long intervals run
through the engine's replay of the 400-year cycle; never past the year 9000. dateutil walks
the periods one by one up to the window's end (see ``rrule_fires``), which keeps it fast.
PYTM4SRV_ORACLE_PROFILE scales the number of examples as it does for the oracle tests.
"""

from __future__ import annotations

import datetime as datetime_module
import os
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from types import SimpleNamespace
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from pytm4srv.recurrence import ALL_MONTHS, ALL_WEEKDAYS, Pattern, fires_between, next_fires

FREQUENCY = {
    "Y": rrule.YEARLY,
    "M": rrule.MONTHLY,
    "W": rrule.WEEKLY,
    "D": rrule.DAILY,
    "H": rrule.HOURLY,
}

# Zones in which every wall time from 1970 on exists exactly once.
ZONES: list[tzinfo] = [
    UTC,
    ZoneInfo("UTC"),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    ZoneInfo("Asia/Kolkata"),
    ZoneInfo("Asia/Tokyo"),
]

# The window of an example: at least this long, and at least WINDOW_PERIODS eligible periods
# (so that long intervals replay the 400-year cycle), but never past LAST_WALL_TIME.
WINDOW = {
    "Y": timedelta(days=40 * 366),
    "M": timedelta(days=10 * 366),
    "W": timedelta(days=4 * 366),
    "D": timedelta(days=3 * 366),
    "H": timedelta(days=90),
}
PERIOD_LENGTH = {
    "Y": timedelta(days=366),
    "M": timedelta(days=31),
    "W": timedelta(days=7),
    "D": timedelta(days=1),
    "H": timedelta(hours=1),
}
WINDOW_PERIODS = 40
LAST_WALL_TIME = datetime(9000, 1, 1)
FIRST_FIRES = 40

_EXAMPLES = {"oracle-quick": 25, "oracle-default": 400, "oracle-ci": 1500, "oracle-nightly": 8000}
SETTINGS = settings(
    max_examples=_EXAMPLES[os.environ.get("PYTM4SRV_ORACLE_PROFILE", "oracle-default")],
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)


# --------------------------------------------------------------------------
# Pattern -> rrule
# --------------------------------------------------------------------------


def period_start(frequency: str, local: datetime) -> datetime:
    """The start of the period of ``frequency`` that holds the local wall time ``local``."""
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency == "Y":
        return midnight.replace(month=1, day=1)
    if frequency == "M":
        return midnight.replace(day=1)
    if frequency == "W":
        return midnight - timedelta(days=local.weekday())
    if frequency == "D":
        return midnight
    return local.replace(minute=0, second=0, microsecond=0)


def bits(mask: int, values: range) -> tuple[int, ...]:
    return tuple(value for bit, value in enumerate(values) if mask >> bit & 1)


def to_rrule(pattern: Pattern, anchor: datetime, zone: tzinfo, until: datetime) -> rrule.rrule:
    """The RRULE of ``pattern`` anchored at ``anchor``, with its wall times in ``zone``."""
    assert pattern.months and pattern.weekdays  # an empty BYMONTH/BYDAY means "not given"
    tod = pattern.time_of_day
    hourly = pattern.frequency == "H"
    return rrule.rrule(
        FREQUENCY[pattern.frequency],
        dtstart=period_start(pattern.frequency, anchor.astimezone(zone)),
        interval=pattern.interval,
        wkst=rrule.MO,
        until=until,
        bymonth=bits(pattern.months, range(1, 13)),
        byweekday=bits(pattern.weekdays, range(7)),  # 0 = Monday, as rrule.MO
        bysetpos=None if hourly or not pattern.indices else pattern.indices,
        byhour=None if hourly else tod.hour,
        byminute=tod.minute,
        bysecond=tod.second,
    )


def rrule_fires(
    pattern: Pattern, anchor: datetime, zone: tzinfo, after: datetime, until: datetime, count: int
) -> list[datetime]:
    """The first ``count`` wall times of the pattern's RRULE up to ``until`` whose instants
    are after ``after``, in UTC.

    dateutil compares ``until`` only with the occurrences it finds: a rule without one after
    ``until`` (a sparse or never-firing one) walks on, period by period, to its only other
    stop, ``datetime.MAXYEAR`` (9999), which takes seconds. That stop is lowered to the year
    after ``until`` for the walk; the occurrences up to ``until`` do not change.
    """
    rule = to_rrule(pattern, anchor, zone, until)
    calendar_end = SimpleNamespace(**{**vars(datetime_module), "MAXYEAR": until.year + 1})
    with mock.patch.object(rrule, "datetime", calendar_end):
        instants = (wall.astimezone(UTC) for wall in rule)
        return list(islice((instant for instant in instants if instant > after), count))


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

times = st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
intervals = st.one_of(
    st.integers(1, 3),
    st.integers(1, 12),
    st.integers(1, 400),
    # 400 years are 146097 days = 20871 weeks = 4800 months
    st.sampled_from([52, 53, 100, 150, 168, 200, 400, 800, 1200, 4800, 20871, 146097]),
)
_position = st.one_of(
    st.integers(1, 8),
    st.integers(-8, -1),
    # the first and last candidates of common period sizes, and positions past them
    st.sampled_from(
        [-4, -5, -7, -28, -29, -30, -31, -32, 28, 29, 30, 31, 32, 53, -53, -365, -366, 366]
    ),
    st.integers(1, 366),
    st.integers(-366, -1),
)
indices = st.one_of(st.just(()), st.lists(_position, min_size=1, max_size=4).map(tuple))
months = st.one_of(
    st.just(ALL_MONTHS), st.sampled_from([1, 2, 1 << 11, 1 | 1 << 11, 0b1010]), st.integers(1, 4095)
)
weekdays = st.one_of(
    st.just(ALL_WEEKDAYS), st.sampled_from([1, 31, 96, 21, 64]), st.integers(1, 127)
)
patterns = st.builds(
    Pattern,
    frequency=st.sampled_from(list(FREQUENCY)),
    time_of_day=times,
    interval=intervals,
    indices=indices,
    months=months,
    weekdays=weekdays,
)
local_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2090, 12, 31))


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


@SETTINGS
@given(
    pattern=patterns,
    zone=st.sampled_from(ZONES),
    anchor_wall=local_times,
    start_seconds=st.integers(-3 * 86400, 40 * 86400),
    start_fraction=st.floats(0, 0.6),
)
def test_first_fires_match_rrule(
    pattern: Pattern,
    zone: tzinfo,
    anchor_wall: datetime,
    start_seconds: int,
    start_fraction: float,
) -> None:
    frequency = pattern.frequency
    anchor = anchor_wall.replace(microsecond=0, tzinfo=zone)
    dtstart = period_start(frequency, anchor)
    limit = LAST_WALL_TIME.replace(tzinfo=zone) - dtstart
    length = PERIOD_LENGTH[frequency]
    periods = min(WINDOW_PERIODS * pattern.interval, limit // length)
    window = min(max(WINDOW[frequency], periods * length), limit)
    until = dtstart + window
    # A start before period 0, inside it, or some way into the window.
    after = (dtstart + start_fraction * window + timedelta(seconds=start_seconds)).astimezone(UTC)
    expected = rrule_fires(pattern, anchor, zone, after, until, FIRST_FIRES)
    note(f"dtstart {dtstart}, after {after}, until {until}, rrule {expected[:5]}...")
    event(f"{frequency}: {'some' if expected else 'no'} fires in the window")

    # The anchor is passed as a UTC instant: the engine finds its local period itself.
    engine = next_fires(pattern, anchor.astimezone(UTC), zone, after, FIRST_FIRES)
    assert [fire for fire in engine if fire <= until] == expected
    assert fires_between(pattern, anchor, zone, after, until)[:FIRST_FIRES] == expected


@pytest.mark.parametrize(
    "pattern, first",
    [
        # docs/RECURRENCE.md, The five frequencies (Z = UTC, 08:00, 2024; 1 January a Monday)
        (Pattern("M", time(8), indices=(1, 14)), [(1, 1), (1, 14), (2, 1), (2, 14)]),
        (Pattern("M", time(8), indices=(-2,)), [(1, 30), (2, 28), (3, 30), (4, 29)]),
        (Pattern("M", time(8), weekdays=31, indices=(-1,)), [(1, 31), (2, 29), (3, 29)]),
        (Pattern("W", time(8), interval=2, weekdays=21), [(1, 1), (1, 3), (1, 5), (1, 15)]),
        (Pattern("W", time(8), indices=(-2,)), [(1, 6), (1, 13), (1, 20)]),
        (Pattern("W", time(8), months=1, indices=(-1,)), [(1, 7), (1, 14), (1, 21), (1, 28)]),
        (Pattern("Y", time(8), months=1, indices=(1,)), [(1, 1)]),
        (Pattern("Y", time(8), indices=(60,)), [(2, 29)]),
        (Pattern("D", time(8), interval=3), [(1, 1), (1, 4), (1, 7), (1, 10)]),
    ],
)
def test_documented_examples_as_rrules(pattern: Pattern, first: list[tuple[int, int]]) -> None:
    """The mapping itself: documented examples come out of the RRULE, and out of the engine."""
    anchor = datetime(2024, 1, 1, tzinfo=UTC)
    expected = [datetime(2024, month, day, 8, tzinfo=UTC) for month, day in first]
    until = datetime(2025, 1, 1, tzinfo=UTC)
    after = anchor - timedelta(seconds=1)
    assert rrule_fires(pattern, anchor, UTC, after, until, len(first)) == expected
    assert next_fires(pattern, anchor, UTC, after, len(first)) == expected


def test_the_last_january_day_of_a_year_end_week_as_rrule() -> None:
    """A week that runs into January keeps its January days for BYMONTH, as in the engine:
    the week of Monday 30 Dec 2024 has five January days, and ``[-1]`` of January picks 5 Jan."""
    pattern = Pattern("W", time(8), months=1, indices=(-1,))
    anchor = datetime(2024, 12, 30, tzinfo=UTC)
    until = datetime(2025, 1, 13, tzinfo=UTC)
    expected = [datetime(2025, 1, 5, 8, tzinfo=UTC), datetime(2025, 1, 12, 8, tzinfo=UTC)]
    assert rrule_fires(pattern, anchor, UTC, anchor, until, 5) == expected
    assert fires_between(pattern, anchor, UTC, anchor, until) == expected


def test_hourly_ignores_indices_as_an_rrule_without_bysetpos() -> None:
    """H fires every eligible hour whatever ``indices``; its RRULE has no BYSETPOS."""
    with_indices = Pattern("H", time(0, 5), interval=7, indices=(2, -3))
    anchor = datetime(2024, 1, 1, 10, 20, tzinfo=UTC)
    until = datetime(2024, 1, 2, 12, tzinfo=UTC)
    after = anchor - timedelta(hours=1)
    expected = [datetime(2024, 1, 1, h, 5, tzinfo=UTC) for h in (10, 17)] + [
        datetime(2024, 1, 2, h, 5, tzinfo=UTC) for h in (0, 7)
    ]
    assert rrule_fires(with_indices, anchor, UTC, after, until, 10) == expected
    assert fires_between(with_indices, anchor, UTC, after, until) == expected


def test_fixed_offset_zone_fires_at_the_local_wall_time() -> None:
    """In +05:30, a daily 08:00 is 02:30 UTC, for the RRULE and for the engine."""
    zone = timezone(timedelta(hours=5, minutes=30))
    pattern = Pattern("D", time(8))
    anchor = datetime(2024, 3, 1, 12, tzinfo=zone)
    until = datetime(2024, 3, 4, tzinfo=zone)
    expected = [datetime(2024, 3, day, 2, 30, tzinfo=UTC) for day in (1, 2, 3)]
    after = datetime(2024, 2, 29, tzinfo=UTC)
    assert rrule_fires(pattern, anchor, zone, after, until, 5) == expected
    assert fires_between(pattern, anchor, zone, after, until) == expected


def test_period_start_is_the_start_of_the_anchors_period() -> None:
    wednesday = datetime(2024, 1, 10, 15, 45, 30)
    assert period_start("Y", wednesday) == datetime(2024, 1, 1)
    assert period_start("M", wednesday) == datetime(2024, 1, 1)
    assert period_start("W", wednesday) == datetime(2024, 1, 8)
    assert period_start("D", wednesday) == datetime(2024, 1, 10)
    assert period_start("H", wednesday) == datetime(2024, 1, 10, 15)
