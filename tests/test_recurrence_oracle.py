"""pytm4srv.recurrence checked against a brute-force oracle of docs/RECURRENCE.md.

The oracle (tests/recurrence_oracle.py) is written from the rules of
docs/RECURRENCE.md alone and shares no code with the engine.  Hypothesis
drives both over random schedules, zones with unusual transitions (30-minute DST in Lord Howe, the
skipped 2011-12-30 in Apia), anchors and starts around DST transitions, and
bounded windows that keep the oracle fast.

Scaling: PYTM4SRV_ORACLE_PROFILE selects one of the hypothesis profiles
registered below (oracle-quick, oracle-default, oracle-ci, oracle-nightly);
every property test runs ``weight * max_examples`` examples of that profile.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time as _clock
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

try:  # tests/ may or may not be a package
    from .recurrence_oracle import (
        local_to_utc,
        oracle_details,
        oracle_fires,
        transitions_between,
        utc_offset,
        wall_time_exists,
    )
except ImportError:
    from recurrence_oracle import (
        local_to_utc,
        oracle_details,
        oracle_fires,
        transitions_between,
        utc_offset,
        wall_time_exists,
    )

from pytm4srv import recurrence as rec  # the interface under test, nothing else

Pattern = rec.Pattern


# --------------------------------------------------------------------------
# hypothesis profiles
# --------------------------------------------------------------------------

_PROFILE_EXAMPLES = {
    "oracle-quick": 25,
    "oracle-default": 1000,
    "oracle-ci": 4000,
    "oracle-nightly": 20000,
}
for _name, _n in _PROFILE_EXAMPLES.items():
    settings.register_profile(
        _name,
        max_examples=_n,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
        print_blob=True,
    )
PROFILE = os.environ.get("PYTM4SRV_ORACLE_PROFILE", "oracle-default")


def _settings(weight: float = 1.0) -> settings:
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=max(1, int(base.max_examples * weight)))


# The engine must not hang: a call that takes longer than this fails the test.
ENGINE_TIME_LIMIT = float(os.environ.get("PYTM4SRV_ORACLE_ENGINE_TIME_LIMIT", "20"))


class EngineTooSlow(AssertionError):
    pass


@contextmanager
def time_limit(seconds: float, what: str = "engine call"):
    in_main = threading.current_thread() is threading.main_thread()
    if not hasattr(signal, "setitimer") or not in_main:
        yield
        return

    def _alarm(signum, frame):
        raise EngineTooSlow(f"{what} took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------
# zones and interesting instants
# --------------------------------------------------------------------------

ZONE_NAMES = (
    "UTC",
    "America/Chicago",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Asia/Kolkata",
)
#: Zones given to patterns as their own ``timezone`` (the engine's default zone is then a decoy).
OWN_ZONE_NAMES = ("UTC", "America/Chicago", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata")
#: A default zone that a pattern with its own zone must not be read in.
DECOY = timezone(timedelta(hours=5, minutes=45))
ZONES: dict[str, tzinfo] = {name: ZoneInfo(name) for name in ZONE_NAMES}
CHICAGO = ZONES["America/Chicago"]
LORD_HOWE = ZONES["Australia/Lord_Howe"]
APIA = ZONES["Pacific/Apia"]

LO = datetime(1990, 1, 1, tzinfo=UTC)
HI = datetime(2060, 1, 1, tzinfo=UTC)
APIA_SKIP = datetime(2011, 12, 30, 10, tzinfo=UTC)  # 2011-12-29 24:00 -10 == 2011-12-31 00:00 +14

_HOT: dict[str, list[datetime]] = {}


def hot_instants(zone_name: str) -> list[datetime]:
    """Offset transitions of the zone between 1990 and 2060 (plus Apia's skipped day)."""
    if zone_name not in _HOT:
        hot = transitions_between(
            ZONES[zone_name], LO.replace(tzinfo=None), HI.replace(tzinfo=None)
        )
        if zone_name == "Pacific/Apia":
            hot += [APIA_SKIP] * 10  # weight the skipped day
        _HOT[zone_name] = hot
    return _HOT[zone_name]


# --------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------

COMMON_TIMES = [
    time(2, 30),
    time(1, 30),
    time(2, 15),
    time(2, 0),
    time(1, 0),
    time(3, 0),
    time(0, 0),
    time(23, 59, 59),
    time(8, 0),
    time(12, 0),
    time(23, 30),
    time(0, 30),
    time(1, 59, 59),
    time(2, 45),
    time(1, 45),
    time(2, 30, 30),
]
times = st.one_of(
    st.sampled_from(COMMON_TIMES),
    st.builds(time, st.integers(0, 23), st.integers(0, 59)),
    st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)),
)

_small_interval = st.integers(1, 3)
intervals = st.one_of(
    _small_interval,
    _small_interval,
    _small_interval,
    _small_interval,
    st.integers(1, 10),
    st.integers(1, 10),
    st.integers(1, 10),
    st.sampled_from([7, 12, 13, 24, 25, 52, 53, 100, 168, 365, 366]),
    st.integers(11, 2**31 - 1),
)

_small_index = st.one_of(st.integers(1, 5), st.integers(-5, -1))
_edge_index = st.sampled_from(
    [
        1,
        -1,
        2,
        -2,
        4,
        -4,
        5,
        -5,
        7,
        -7,
        23,
        24,
        -24,
        28,
        29,
        30,
        31,
        32,
        -28,
        -29,
        -30,
        -31,
        -32,
        52,
        53,
        -53,
        260,
        261,
        365,
        366,
        -365,
        -366,
    ]
)
_any_index = st.one_of(st.integers(1, 366), st.integers(-366, -1))
indices_st = st.lists(
    st.one_of(_small_index, _small_index, _edge_index, _any_index), min_size=0, max_size=3
).map(tuple)

# A D period holds one candidate: only 1 and -1 can select it.
day_indices_st = st.one_of(
    st.just(()),
    st.lists(st.sampled_from([1, -1]), min_size=1, max_size=2).map(tuple),
    indices_st,
)

# A W period holds at most 7 candidates.
week_indices_st = st.one_of(
    st.just(()),
    st.lists(st.one_of(st.integers(1, 7), st.integers(-7, -1)), min_size=1, max_size=3).map(tuple),
    indices_st,
)
INDICES_BY_FREQUENCY = {"D": day_indices_st, "W": week_indices_st}

COMMON_MONTHS = [
    4095,
    1,
    2,
    4,
    1 << 11,
    0b101010101010,
    0b010101010101,
    4095 ^ 2,
    1 | 1 << 6,
    0b000000111000,
    0b100000000001,
    3,
    1 << 9 | 1 << 2,
]
COMMON_WEEKDAYS = [127, 31, 96, 1, 64, 21, 42, 2, 1 | 64]


def _masks(full: int, common: list[int], zero: bool):
    return st.one_of(
        st.just(full),
        st.just(full),
        st.sampled_from(common),
        st.sampled_from(common),
        st.integers(0 if zero else 1, full),
    )


months_st = _masks(4095, COMMON_MONTHS, zero=False)
weekdays_st = _masks(127, COMMON_WEEKDAYS, zero=False)
months_with_zero = _masks(4095, [*COMMON_MONTHS, 0], zero=True)
weekdays_with_zero = _masks(127, [*COMMON_WEEKDAYS, 0], zero=True)

PERIOD = {
    "Y": timedelta(days=365.25),
    "M": timedelta(days=30.5),
    "W": timedelta(days=7),
    "D": timedelta(days=1),
    "H": timedelta(hours=1),
}
# Oracle windows: large enough to see many periods, small enough to stay fast.
WINDOW = {
    "Y": timedelta(days=6 * 366),
    "M": timedelta(days=3 * 366),
    "W": timedelta(days=240),
    "D": timedelta(days=120),
    "H": timedelta(days=4),
}


def _seconds(td: timedelta) -> int:
    return int(td.total_seconds())


def free_instants(lo: datetime = LO, hi: datetime = HI):
    return st.integers(0, _seconds(hi - lo)).map(lambda s: lo + timedelta(seconds=s))


def instants_near(zone_name: str):
    """Free instants in 1990..2060, or instants close to one of the zone's transitions."""
    hot = hot_instants(zone_name)
    free = free_instants()
    if not hot:
        return free
    jitter = st.one_of(
        st.integers(-3 * 86400, 3 * 86400),
        st.integers(-7200, 7200),
        st.sampled_from([-3600, -1800, -1, 0, 1, 1800, 3600]),
    )
    near = st.builds(lambda t, s: t + timedelta(seconds=s), st.sampled_from(hot), jitter)
    return st.one_of(free, near, near)


FIXED = timezone(timedelta(hours=-3, minutes=-30))


def express(instant: datetime, how: str, zone: tzinfo) -> datetime:
    """The same instant, as an aware datetime in some zone (anchor/after may use any zone)."""
    if how == "zone":
        return instant.astimezone(zone)
    if how == "fixed":
        return instant.astimezone(FIXED)
    return instant


@dataclass(frozen=True)
class Case:
    frequency: str
    time_of_day: time
    interval: int
    indices: tuple[int, ...]
    months: int
    weekdays: int
    zone: tzinfo
    anchor: datetime
    after: datetime
    until: datetime

    def pattern(self):
        return Pattern(
            frequency=self.frequency,
            time_of_day=self.time_of_day,
            interval=self.interval,
            indices=self.indices,
            months=self.months,
            weekdays=self.weekdays,
        )

    def oracle(self, after: datetime | None = None, until: datetime | None = None):
        return oracle_fires(
            frequency=self.frequency,
            time_of_day=self.time_of_day,
            interval=self.interval,
            indices=self.indices,
            months=self.months,
            weekdays=self.weekdays,
            anchor=self.anchor,
            zone=self.zone,
            after=self.after if after is None else after,
            until=self.until if until is None else until,
        )


@st.composite
def cases(
    draw,
    frequencies: str = "YMWDH",
    zero_masks: bool = False,
    zones: tuple[str, ...] = ZONE_NAMES + ("timezone.utc",),
) -> Case:
    freq = draw(st.sampled_from(frequencies))
    zone_name = draw(st.sampled_from(zones))
    zone = UTC if zone_name == "timezone.utc" else ZONES[zone_name]
    hot_name = "UTC" if zone_name == "timezone.utc" else zone_name
    interval = draw(intervals)
    anchor = draw(instants_near(hot_name))
    window = WINDOW[freq]
    mode = draw(st.sampled_from(["near", "near", "near", "phase", "phase", "free", "hot"]))
    if mode == "phase" and interval < timedelta(days=100 * 366) / PERIOD[freq]:
        # start a little before or after the n-th eligible period
        n = draw(st.integers(0, 3))
        jitter = draw(st.integers(-2 * _seconds(PERIOD[freq]), 2 * _seconds(PERIOD[freq])))
        after = anchor + n * interval * PERIOD[freq] + timedelta(seconds=jitter)
    elif mode == "free":
        after = draw(free_instants())
    elif mode == "hot":
        after = draw(instants_near(hot_name))
    else:
        w = _seconds(window)
        after = anchor + timedelta(seconds=draw(st.integers(-w, 2 * w)))
    w = _seconds(window)
    length_s = draw(st.one_of(st.just(w), st.just(w), st.integers(w // 4, w), st.integers(0, w)))
    length = timedelta(seconds=length_s)
    until = after + length
    how_anchor = draw(st.sampled_from(["utc", "zone", "fixed"]))
    how_after = draw(st.sampled_from(["utc", "zone", "fixed"]))
    return Case(
        frequency=freq,
        time_of_day=draw(times),
        interval=interval,
        indices=draw(INDICES_BY_FREQUENCY.get(freq, indices_st)),
        months=draw(months_with_zero if zero_masks else months_st),
        weekdays=draw(weekdays_with_zero if zero_masks else weekdays_st),
        zone=zone,
        anchor=express(anchor, how_anchor, zone),
        after=express(after, how_after, zone),
        until=express(until, "utc", zone),
    )


def assert_well_formed(fires: list[datetime], after: datetime, until: datetime | None = None):
    for f in fires:
        assert f.tzinfo is not None and f.utcoffset() == timedelta(0), f
        assert f > after, (f, after)
        if until is not None:
            assert f <= until, (f, until)
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False)), "not strictly ascending"


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1-9" if n < 10 else "10-99" if n < 100 else "100+"


def _describe(c: Case) -> None:
    note(f"pattern={c.pattern()!r}")
    note(
        f"zone={c.zone!r} anchor={c.anchor.isoformat()} after={c.after.isoformat()} "
        f"until={c.until.isoformat()}"
    )


# --------------------------------------------------------------------------
# property tests: engine == oracle
# --------------------------------------------------------------------------


@_settings(1.0)
@given(c=cases())
def test_fires_between_matches_oracle(c: Case) -> None:
    _describe(c)
    expected = c.oracle()
    event(f"{c.frequency} oracle fires: {_bucket(len(expected))}")
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        got = rec.fires_between(c.pattern(), c.anchor, c.zone, c.after, c.until)
    assert_well_formed(got, c.after, c.until)
    assert got == expected


# The oracle window of next_fires is extended window by window up to this many
# times while it holds fewer than `count` instants.
MAX_WINDOWS = 4


@_settings(1.0)
@given(c=cases(), count=st.one_of(st.integers(1, 5), st.integers(1, 5), st.integers(6, 60)))
def test_next_fires_matches_oracle(c: Case, count: int) -> None:
    _describe(c)
    expected: list[datetime] = []
    until = c.after
    for _ in range(MAX_WINDOWS):
        start, until = until, until + WINDOW[c.frequency]
        expected += c.oracle(after=start, until=until)
        if len(expected) >= count:
            break
    event(f"next_fires: oracle window {'complete' if len(expected) >= count else 'partial'}")
    with time_limit(ENGINE_TIME_LIMIT, "next_fires"):
        got = rec.next_fires(c.pattern(), c.anchor, c.zone, c.after, count)
    assert_well_formed(got, c.after)
    assert len(got) <= count
    if len(expected) >= count:
        assert got == expected[:count]
    else:
        # the oracle's window holds fewer than `count`: the engine must agree inside it
        assert [f for f in got if f <= until] == expected
    with time_limit(ENGINE_TIME_LIMIT, "iter_fires"):
        assert list(islice(rec.iter_fires(c.pattern(), c.anchor, c.zone, c.after), count)) == got


@_settings(0.5)
@given(c=cases(), pick=st.integers(0, 10**6), micro=st.integers(1, 999_999))
def test_bounds_strict_after_inclusive_until(c: Case, pick: int, micro: int) -> None:
    """A fire instant used as `after` is excluded, as `until` included (microseconds too)."""
    _describe(c)
    expected = c.oracle()
    if not expected:
        return
    f = expected[pick % len(expected)]
    p = c.pattern()
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        assert rec.fires_between(p, c.anchor, c.zone, f, c.until) == [x for x in expected if x > f]
        assert rec.fires_between(p, c.anchor, c.zone, c.after, f) == [x for x in expected if x <= f]
        just_before = f - timedelta(microseconds=micro)
        assert rec.next_fires(p, c.anchor, c.zone, just_before, 1) == [f]
        assert rec.fires_between(p, c.anchor, c.zone, just_before, f) == [f]
        assert rec.fires_between(p, c.anchor, c.zone, f, f) == []
        assert rec.fires_between(p, c.anchor, c.zone, c.until, c.after) == []  # reversed


@_settings(0.5)
@given(c=cases("HD"))
def test_short_periods_match_oracle(c: Case) -> None:
    """Extra weight on H and D, where DST gaps and overlaps matter most."""
    _describe(c)
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        got = rec.fires_between(c.pattern(), c.anchor, c.zone, c.after, c.until)
    assert got == c.oracle()


@_settings(0.5)
@given(c=cases(zero_masks=True))
def test_never_fires_is_sound(c: Case) -> None:
    """never_fires() may only claim what is true: nothing fires, ever."""
    _describe(c)
    claimed = rec.never_fires(c.pattern())
    if c.months == 0 or c.weekdays == 0:
        assert claimed, "documented structural case (months == 0 or weekdays == 0)"
    if claimed:
        assert c.oracle() == []
        with time_limit(ENGINE_TIME_LIMIT, "next_fires"):
            assert rec.next_fires(c.pattern(), c.anchor, c.zone, c.after, 10) == []


# Anchors and starts at the very edges of the datetime range.
EDGE_LO = datetime(1, 1, 1, tzinfo=UTC)
EDGE_HI = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


@st.composite
def edge_cases(draw) -> Case:
    freq = draw(st.sampled_from("YMWDH"))
    zone = draw(st.sampled_from([UTC, ZONES["UTC"], CHICAGO, LORD_HOWE, APIA]))
    window = WINDOW[freq]
    low = draw(st.booleans())
    if low:
        near = free_instants(EDGE_LO, EDGE_LO + window)
    else:
        near = free_instants(EDGE_HI - window, EDGE_HI)
    anchor = draw(st.one_of(near, st.sampled_from([EDGE_LO, EDGE_HI])))
    after = draw(st.one_of(near, st.sampled_from([EDGE_LO, EDGE_HI])))
    until = min(after + window, EDGE_HI) if after < EDGE_HI - window else EDGE_HI
    return Case(
        frequency=freq,
        time_of_day=draw(times),
        interval=draw(st.one_of(st.integers(1, 3), intervals)),
        indices=draw(indices_st),
        months=draw(months_st),
        weekdays=draw(weekdays_st),
        zone=zone,
        anchor=anchor,
        after=after,
        until=until,
    )


@_settings(0.5)
@given(c=edge_cases(), count=st.integers(1, 5))
def test_datetime_range_edges_match_oracle(c: Case, count: int) -> None:
    _describe(c)
    expected = c.oracle()
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        got = rec.fires_between(c.pattern(), c.anchor, c.zone, c.after, c.until)
    assert got == expected
    with time_limit(ENGINE_TIME_LIMIT, "next_fires"):
        nxt = rec.next_fires(c.pattern(), c.anchor, c.zone, c.after, count)
    assert_well_formed(nxt, c.after)
    if len(expected) >= count:
        assert nxt == expected[:count]
    else:
        assert [f for f in nxt if f <= c.until] == expected


def test_output_is_utc():
    p = Pattern(frequency="D", time_of_day=time(8))
    after = datetime(2024, 3, 1, tzinfo=CHICAGO)
    for f in rec.next_fires(p, after, CHICAGO, after, 5):
        assert f.tzinfo is UTC


# --------------------------------------------------------------------------
# a schedule's own zone and skipped instants
# --------------------------------------------------------------------------


def own_zone_pattern(c: Case, skip: list[datetime]) -> Pattern:
    """The case's pattern, read in its own zone (by name) and skipping ``skip``."""
    return Pattern(
        frequency=c.frequency,
        time_of_day=c.time_of_day,
        interval=c.interval,
        indices=c.indices,
        months=c.months,
        weekdays=c.weekdays,
        timezone=c.zone.key,
        skip=tuple(skip),
    )


def draw_skip(data, fires: list[datetime], zone: tzinfo) -> list[datetime]:
    """Some of ``fires`` (in any zone's notation), and a few instants that are no fire."""
    chosen = data.draw(st.lists(st.sampled_from(fires), max_size=8)) if fires else []
    others = data.draw(st.lists(free_instants(), max_size=3))
    how = data.draw(st.sampled_from(["utc", "zone", "fixed"]))
    return [express(f, how, zone) for f in chosen] + others


@_settings(0.5)
@given(c=cases(zones=OWN_ZONE_NAMES), data=st.data())
def test_own_zone_and_skip_match_oracle(c: Case, data) -> None:
    """A pattern's own zone wins over the default zone; skipped instants are left out."""
    _describe(c)
    fires = c.oracle()
    skip = draw_skip(data, fires, c.zone)
    note(f"skip={[s.isoformat() for s in skip]}")
    skipped = {s.astimezone(UTC) for s in skip}
    expected = [f for f in fires if f not in skipped]
    p = own_zone_pattern(c, skip)
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        got = rec.fires_between(p, c.anchor, DECOY, c.after, c.until)
    assert_well_formed(got, c.after, c.until)
    assert got == expected


@_settings(0.3)
@given(
    c=cases(zones=OWN_ZONE_NAMES),
    count=st.one_of(st.integers(1, 5), st.integers(6, 60)),
    data=st.data(),
)
def test_next_fires_with_skip_still_answers_count(c: Case, count: int, data) -> None:
    """Skipped fires do not count: next_fires answers `count` instants when as many remain."""
    _describe(c)
    kwargs = dict(
        frequency=c.frequency,
        time_of_day=c.time_of_day,
        interval=c.interval,
        indices=c.indices,
        months=c.months,
        weekdays=c.weekdays,
        anchor=c.anchor,
        zone=c.zone,
    )
    window = WINDOW[c.frequency]
    skip = draw_skip(data, oracle_fires(**kwargs, after=c.after, until=c.after + window), c.zone)
    expected: list[datetime] = []
    until = c.after
    for _ in range(MAX_WINDOWS):
        start, until = until, until + window
        expected += oracle_fires(**kwargs, after=start, until=until, skip=skip)
        if len(expected) >= count:
            break
    p = own_zone_pattern(c, skip)
    with time_limit(ENGINE_TIME_LIMIT, "next_fires"):
        got = rec.next_fires(p, c.anchor, DECOY, c.after, count)
        lazy = list(islice(rec.iter_fires(p, c.anchor, DECOY, c.after), count))
    assert lazy == got
    assert_well_formed(got, c.after)
    if len(expected) >= count:
        assert got == expected[:count]
    else:
        assert [f for f in got if f <= until] == expected


@_settings(0.5)
@given(c=cases(zones=OWN_ZONE_NAMES))
def test_fire_details_match_oracle(c: Case) -> None:
    """Local time and `shifted` of every fire: shifted exactly when each selected wall time
    that lands on the instant lies in a DST gap."""
    _describe(c)
    expected = oracle_details(
        frequency=c.frequency,
        time_of_day=c.time_of_day,
        interval=c.interval,
        indices=c.indices,
        months=c.months,
        weekdays=c.weekdays,
        anchor=c.anchor,
        zone=c.zone,
        after=c.after,
        until=c.until,
    )
    event(f"shifted fires: {_bucket(sum(shifted for _, shifted in expected))}")
    p = own_zone_pattern(c, [])
    with time_limit(ENGINE_TIME_LIMIT, "fire_details"):
        fires = rec.fires_between(p, c.anchor, DECOY, c.after, c.until)
        details = rec.fire_details(p, c.anchor, DECOY, fires)
    assert [(d.instant, d.shifted) for d in details] == expected
    for d in details:
        assert d.local.astimezone(UTC) == d.instant  # (`==` across zones: PEP 495 folds)
        assert d.local.utcoffset() == utc_offset(c.zone, d.instant)
        wall = d.local.replace(tzinfo=None)
        assert wall_time_exists(c.zone, wall)
        if not d.shifted:  # an unshifted fire shows the wall time the pattern asks for
            if c.frequency == "H":
                assert (wall.minute, wall.second) == (c.time_of_day.minute, c.time_of_day.second)
            else:
                assert wall.time() == c.time_of_day


def test_a_daily_fire_in_the_spring_gap_is_shifted():
    p = Pattern("D", time(2, 30), timezone="America/Chicago")
    anchor = u(2024, 1, 1)
    fires = rec.fires_between(p, anchor, UTC, u(2024, 3, 9), u(2024, 3, 12))
    details = rec.fire_details(p, anchor, UTC, fires)
    assert [(d.local.isoformat(), d.shifted) for d in details] == [
        ("2024-03-09T02:30:00-06:00", False),
        ("2024-03-10T03:30:00-05:00", True),
        ("2024-03-11T02:30:00-05:00", False),
    ]


def test_every_other_hour_across_the_gap_is_shifted_only_where_moved():
    # 00:30, 02:30 (does not exist: 03:30 CDT, which is no eligible hour), 04:30, ...
    p = Pattern("H", time(0, 30), interval=2, timezone="America/Chicago")
    anchor = datetime(2024, 3, 10, 0, 30, tzinfo=CHICAGO)
    fires = rec.next_fires(p, anchor, UTC, anchor - timedelta(minutes=1), 3)
    details = rec.fire_details(p, anchor, UTC, fires)
    assert [(d.local.isoformat(), d.shifted) for d in details] == [
        ("2024-03-10T00:30:00-06:00", False),
        ("2024-03-10T03:30:00-05:00", True),
        ("2024-03-10T04:30:00-05:00", False),
    ]
    # Hourly, 03:30 is asked for too: the one instant is that existing wall time.
    hourly = dataclasses.replace(p, interval=1)
    fires = rec.next_fires(hourly, anchor, UTC, anchor, 2)
    details = rec.fire_details(hourly, anchor, UTC, fires)
    assert [(d.local.isoformat(), d.shifted) for d in details] == [
        ("2024-03-10T01:30:00-06:00", False),
        ("2024-03-10T03:30:00-05:00", False),
    ]


def test_apias_skipped_day_is_shifted_unless_the_next_day_is_asked_for_too():
    anchor = u(2011, 1, 1)
    for indices, shifted in (((30,), True), ((30, 31), False), ((31,), False)):
        p = Pattern("M", time(8), indices=indices, timezone="Pacific/Apia")
        [fire] = rec.fires_between(p, anchor, UTC, u(2011, 12, 1), u(2012, 1, 1))
        [detail] = rec.fire_details(p, anchor, UTC, [fire])
        assert detail.local.isoformat() == "2011-12-31T08:00:00+14:00"
        assert detail.shifted is shifted, indices


def test_skip_takes_instants_in_any_zone_and_ignores_non_fires():
    daily = Pattern("D", time(8), timezone="Asia/Kolkata")
    anchor = after = u(2027, 1, 1)
    fires = rec.next_fires(daily, anchor, UTC, after, 4)
    assert fires == [u(2027, 1, 1, 2, 30), u(2027, 1, 2, 2, 30), u(2027, 1, 3, 2, 30),
                     u(2027, 1, 4, 2, 30)]  # fmt: skip
    kolkata = ZoneInfo("Asia/Kolkata")
    skipping = dataclasses.replace(
        daily, skip=(fires[1].astimezone(kolkata), fires[2], u(2027, 1, 2, 8))
    )
    assert skipping.skip == (fires[1], u(2027, 1, 2, 8), fires[2])  # UTC, ascending, once
    assert rec.next_fires(skipping, anchor, UTC, after, 3) == [
        fires[0], fires[3], u(2027, 1, 5, 2, 30)
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd", "utc"])
def test_unknown_zone_names_are_refused(name):
    assert not rec.is_zone_name(name)
    if name:
        with pytest.raises(ValueError):
            p = Pattern("D", time(8), timezone=name)
            rec.next_fires(p, u(2027, 1, 1), UTC, u(2027, 1, 1), 1)
    else:
        with pytest.raises(ValueError):
            Pattern("D", time(8), timezone=name)


@pytest.mark.parametrize("name", OWN_ZONE_NAMES)
def test_the_zones_tested_are_zone_names(name):
    assert rec.is_zone_name(name)
    assert rec.zone_of(Pattern("D", time(8), timezone=name), DECOY) == ZoneInfo(name)
    assert rec.zone_of(Pattern("D", time(8)), DECOY) is DECOY


# --------------------------------------------------------------------------
# the oracle's own local -> instant rule, checked against PEP 495 fold=0
# --------------------------------------------------------------------------


@_settings(1.0)
@given(
    zone_name=st.sampled_from(ZONE_NAMES),
    base=st.data(),
)
def test_oracle_local_to_utc_agrees_with_fold0(zone_name: str, base) -> None:
    zone = ZONES[zone_name]
    hot = hot_instants(zone_name)
    if hot and base.draw(st.booleans()):
        t = base.draw(st.sampled_from(hot))
        wall = t.astimezone(zone).replace(tzinfo=None, fold=0) + timedelta(
            seconds=base.draw(st.integers(-2 * 86400, 2 * 86400))
        )
    else:
        wall = base.draw(st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1)))
        wall = wall.replace(microsecond=0)
    fold0 = wall.replace(tzinfo=zone, fold=0).astimezone(UTC).replace(tzinfo=None)
    assert local_to_utc(zone, wall) == fold0


# --------------------------------------------------------------------------
# targeted examples
# --------------------------------------------------------------------------


def u(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def both(pattern_kwargs: dict, anchor, zone, after, until):
    """Engine and oracle answers for one window."""
    engine = rec.fires_between(Pattern(**pattern_kwargs), anchor, zone, after, until)
    kw = dict(interval=1, indices=(), months=4095, weekdays=127)
    kw.update(pattern_kwargs)
    oracle = oracle_fires(anchor=anchor, zone=zone, after=after, until=until, **kw)
    return engine, oracle


DOCUMENTED_EXAMPLES = [  # docs/RECURRENCE.md, The five frequencies
    pytest.param(
        dict(frequency="M", time_of_day=time(8), indices=(1, 14)),
        [
            u(2024, 1, 1, 8),
            u(2024, 1, 14, 8),
            u(2024, 2, 1, 8),
            u(2024, 2, 14, 8),
            u(2024, 3, 1, 8),
            u(2024, 3, 14, 8),
        ],
        id="M-1st-and-14th",
    ),
    pytest.param(
        dict(frequency="M", time_of_day=time(8), indices=(-2,)),
        [
            u(2024, 1, 30, 8),
            u(2024, 2, 28, 8),
            u(2024, 3, 30, 8),
            u(2024, 4, 29, 8),
            u(2024, 5, 30, 8),
            u(2024, 6, 29, 8),
        ],
        id="M-second-to-last-day",
    ),
    pytest.param(
        dict(frequency="M", time_of_day=time(8), weekdays=31, indices=(-1,)),
        [
            u(2024, 1, 31, 8),
            u(2024, 2, 29, 8),
            u(2024, 3, 29, 8),
            u(2024, 4, 30, 8),
            u(2024, 5, 31, 8),
            u(2024, 6, 28, 8),
        ],
        id="M-last-weekday",
    ),
    pytest.param(
        dict(frequency="W", time_of_day=time(8), weekdays=21, interval=2),
        [
            u(2024, 1, 1, 8),
            u(2024, 1, 3, 8),
            u(2024, 1, 5, 8),
            u(2024, 1, 15, 8),
            u(2024, 1, 17, 8),
            u(2024, 1, 19, 8),
        ],
        id="W-mon-wed-fri-every-other-week",
    ),
    pytest.param(
        dict(frequency="Y", time_of_day=time(8), months=1, indices=(1,)),
        [
            u(2024, 1, 1, 8),
            u(2025, 1, 1, 8),
            u(2026, 1, 1, 8),
            u(2027, 1, 1, 8),
            u(2028, 1, 1, 8),
            u(2029, 1, 1, 8),
        ],
        id="Y-1-January",
    ),
]


@pytest.mark.parametrize("zone", [UTC, ZONES["UTC"]], ids=["timezone.utc", "ZoneInfo-UTC"])
@pytest.mark.parametrize("kwargs, expected", DOCUMENTED_EXAMPLES)
def test_documented_examples(kwargs, expected, zone):
    anchor = after = u(2024, 1, 1)  # a Monday, midnight: the first fire is on 1 January
    assert rec.next_fires(Pattern(**kwargs), anchor, zone, after, len(expected)) == expected
    engine, oracle = both(kwargs, anchor, zone, after, expected[-1])
    assert oracle == expected
    assert engine == expected


def test_every_two_weeks_names_the_same_weeks_whichever_start():
    kwargs = dict(frequency="W", time_of_day=time(8), weekdays=21, interval=2)
    p = Pattern(**kwargs)
    anchor = u(2024, 1, 3, 15)  # Wednesday: period 0 is the week of Monday 2024-01-01
    # a start in an odd week skips to the next even week, whatever the start
    assert rec.next_fires(p, anchor, UTC, u(2024, 1, 8), 3) == [
        u(2024, 1, 15, 8),
        u(2024, 1, 17, 8),
        u(2024, 1, 19, 8),
    ]
    assert rec.next_fires(p, anchor, UTC, u(2024, 1, 12), 2) == [
        u(2024, 1, 15, 8),
        u(2024, 1, 17, 8),
    ]
    # none before period 0, but period 0 is whole: Monday 1 January fires
    assert rec.next_fires(p, anchor, UTC, u(2023, 12, 1), 2) == [u(2024, 1, 1, 8), u(2024, 1, 3, 8)]


@_settings(0.5)
@given(
    zone_name=st.sampled_from(ZONE_NAMES),
    anchor=free_instants(datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)),
    starts=st.lists(st.integers(0, 700 * 86400), min_size=2, max_size=4),
    tod=times,
)
def test_every_two_weeks_same_weeks_property(zone_name, anchor, starts, tod):
    zone = ZONES[zone_name]
    p = Pattern(frequency="W", time_of_day=tod, weekdays=21, interval=2)
    anchor_monday = anchor.astimezone(zone).date()
    anchor_monday -= timedelta(days=anchor_monday.weekday())
    reference = rec.fires_between(
        p, anchor, zone, anchor - timedelta(days=8), anchor + timedelta(days=800)
    )
    for s in starts:
        start = anchor + timedelta(seconds=s)
        got = rec.next_fires(p, anchor, zone, start, 4)
        assert got == [f for f in reference if f > start][:4]
        for f in got:
            local = f.astimezone(zone).date()
            weeks = (local - timedelta(days=local.weekday()) - anchor_monday).days // 7
            # a DST gap can push a wall time across midnight, never into another week here
            assert weeks % 2 == 0, (f, local)


def test_dst_gap_and_overlap_in_chicago():
    # the rule itself, as PEP 495 fold=0 gives it
    gap = datetime(2024, 3, 10, 2, 30, tzinfo=CHICAGO)
    assert gap.astimezone(UTC) == u(2024, 3, 10, 8, 30)
    wall = gap.astimezone(UTC).astimezone(CHICAGO).replace(tzinfo=None)
    assert wall == datetime(2024, 3, 10, 3, 30)
    overlap = datetime(2024, 11, 3, 1, 30, tzinfo=CHICAGO)
    assert overlap.astimezone(UTC) == u(2024, 11, 3, 6, 30)  # CDT, the earlier instant
    # the oracle's independent scan gives the same
    assert local_to_utc(CHICAGO, datetime(2024, 3, 10, 2, 30)) == datetime(2024, 3, 10, 8, 30)
    assert local_to_utc(CHICAGO, datetime(2024, 11, 3, 1, 30)) == datetime(2024, 11, 3, 6, 30)
    # and the engine
    anchor = u(2024, 1, 1)
    engine, oracle = both(
        dict(frequency="D", time_of_day=time(2, 30)),
        anchor,
        CHICAGO,
        u(2024, 3, 9, 18),
        u(2024, 3, 11, 18),
    )
    assert engine == oracle == [u(2024, 3, 10, 8, 30), u(2024, 3, 11, 7, 30)]
    engine, oracle = both(
        dict(frequency="D", time_of_day=time(1, 30)),
        anchor,
        CHICAGO,
        u(2024, 11, 2, 17),
        u(2024, 11, 4, 17),
    )
    assert engine == oracle == [u(2024, 11, 3, 6, 30), u(2024, 11, 4, 7, 30)]


def test_hourly_across_chicago_transitions():
    anchor = u(2024, 1, 1)
    p = dict(frequency="H", time_of_day=time(0, 30))
    # spring forward: 02:30 is 03:30 CDT, once -> 23 fires in the local day
    day_start, day_end = u(2024, 3, 10, 6), u(2024, 3, 11, 5)  # 00:00 CST .. 00:00 CDT
    engine, oracle = both(p, anchor, CHICAGO, day_start, day_end)
    assert engine == oracle
    assert len(engine) == 23
    # fall back: 01:30 only at CDT (the earlier instant) -> 24 fires, a 2 h step
    day_start, day_end = u(2024, 11, 3, 5), u(2024, 11, 4, 6)  # 00:00 CDT .. 00:00 CST
    engine, oracle = both(p, anchor, CHICAGO, day_start, day_end)
    assert engine == oracle
    assert len(engine) == 24
    assert u(2024, 11, 3, 6, 30) in engine and u(2024, 11, 3, 7, 30) not in engine
    # every 5 wall-clock hours, counted through the missing and the repeated hour
    p5 = dict(frequency="H", time_of_day=time(0, 0), interval=5)
    engine, oracle = both(p5, u(2024, 3, 9, 6), CHICAGO, u(2024, 3, 9, 0), u(2024, 3, 11, 12))
    assert engine == oracle


def test_lord_howe_half_hour_shift():
    anchor = u(2024, 1, 1)
    # 2024-10-06 02:00 +10:30 -> 02:30 +11: 02:15 takes +10:30 (02:45 +11)
    engine, oracle = both(
        dict(frequency="D", time_of_day=time(2, 15)),
        anchor,
        LORD_HOWE,
        u(2024, 10, 5, 0),
        u(2024, 10, 6, 0),
    )
    assert engine == oracle == [u(2024, 10, 5, 15, 45)]
    # 2024-04-07 02:00 +11 -> 01:30 +10:30: 01:45 is the earlier (+11) instant
    engine, oracle = both(
        dict(frequency="D", time_of_day=time(1, 45)),
        anchor,
        LORD_HOWE,
        u(2024, 4, 6, 0),
        u(2024, 4, 7, 0),
    )
    assert engine == oracle == [u(2024, 4, 6, 14, 45)]


def test_apia_skipped_day_duplicates_removed():
    anchor = u(2011, 1, 1)
    after, until = u(2011, 12, 27, 20), u(2012, 1, 1, 12)
    # local Dec 28, 29, 30 (missing), 31, Jan 1 at 08:00: Dec 30 -> Dec 31's instant
    engine, oracle = both(dict(frequency="D", time_of_day=time(8)), anchor, APIA, after, until)
    expected = [u(2011, 12, 28, 18), u(2011, 12, 29, 18), u(2011, 12, 30, 18), u(2011, 12, 31, 18)]
    assert engine == oracle == expected
    # positions count candidates before de-duplication: Dec 30 and 31 are one instant
    engine, oracle = both(
        dict(frequency="M", time_of_day=time(8), indices=(30, 31)),
        anchor,
        APIA,
        u(2011, 12, 1),
        u(2012, 1, 1),
    )
    assert engine == oracle == [u(2011, 12, 30, 18)]
    engine, oracle = both(
        dict(frequency="M", time_of_day=time(8), indices=(-2,)),
        anchor,
        APIA,
        u(2011, 12, 1),
        u(2012, 1, 1),
    )
    assert engine == oracle == [u(2011, 12, 30, 18)]
    # hourly: the 24 hours of the missing day coincide with those of Dec 31
    engine, oracle = both(
        dict(frequency="H", time_of_day=time(0, 15)),
        anchor,
        APIA,
        u(2011, 12, 29, 0),
        u(2012, 1, 1, 0),
    )
    assert engine == oracle
    assert len(engine) == len(set(engine))
    # next_fires across the day: ascending, each once
    nxt = rec.next_fires(
        Pattern(frequency="H", time_of_day=time(0, 15)), anchor, APIA, u(2011, 12, 30, 0), 40
    )
    assert nxt == [f for f in engine if f > u(2011, 12, 30, 0)][:40]


NEVER = [
    pytest.param(dict(frequency="D", time_of_day=time(8), months=0), True, id="months-0"),
    pytest.param(dict(frequency="H", time_of_day=time(8), weekdays=0), True, id="weekdays-0"),
    pytest.param(
        dict(frequency="W", time_of_day=time(8), weekdays=1, indices=(2,)), None, id="W-monday-2nd"
    ),
    pytest.param(
        dict(frequency="W", time_of_day=time(8), weekdays=1 | 64, indices=(3, -3)),
        None,
        id="W-two-days-3rd",
    ),
    pytest.param(dict(frequency="D", time_of_day=time(8), indices=(2, -2)), None, id="D-2nd"),
    pytest.param(dict(frequency="M", time_of_day=time(8), indices=(32,)), None, id="M-32nd"),
    pytest.param(
        dict(frequency="M", time_of_day=time(8), months=2, indices=(-30,)),
        None,
        id="M-february-30th-from-end",
    ),
    pytest.param(
        dict(frequency="M", time_of_day=time(8), weekdays=1, indices=(6,)), None, id="M-6th-monday"
    ),
    pytest.param(
        dict(frequency="Y", time_of_day=time(8), indices=(366, -366), months=4095 ^ 2),
        None,
        id="Y-366th-without-february",
    ),
]


@pytest.mark.parametrize("kwargs, structural", NEVER)
def test_never_firing_rules_answer_empty_quickly(kwargs, structural):
    p = Pattern(**kwargs)
    if structural:
        assert rec.never_fires(p)
    for zone in (UTC, CHICAGO):
        started = _clock.monotonic()
        with time_limit(10, "next_fires(count=1000) of a never-firing rule"):
            assert rec.next_fires(p, u(2024, 1, 1), zone, u(2024, 1, 1), 1000) == []
        assert _clock.monotonic() - started < 5, "a never-firing rule must answer quickly"
    assert (
        oracle_fires(
            anchor=u(2024, 1, 1),
            zone=CHICAGO,
            after=u(2024, 1, 1),
            until=u(2030, 1, 1),
            **{"interval": 1, "indices": (), "months": 4095, "weekdays": 127, **kwargs},
        )
        == []
    )


def test_sparse_rule_far_apart():
    # 5th Monday of February: only when 29 February is a Monday
    p = dict(frequency="Y", time_of_day=time(8), months=2, weekdays=1, indices=(5,))
    got = rec.next_fires(Pattern(**p), u(2000, 1, 1), UTC, u(2000, 1, 1), 3)
    assert got == [u(2016, 2, 29, 8), u(2044, 2, 29, 8), u(2072, 2, 29, 8)]
    engine, oracle = both(p, u(2000, 1, 1), UTC, u(2000, 1, 1), u(2073, 1, 1))
    assert engine == oracle == got


def test_nothing_before_period_zero():
    # anchor mid-month: period 0 is that whole month (its 1st fires if after t0), none before
    p = dict(frequency="M", time_of_day=time(8), indices=(1,), interval=3)
    engine, oracle = both(p, u(2024, 5, 20), UTC, u(2023, 1, 1), u(2025, 1, 1))
    assert engine == oracle == [u(2024, 5, 1, 8), u(2024, 8, 1, 8), u(2024, 11, 1, 8)]


def test_edges_of_the_datetime_range():
    daily = dict(
        frequency="D", time_of_day=time(23, 30), interval=1, indices=(), months=4095, weekdays=127
    )
    p = Pattern(**daily)
    top = datetime.max.replace(tzinfo=UTC)
    bottom = datetime.min.replace(tzinfo=UTC)
    for zone in (UTC, CHICAGO, LORD_HOWE):
        assert rec.next_fires(p, bottom, zone, top, 5) == []
        assert rec.fires_between(p, top, zone, top, top) == []
        got = rec.next_fires(p, bottom, zone, u(9999, 12, 28), 10)
        expected = oracle_fires(
            **daily,
            anchor=bottom,
            zone=zone,
            after=u(9999, 12, 28),
            until=top,
        )
        assert got == expected
        assert all(f.year == 9999 for f in got)
        # anchor at the top: period 0 is its last local day (or none at all), none before
        got = rec.next_fires(p, top, zone, bottom, 3)
        expected = oracle_fires(
            **daily,
            anchor=top,
            zone=zone,
            after=u(9999, 12, 20),
            until=top,
        )
        assert got == expected


# --------------------------------------------------------------------------
# Several times a day and an end (section 16)
# --------------------------------------------------------------------------

#: The zones section 16's property tests run in.
WIDER_ZONE_NAMES = (
    "UTC",
    "America/Chicago",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Apia",
)
ZONES.setdefault("Europe/Berlin", ZoneInfo("Europe/Berlin"))

# Times near clock changes come from COMMON_TIMES (02:30, 01:30, 02:00, ...) through `times`.
several_times = st.lists(times, min_size=1, max_size=5, unique=True).map(
    lambda ts: tuple(sorted(ts))
)


@dataclass(frozen=True)
class WiderCase:
    case: Case
    times_of_day: tuple[time, ...]
    end: datetime | None

    def pattern(self, zone_name: str | None = None) -> Pattern:
        c = self.case
        return Pattern(
            frequency=c.frequency,
            time_of_day=self.times_of_day[0],
            interval=c.interval,
            indices=c.indices,
            months=c.months,
            weekdays=c.weekdays,
            timezone=zone_name,
            times_of_day=self.times_of_day,
            until=self.end,
        )

    def oracle_kwargs(self) -> dict:
        c = self.case
        return dict(
            frequency=c.frequency,
            time_of_day=self.times_of_day[0],
            interval=c.interval,
            indices=c.indices,
            months=c.months,
            weekdays=c.weekdays,
            anchor=c.anchor,
            zone=c.zone,
            times_of_day=self.times_of_day,
            end=self.end,
        )


@st.composite
def wider_cases(draw, frequencies: str = "YMWDH") -> WiderCase:
    c = draw(cases(frequencies=frequencies, zones=WIDER_ZONE_NAMES))
    ts = draw(several_times)
    span = _seconds(c.until - c.after)
    end = draw(
        st.one_of(
            st.none(),
            st.integers(-span // 4, span + span // 4).map(lambda s: c.after + timedelta(seconds=s)),
            instants_near(getattr(c.zone, "key", "UTC")),
        )
    )
    return WiderCase(c, ts, end)


def _describe_wider(w: WiderCase) -> None:
    _describe(w.case)
    note(f"times_of_day={[t.isoformat() for t in w.times_of_day]} until={w.end}")


@_settings(1.0)
@given(w=wider_cases())
def test_several_times_and_until_match_oracle(w: WiderCase) -> None:
    """Each selected date fires once per time; nothing later than `until`."""
    _describe_wider(w)
    c = w.case
    expected = oracle_fires(**w.oracle_kwargs(), after=c.after, until=c.until)
    event(f"{c.frequency} {len(w.times_of_day)} times, fires: {_bucket(len(expected))}")
    with time_limit(ENGINE_TIME_LIMIT, "fires_between"):
        got = rec.fires_between(w.pattern(), c.anchor, c.zone, c.after, c.until)
    assert_well_formed(got, c.after, c.until)
    if w.end is not None:
        assert all(f <= w.end for f in got)
    assert got == expected


@_settings(0.5)
@given(w=wider_cases(), count=st.one_of(st.integers(1, 5), st.integers(6, 60)))
def test_several_times_next_fires_match_oracle(w: WiderCase, count: int) -> None:
    _describe_wider(w)
    c = w.case
    expected: list[datetime] = []
    until = c.after
    for _ in range(MAX_WINDOWS):
        start, until = until, until + WINDOW[c.frequency]
        expected += oracle_fires(**w.oracle_kwargs(), after=start, until=until)
        if len(expected) >= count:
            break
    # Own zone (the default is a decoy), as a schedule with a zone of its own reads it.
    zone_name = getattr(c.zone, "key", None)
    p = w.pattern(zone_name)
    with time_limit(ENGINE_TIME_LIMIT, "next_fires"):
        got = rec.next_fires(p, c.anchor, DECOY if zone_name else c.zone, c.after, count)
    assert_well_formed(got, c.after, w.end)
    if len(expected) >= count:
        assert got == expected[:count]
    else:
        assert [f for f in got if f <= until] == expected


@_settings(0.5)
@given(w=wider_cases())
def test_several_times_fire_details_match_oracle(w: WiderCase) -> None:
    """`shifted` with several times: a fire is shifted only when every selected wall time
    landing on it lies in a gap (02:30 moved onto 03:30, with 03:30 also asked for, is not)."""
    _describe_wider(w)
    c = w.case
    expected = oracle_details(**w.oracle_kwargs(), after=c.after, until=c.until)
    event(f"shifted fires: {_bucket(sum(shifted for _, shifted in expected))}")
    p = w.pattern()
    with time_limit(ENGINE_TIME_LIMIT, "fire_details"):
        fires = rec.fires_between(p, c.anchor, c.zone, c.after, c.until)
        details = rec.fire_details(p, c.anchor, c.zone, fires)
    assert [(d.instant, d.shifted) for d in details] == expected


@given(c=cases(zones=WIDER_ZONE_NAMES))
@_settings(0.2)
def test_one_time_in_times_of_day_is_exactly_time_of_day(c: Case) -> None:
    """`times_of_day` = [time_of_day] and no `until` fire exactly as before section 16."""
    single = dataclasses.replace(c.pattern(), times_of_day=(c.time_of_day,))
    assert single == c.pattern()
    assert rec.fires_between(single, c.anchor, c.zone, c.after, c.until) == c.oracle()


def test_times_of_day_defaults_to_time_of_day_and_answers_ascending():
    assert Pattern("D", time(8)).times_of_day == (time(8),)
    p = Pattern("D", time(6), times_of_day=[time(18), time(6), time(14)])
    assert p.times_of_day == (time(6), time(14), time(18))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_of_day": time(7), "times_of_day": (time(6), time(18))}, "earliest"),
        ({"time_of_day": time(6), "times_of_day": (time(6), time(6))}, "repeat"),
        (
            {
                "time_of_day": time(0),
                "times_of_day": tuple(time(h, m) for h in range(13) for m in (0, 30)),
            },
            "at most 24",
        ),
        ({"time_of_day": time(6), "times_of_day": (time(6, 0, 0, 5),)}, "microseconds"),
        ({"time_of_day": time(6), "until": datetime(2030, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_times_of_day_and_until_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Pattern("D", **kwargs)


def test_until_is_inclusive_and_ends_the_fires():
    p = Pattern("D", time(6), times_of_day=(time(6), time(18)), until=u(2027, 1, 3, 6))
    got = rec.next_fires(p, u(2027, 1, 1), UTC, u(2027, 1, 1), 100)
    assert got == [u(2027, 1, 1, 6), u(2027, 1, 1, 18), u(2027, 1, 2, 6), u(2027, 1, 2, 18),
                   u(2027, 1, 3, 6)]  # fmt: skip
    assert rec.fires_between(p, u(2027, 1, 1), UTC, u(2027, 1, 3), u(2030, 1, 1)) == [
        u(2027, 1, 3, 6)
    ]
    assert list(rec.iter_fires(p, u(2027, 1, 1), UTC, u(2027, 1, 3, 6))) == []


def test_hourly_fires_once_per_hour_per_distinct_minutes_and_seconds():
    # 06:15 and 07:15 share their minutes: one fire at :15 each hour, and one at :45.
    p = Pattern("H", time(6, 15), times_of_day=(time(6, 15), time(7, 15), time(9, 45)))
    got = rec.next_fires(p, u(2027, 1, 1), UTC, u(2027, 1, 1), 4)
    assert got == [u(2027, 1, 1, 0, 15), u(2027, 1, 1, 0, 45), u(2027, 1, 1, 1, 15),
                   u(2027, 1, 1, 1, 45)]  # fmt: skip


def test_indices_select_dates_not_times():
    # The last weekday of the month, at 06:00 and 18:00: both times of that one date.
    p = Pattern("M", time(6), weekdays=31, indices=(-1,), times_of_day=(time(6), time(18)))
    got = rec.next_fires(p, u(2027, 1, 1), UTC, u(2027, 1, 1), 4)
    assert got == [u(2027, 1, 29, 6), u(2027, 1, 29, 18), u(2027, 2, 26, 6), u(2027, 2, 26, 18)]


def test_several_times_across_the_chicago_spring_gap():
    # 2027-03-14: 02:30 does not exist, it takes the offset before (03:30 CDT = 08:30 UTC), the
    # instant of 03:30 itself: one fire, not shifted, as 03:30 is asked for too.
    p = Pattern("D", time(1, 30), times_of_day=(time(1, 30), time(2, 30), time(3, 30)),
                timezone="America/Chicago")  # fmt: skip
    fires = rec.fires_between(p, u(2027, 3, 1), DECOY, u(2027, 3, 14), u(2027, 3, 14, 12))
    assert fires == [u(2027, 3, 14, 7, 30), u(2027, 3, 14, 8, 30)]
    details = rec.fire_details(p, u(2027, 3, 1), DECOY, fires)
    assert [d.shifted for d in details] == [False, False]
