"""Worked examples for pytm4srv.recurrence (the rules of docs/RECURRENCE.md).

Every expected value below was worked out by hand from the calendar and the zones' published
rules (noted beside each case); none was copied from the engine's output. The brute-force
comparison lives in test_recurrence_oracle.py.
"""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from pytm4srv.recurrence import (
    ALL_MONTHS,
    ALL_WEEKDAYS,
    Pattern,
    fires_between,
    iter_fires,
    never_fires,
    next_fires,
)

CHICAGO = ZoneInfo("America/Chicago")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
APIA = ZoneInfo("Pacific/Apia")
TOKYO = ZoneInfo("Asia/Tokyo")

MON, TUE, WED, THU, FRI, SAT, SUN = (1 << i for i in range(7))
JAN, FEB, MAR = 1, 2, 4
EIGHT = time(8)


def u(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hourly(first: datetime, n: int) -> list[datetime]:
    return [first + timedelta(hours=i) for i in range(n)]


# --------------------------------------------------------------------------
# The examples of docs/RECURRENCE.md, The five frequencies (Z = UTC, time_of_day 08:00);
# 2024-01-01 is a Monday.
# --------------------------------------------------------------------------

JAN1 = u(2024, 1, 1)


@pytest.mark.parametrize("zone", [UTC, ZoneInfo("UTC")], ids=["timezone.utc", "ZoneInfo-UTC"])
@pytest.mark.parametrize(
    "pattern, expected",
    [
        pytest.param(
            Pattern("M", EIGHT, indices=(1, 14)),
            [u(2024, 1, 1, 8), u(2024, 1, 14, 8), u(2024, 2, 1, 8), u(2024, 2, 14, 8)],
            id="M-1st-and-14th",
        ),
        pytest.param(
            # 2024 is a leap year: the second-to-last day of February is the 28th
            Pattern("M", EIGHT, indices=(-2,)),
            [u(2024, 1, 30, 8), u(2024, 2, 28, 8), u(2024, 3, 30, 8), u(2024, 4, 29, 8)],
            id="M-second-to-last-day",
        ),
        pytest.param(
            # 31 Jan is a Wednesday, 29 Feb a Thursday, 31 Mar a Sunday (so Friday 29th)
            Pattern("M", EIGHT, weekdays=MON | TUE | WED | THU | FRI, indices=(-1,)),
            [u(2024, 1, 31, 8), u(2024, 2, 29, 8), u(2024, 3, 29, 8), u(2024, 4, 30, 8)],
            id="M-last-weekday",
        ),
        pytest.param(
            Pattern("W", EIGHT, weekdays=21, interval=2),
            [u(2024, 1, d, 8) for d in (1, 3, 5, 15, 17, 19)],
            id="W-mon-wed-fri-every-other-week",
        ),
        pytest.param(
            Pattern("Y", EIGHT, months=JAN, indices=(1,)),
            [u(y, 1, 1, 8) for y in range(2024, 2028)],
            id="Y-1-January",
        ),
    ],
)
def test_documented_examples(pattern: Pattern, expected: list[datetime], zone: tzinfo) -> None:
    assert next_fires(pattern, JAN1, zone, JAN1, len(expected)) == expected


def test_strictly_after_the_start_instant() -> None:
    p = Pattern("M", EIGHT, indices=(1, 14))
    assert next_fires(p, JAN1, UTC, u(2024, 1, 1, 8), 2) == [u(2024, 1, 14, 8), u(2024, 2, 1, 8)]
    # the same instant written in another zone is the same start
    plus_one = timezone(timedelta(hours=1))
    start = datetime(2024, 1, 1, 9, tzinfo=plus_one)
    assert next_fires(p, JAN1, UTC, start, 1) == [u(2024, 1, 14, 8)]


def test_fires_between_is_after_exclusive_until_inclusive() -> None:
    p = Pattern("D", EIGHT)
    assert fires_between(p, JAN1, UTC, u(2024, 1, 1, 8), u(2024, 1, 3, 8)) == [
        u(2024, 1, 2, 8),
        u(2024, 1, 3, 8),
    ]
    assert fires_between(p, JAN1, UTC, u(2024, 1, 3), u(2024, 1, 2)) == []
    assert next_fires(p, JAN1, UTC, JAN1, 0) == []


def test_iter_fires_is_lazy_and_matches_next_fires() -> None:
    p = Pattern("H", time(0, 10))
    it = iter_fires(p, JAN1, CHICAGO, JAN1)
    first = list(islice(it, 3))
    assert first == [u(2024, 1, 1, 0, 10), u(2024, 1, 1, 1, 10), u(2024, 1, 1, 2, 10)]
    assert next(it) == u(2024, 1, 1, 3, 10)
    assert next_fires(p, JAN1, CHICAGO, JAN1, 4) == [*first, u(2024, 1, 1, 3, 10)]


def test_results_are_utc() -> None:
    fires = next_fires(Pattern("D", EIGHT), JAN1, LONDON, JAN1, 3)
    assert all(f.tzinfo is UTC for f in fires)


# --------------------------------------------------------------------------
# Indices
# --------------------------------------------------------------------------


def test_negative_indices_count_from_the_end() -> None:
    # last Monday: Jan 2024 Mondays 1 8 15 22 29; Feb 5 12 19 26; Mar 4 11 18 25; Apr .. 29
    p = Pattern("M", EIGHT, weekdays=MON, indices=(-1,))
    assert next_fires(p, JAN1, UTC, JAN1, 4) == [
        u(2024, 1, 29, 8),
        u(2024, 2, 26, 8),
        u(2024, 3, 25, 8),
        u(2024, 4, 29, 8),
    ]
    # Saturday is the second-to-last day of every week
    p = Pattern("W", EIGHT, indices=(-2,))
    assert next_fires(p, JAN1, UTC, JAN1, 2) == [u(2024, 1, 6, 8), u(2024, 1, 13, 8)]


def test_two_indices_naming_one_candidate_fire_once() -> None:
    # 5th Monday == last Monday in January 2024; February has only four Mondays
    p = Pattern("M", EIGHT, weekdays=MON, indices=(5, -1))
    assert next_fires(p, JAN1, UTC, JAN1, 3) == [
        u(2024, 1, 29, 8),
        u(2024, 2, 26, 8),
        u(2024, 3, 25, 8),
    ]


def test_position_past_the_end_selects_nothing() -> None:
    # the 366th / -366th day exists only in leap years (31 Dec / 1 Jan)
    p = Pattern("Y", EIGHT, indices=(366,))
    assert next_fires(p, JAN1, UTC, u(2023, 1, 1), 2) == [u(2024, 12, 31, 8), u(2028, 12, 31, 8)]
    p = Pattern("Y", EIGHT, indices=(-366,))
    assert next_fires(p, u(2023, 1, 1), UTC, u(2023, 1, 1), 2) == [
        u(2024, 1, 1, 8),
        u(2028, 1, 1, 8),
    ]
    # day 60 is 1 March in common years, 29 February in leap years
    p = Pattern("Y", EIGHT, indices=(60,))
    assert next_fires(p, u(2023, 1, 1), UTC, u(2023, 1, 1), 3) == [
        u(2023, 3, 1, 8),
        u(2024, 2, 29, 8),
        u(2025, 3, 1, 8),
    ]


def test_week_positions_count_only_the_weeks_candidates() -> None:
    # months = January only: the week 29 Jan - 4 Feb 2024 has candidates 29, 30, 31
    p = Pattern("W", EIGHT, months=JAN, indices=(-1,))
    assert next_fires(p, JAN1, UTC, JAN1, 6) == [
        u(2024, 1, 7, 8),
        u(2024, 1, 14, 8),
        u(2024, 1, 21, 8),
        u(2024, 1, 28, 8),
        u(2024, 1, 31, 8),
        u(2025, 1, 5, 8),  # week 30 Dec 2024 - 5 Jan 2025: Jan 1..5 only
    ]
    # the first January day of the week 30 Dec 2024 - 5 Jan 2025 is Wednesday 1 Jan
    p = Pattern("W", EIGHT, months=JAN, indices=(1,))
    assert next_fires(p, JAN1, UTC, u(2024, 12, 1), 2) == [u(2025, 1, 1, 8), u(2025, 1, 6, 8)]


def test_indices_are_ignored_for_hourly() -> None:
    with_indices = Pattern("H", time(0, 0, 30), indices=(5, -2))
    without = Pattern("H", time(0, 0, 30))
    expected = hourly(u(2024, 1, 1, 0, 0, 30), 30)
    assert next_fires(with_indices, JAN1, UTC, JAN1, 30) == expected
    assert next_fires(without, JAN1, UTC, JAN1, 30) == expected


def test_february_29_on_a_monday() -> None:
    # 29 Feb 2016 was a Monday; the weekday of 29 Feb repeats every 28 years within 2001-2099
    p = Pattern("M", EIGHT, months=FEB, weekdays=MON, indices=(5,))
    assert next_fires(p, u(2000, 1, 1), UTC, u(2000, 1, 1), 3) == [
        u(2016, 2, 29, 8),
        u(2044, 2, 29, 8),
        u(2072, 2, 29, 8),
    ]


# --------------------------------------------------------------------------
# Interval: the anchor fixes the phase
# --------------------------------------------------------------------------


def test_every_other_week_names_the_same_weeks_whatever_the_start() -> None:
    # anchor Wednesday 10 Jan 2024: period 0 is the week of Monday 8 Jan
    p = Pattern("W", EIGHT, weekdays=MON, interval=2)
    anchor = u(2024, 1, 10, 15)
    expected = [u(2024, 1, 22, 8), u(2024, 2, 5, 8), u(2024, 2, 19, 8)]
    for start in (u(2024, 1, 9), u(2024, 1, 15), u(2024, 1, 21, 23)):
        assert next_fires(p, anchor, UTC, start, 3) == expected
    assert next_fires(p, anchor, UTC, u(2024, 1, 22, 8), 1) == [u(2024, 2, 5, 8)]
    # 2029-12-31 is 312 weeks after 2024-01-08 (an even week: its Monday fired before the
    # start); the next eligible Monday is 2030-01-14
    assert next_fires(p, anchor, UTC, u(2030, 1, 1), 2) == [u(2030, 1, 14, 8), u(2030, 1, 28, 8)]


def test_period_zero_is_whole_and_nothing_comes_before_it() -> None:
    # anchor at noon: 08:00 of the anchor's own date still fires (period 0 is the whole date)
    p = Pattern("D", EIGHT, interval=3)
    anchor = u(2024, 1, 1, 12)
    assert next_fires(p, anchor, UTC, u(2023, 12, 25), 3) == [
        u(2024, 1, 1, 8),
        u(2024, 1, 4, 8),
        u(2024, 1, 7, 8),
    ]
    assert next_fires(p, anchor, UTC, u(2024, 1, 5), 2) == [u(2024, 1, 7, 8), u(2024, 1, 10, 8)]
    # every third month from May: May, Aug, Nov, Feb, May
    p = Pattern("M", EIGHT, indices=(1,), interval=3)
    assert next_fires(p, u(2024, 5, 20), UTC, u(2023, 1, 1), 3) == [
        u(2024, 5, 1, 8),
        u(2024, 8, 1, 8),
        u(2024, 11, 1, 8),
    ]
    assert next_fires(p, u(2024, 5, 20), UTC, u(2025, 1, 1), 2) == [
        u(2025, 2, 1, 8),
        u(2025, 5, 1, 8),
    ]


def test_hourly_interval_counts_wall_clock_hours() -> None:
    # anchor 10:20: period 0 is hour 10; then 17, 24 (= 00 next day), 31 (= 07), ...
    p = Pattern("H", time(0, 5), interval=7)
    assert next_fires(p, u(2024, 1, 1, 10, 20), UTC, u(2024, 1, 1, 10), 7) == [
        u(2024, 1, 1, 10, 5),
        u(2024, 1, 1, 17, 5),
        u(2024, 1, 2, 0, 5),
        u(2024, 1, 2, 7, 5),
        u(2024, 1, 2, 14, 5),
        u(2024, 1, 2, 21, 5),
        u(2024, 1, 3, 4, 5),
    ]


def test_huge_intervals() -> None:
    p = Pattern("Y", EIGHT, interval=400, months=JAN, indices=(1,))
    assert next_fires(p, u(2024, 6, 1), UTC, u(3000, 1, 1), 3) == [
        u(3224, 1, 1, 8),
        u(3624, 1, 1, 8),
        u(4024, 1, 1, 8),
    ]
    # the second eligible date of interval 2**31 - 1 is millions of years away
    p = Pattern("D", EIGHT, interval=2**31 - 1)
    assert next_fires(p, JAN1, UTC, u(2023, 12, 31), 5) == [u(2024, 1, 1, 8)]
    p = Pattern("H", EIGHT, interval=2**31 - 1)
    assert next_fires(p, u(2024, 1, 1, 8), CHICAGO, u(2023, 12, 31), 5) == [u(2024, 1, 1, 8)]


def test_hourly_weekday_filter_with_a_daily_interval() -> None:
    # every 24 h from Monday 10:00 -> hour 10 of every date; Tuesdays only
    p = Pattern("H", time(0, 15), interval=24, weekdays=TUE)
    assert next_fires(p, u(2024, 1, 1, 10), UTC, JAN1, 2) == [
        u(2024, 1, 2, 10, 15),
        u(2024, 1, 9, 10, 15),
    ]


# --------------------------------------------------------------------------
# DST: America/Chicago (2024: 10 Mar 02:00 CST -> 03:00 CDT; 3 Nov 02:00 CDT -> 01:00 CST)
# --------------------------------------------------------------------------


def test_chicago_gap_takes_the_offset_before_it() -> None:
    # 02:30 on 10 Mar does not exist: CST (-6) applies -> 08:30Z (03:30 CDT)
    p = Pattern("D", time(2, 30))
    assert next_fires(p, JAN1, CHICAGO, u(2024, 3, 8, 12), 3) == [
        u(2024, 3, 9, 8, 30),  # CST
        u(2024, 3, 10, 8, 30),  # in the gap, CST
        u(2024, 3, 11, 7, 30),  # CDT
    ]


def test_chicago_overlap_takes_the_earlier_instant() -> None:
    # 01:30 on 3 Nov happens twice: the CDT (-5) one, 06:30Z
    p = Pattern("D", time(1, 30))
    assert next_fires(p, JAN1, CHICAGO, u(2024, 11, 1, 12), 3) == [
        u(2024, 11, 2, 6, 30),  # CDT
        u(2024, 11, 3, 6, 30),  # twice; the first, CDT
        u(2024, 11, 4, 7, 30),  # CST
    ]


def test_chicago_hourly_on_the_spring_day_fires_23_times() -> None:
    # local 00:30 CST = 06:30Z ... 02:30 (gap) = 08:30Z = 03:30 CDT, once ... 23:30 CDT = 04:30Z
    p = Pattern("H", time(0, 30))
    got = fires_between(p, JAN1, CHICAGO, u(2024, 3, 10, 6), u(2024, 3, 11, 5))
    assert got == hourly(u(2024, 3, 10, 6, 30), 23)


def test_chicago_hourly_on_the_autumn_day_skips_the_second_0115() -> None:
    # 00:15 CDT 05:15Z, 01:15 CDT 06:15Z, (01:15 CST 07:15Z is not a candidate), 02:15 CST 08:15Z
    p = Pattern("H", time(0, 15))
    got = fires_between(p, JAN1, CHICAGO, u(2024, 11, 3, 5), u(2024, 11, 4, 6))
    assert got == [u(2024, 11, 3, 5, 15), u(2024, 11, 3, 6, 15), *hourly(u(2024, 11, 3, 8, 15), 22)]


def test_hourly_interval_across_dst_keeps_wall_clock_phase() -> None:
    # anchor 10 Mar 00:00 CST: wall hours 0, 5, 10, 15, 20, then 11 Mar 01 (25 = 24 + 1)
    p = Pattern("H", time(0), interval=5)
    assert next_fires(p, u(2024, 3, 10, 6), CHICAGO, u(2024, 3, 10, 5), 6) == [
        u(2024, 3, 10, 6),  # 00:00 CST
        u(2024, 3, 10, 10),  # 05:00 CDT: only 4 real hours later
        u(2024, 3, 10, 15),
        u(2024, 3, 10, 20),
        u(2024, 3, 11, 1),  # 20:00 CDT
        u(2024, 3, 11, 6),  # 11 Mar 01:00 CDT
    ]
    # autumn: every 2 wall hours from 00:00 CDT; 02:00 CST is 3 real hours after 00:00 CDT
    p = Pattern("H", time(0), interval=2)
    assert next_fires(p, u(2024, 11, 3, 5), CHICAGO, u(2024, 11, 3, 4), 3) == [
        u(2024, 11, 3, 5),
        u(2024, 11, 3, 8),
        u(2024, 11, 3, 10),
    ]


# --------------------------------------------------------------------------
# DST: Europe/London (2024: 31 Mar 01:00 GMT -> 02:00 BST; 27 Oct 02:00 BST -> 01:00 GMT)
# --------------------------------------------------------------------------


def test_london_gap_and_overlap() -> None:
    p = Pattern("D", time(1, 30))
    assert next_fires(p, JAN1, LONDON, u(2024, 3, 29, 12), 3) == [
        u(2024, 3, 30, 1, 30),  # GMT
        u(2024, 3, 31, 1, 30),  # in the gap: GMT, i.e. 02:30 BST
        u(2024, 4, 1, 0, 30),  # BST
    ]
    assert next_fires(p, JAN1, LONDON, u(2024, 10, 25, 12), 3) == [
        u(2024, 10, 26, 0, 30),  # BST
        u(2024, 10, 27, 0, 30),  # twice; the first, BST
        u(2024, 10, 28, 1, 30),  # GMT
    ]
    # Sundays at 01:30: the spring-forward Sunday keeps GMT
    p = Pattern("W", time(1, 30), weekdays=SUN)
    assert next_fires(p, JAN1, LONDON, u(2024, 3, 24, 12), 2) == [
        u(2024, 3, 31, 1, 30),
        u(2024, 4, 7, 0, 30),
    ]


# --------------------------------------------------------------------------
# Australia/Lord_Howe: +10:30 standard, +11 summer, a 30-minute shift
# (2024: 7 Apr 02:00 +11 -> 01:30 +10:30; 6 Oct 02:00 +10:30 -> 02:30 +11)
# --------------------------------------------------------------------------


def test_lord_howe_half_hour_gap_and_overlap() -> None:
    p = Pattern("D", time(2, 15))
    assert next_fires(p, JAN1, LORD_HOWE, u(2024, 10, 4, 12), 3) == [
        u(2024, 10, 4, 15, 45),  # 5 Oct 02:15 +10:30
        u(2024, 10, 5, 15, 45),  # 6 Oct 02:15 in the gap: +10:30 (= 02:45 +11)
        u(2024, 10, 6, 15, 15),  # 7 Oct 02:15 +11
    ]
    p = Pattern("D", time(1, 45))
    assert next_fires(p, JAN1, LORD_HOWE, u(2024, 4, 5), 3) == [
        u(2024, 4, 5, 14, 45),  # 6 Apr 01:45 +11
        u(2024, 4, 6, 14, 45),  # 7 Apr 01:45 twice: the first, +11
        u(2024, 4, 7, 15, 15),  # 8 Apr 01:45 +10:30
    ]


def test_lord_howe_hourly_steps_by_half_an_hour_at_the_gap() -> None:
    # 6 Oct local 00:15, 01:15 at +10:30; 02:15 in the gap (+10:30); 03:15, 04:15 at +11
    p = Pattern("H", time(0, 15))
    assert next_fires(p, JAN1, LORD_HOWE, u(2024, 10, 5, 13), 5) == [
        u(2024, 10, 5, 13, 45),
        u(2024, 10, 5, 14, 45),
        u(2024, 10, 5, 15, 45),
        u(2024, 10, 5, 16, 15),
        u(2024, 10, 5, 17, 15),
    ]


# --------------------------------------------------------------------------
# Pacific/Apia skipped 30 Dec 2011: 29 Dec 24:00 -10 (10:00Z) became 31 Dec 00:00 +14
# --------------------------------------------------------------------------


def test_apia_daily_across_the_skipped_day_fires_once_per_instant() -> None:
    # local 28, 29 Dec at -10; 30 Dec (gap) at -10; 31 Dec, 1 and 2 Jan at +14
    p = Pattern("D", EIGHT)
    assert next_fires(p, u(2011, 1, 1), APIA, u(2011, 12, 27, 20), 5) == [
        u(2011, 12, 28, 18),
        u(2011, 12, 29, 18),
        u(2011, 12, 30, 18),  # 30 Dec 08:00 -10 and 31 Dec 08:00 +14: one instant
        u(2011, 12, 31, 18),  # 1 Jan
        u(2012, 1, 1, 18),  # 2 Jan
    ]


def test_apia_hourly_is_ascending_without_duplicates() -> None:
    # 29 Dec 00:00 -10 = 10:00Z; 30 Dec 23:00 (gap, -10) = 31 Dec 09:00Z comes before
    # 31 Dec 00:00 +14 = 30 Dec 10:00Z in wall order; the 24 hours of the missing day and of
    # 31 Dec are the same instants. The result is every whole hour from 29 Dec 10:00Z.
    p = Pattern("H", time(0))
    assert next_fires(p, u(2011, 1, 1), APIA, u(2011, 12, 29, 9, 30), 72) == hourly(
        u(2011, 12, 29, 10), 72
    )


def test_apia_positions_count_candidates_before_deduplication() -> None:
    anchor = u(2011, 1, 1)
    december = (u(2011, 12, 1), u(2012, 1, 1))
    # 30 and 31 Dec are positions 30 and 31 (and -2, -1) but one instant
    for indices in [(30, 31), (-1,), (-2,)]:
        p = Pattern("M", EIGHT, indices=indices)
        assert fires_between(p, anchor, APIA, *december) == [u(2011, 12, 30, 18)]
    p = Pattern("M", EIGHT, indices=(29,))
    assert fires_between(p, anchor, APIA, *december) == [u(2011, 12, 29, 18)]
    # week 26 Dec 2011 - 1 Jan 2012: the 5th day (Fri 30) and the 6th (Sat 31) are one instant
    for indices in [(5,), (6,), (5, 6)]:
        p = Pattern("W", EIGHT, indices=indices)
        assert fires_between(p, anchor, APIA, u(2011, 12, 26), u(2012, 1, 2)) == [
            u(2011, 12, 30, 18)
        ]


# --------------------------------------------------------------------------
# Rules that never fire
# --------------------------------------------------------------------------

NEVER = [
    pytest.param(Pattern("D", EIGHT, months=0), JAN1, id="months-0"),
    pytest.param(Pattern("H", EIGHT, weekdays=0), JAN1, id="weekdays-0"),
    pytest.param(Pattern("W", EIGHT, weekdays=MON, indices=(2,)), JAN1, id="W-one-day-2nd"),
    pytest.param(Pattern("W", EIGHT, indices=(8,)), JAN1, id="W-8th"),
    pytest.param(Pattern("D", EIGHT, indices=(2, -2)), JAN1, id="D-2nd"),
    pytest.param(Pattern("M", EIGHT, indices=(32,)), JAN1, id="M-32nd"),
    pytest.param(Pattern("M", EIGHT, weekdays=MON, indices=(6,)), JAN1, id="M-6th-monday"),
    pytest.param(Pattern("M", EIGHT, months=FEB, indices=(30,)), JAN1, id="M-30-february"),
    pytest.param(Pattern("Y", EIGHT, months=FEB, indices=(-30,)), JAN1, id="Y-30th-last-feb"),
    # the ones below depend on the anchor's phase: a structural check cannot see them
    pytest.param(Pattern("D", EIGHT, interval=7, weekdays=TUE), JAN1, id="D-7-from-Mon-on-Tue"),
    pytest.param(
        Pattern("D", EIGHT, interval=146097, weekdays=TUE), JAN1, id="D-400-years-from-Mon"
    ),
    pytest.param(
        Pattern("H", EIGHT, interval=168, weekdays=TUE), u(2024, 1, 1, 12), id="H-168-on-Tue"
    ),
    pytest.param(
        Pattern("Y", EIGHT, interval=400, indices=(366,)), u(2023, 6, 1), id="Y-400-common-year"
    ),
    pytest.param(
        Pattern("M", EIGHT, interval=4800, months=FEB, indices=(29,)),
        u(2023, 2, 1),
        id="M-4800-common-february",
    ),
    pytest.param(
        # 29 Jan - 4 Feb 2024 is never a whole January week, 400 years later neither
        Pattern("W", EIGHT, interval=20871, months=JAN, indices=(7,)),
        u(2024, 1, 29, 12),
        id="W-20871-partial-week",
    ),
    pytest.param(
        # every 4th February from 2023: always a common year, never five Mondays
        Pattern("M", EIGHT, interval=48, months=FEB, weekdays=MON, indices=(5,)),
        u(2023, 2, 1),
        id="M-48-common-februaries-only",
    ),
]


@pytest.mark.parametrize("pattern, anchor", NEVER)
@pytest.mark.parametrize("zone", [UTC, CHICAGO], ids=["UTC", "Chicago"])
def test_never_firing_rules_answer_empty_at_once(
    pattern: Pattern, anchor: datetime, zone: tzinfo
) -> None:
    started = clock.perf_counter()
    assert next_fires(pattern, anchor, zone, datetime.min.replace(tzinfo=UTC), 1000) == []
    assert fires_between(pattern, anchor, zone, JAN1, datetime.max.replace(tzinfo=UTC)) == []
    # a day-by-day scan to year 9999 would take seconds; the engine needs milliseconds
    assert clock.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "pattern, expected",
    [
        (Pattern("D", EIGHT, months=0), True),
        (Pattern("W", EIGHT, weekdays=0), True),
        (Pattern("W", EIGHT, weekdays=MON, indices=(2,)), True),
        (Pattern("D", EIGHT, indices=(2,)), True),
        (Pattern("M", EIGHT, indices=(32,)), True),
        (Pattern("M", EIGHT, months=FEB, indices=(30,)), True),
        # Mondays of February and March: 4 + 5 or 5 + 4 at most, so 9
        (Pattern("Y", EIGHT, months=FEB | MAR, weekdays=MON, indices=(10,)), True),
        (Pattern("Y", EIGHT, months=FEB | MAR, weekdays=MON, indices=(9,)), False),
        (Pattern("H", EIGHT, indices=(5,)), False),  # indices are ignored for H
        (Pattern("D", EIGHT, indices=(-1, 3)), False),
        (Pattern("D", EIGHT, interval=7, weekdays=TUE), False),  # depends on the anchor
        (Pattern("M", EIGHT, indices=(31,)), False),
        (Pattern("Y", EIGHT, indices=(366,)), False),
    ],
)
def test_never_fires_structural_check(pattern: Pattern, expected: bool) -> None:
    assert never_fires(pattern) is expected


# --------------------------------------------------------------------------
# The edges of the datetime range
# --------------------------------------------------------------------------

BOTTOM = datetime.min.replace(tzinfo=UTC)
TOP = datetime.max.replace(tzinfo=UTC)


def test_first_local_day_in_a_zone_west_of_utc() -> None:
    # Chicago's local mean time is -5:50:36: 0001-01-01 23:30 LMT = 0001-01-02 05:20:36Z
    p = Pattern("D", time(23, 30))
    assert next_fires(p, BOTTOM, CHICAGO, BOTTOM, 2) == [
        u(1, 1, 2, 5, 20, 36),
        u(1, 1, 3, 5, 20, 36),
    ]


def test_first_local_day_in_a_zone_east_of_utc_is_dropped_when_unrepresentable() -> None:
    # Tokyo LMT +9:18:59: 0001-01-01 05:00 local is in year 0 UTC (dropped);
    # 0001-01-02 05:00 local = 0001-01-01 19:41:01Z
    p = Pattern("D", time(5))
    assert next_fires(p, BOTTOM, TOKYO, BOTTOM, 2) == [
        u(1, 1, 1, 19, 41, 1),
        u(1, 1, 2, 19, 41, 1),
    ]


def test_anchor_and_start_before_year_1_in_utc() -> None:
    # 0001-01-01 00:00+05:00 is 0000-12-31 19:00Z: period 0 is ordinal 0, so with interval 2
    # the eligible dates are ordinals 2, 4, ... (2 and 4 January of year 1)
    edge = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    p = Pattern("D", time(0), interval=2)
    assert next_fires(p, edge, UTC, edge, 2) == [u(1, 1, 2), u(1, 1, 4)]


def test_last_days_in_utc_and_chicago() -> None:
    p = Pattern("D", time(23, 30))
    assert next_fires(p, JAN1, UTC, u(9999, 12, 30), 5) == [
        u(9999, 12, 30, 23, 30),
        u(9999, 12, 31, 23, 30),
    ]
    # CST: 9999-12-31 23:30 local would be 10000-01-01 05:30Z and is dropped
    assert next_fires(p, JAN1, CHICAGO, u(9999, 12, 30), 5) == [
        u(9999, 12, 30, 5, 30),
        u(9999, 12, 31, 5, 30),
    ]
    assert next_fires(Pattern("H", time(0)), JAN1, UTC, u(9999, 12, 31, 21, 30), 5) == [
        u(9999, 12, 31, 22),
        u(9999, 12, 31, 23),
    ]
    p = Pattern("Y", EIGHT, months=1 << 11, indices=(-1,))
    assert next_fires(p, JAN1, UTC, u(9998, 12, 31, 12), 3) == [u(9999, 12, 31, 8)]


def test_anchor_at_the_last_instant() -> None:
    p = Pattern("D", EIGHT)
    # in Chicago datetime.max is 9999-12-31 17:59 local: period 0 is that date
    assert next_fires(p, TOP, CHICAGO, BOTTOM, 3) == [u(9999, 12, 31, 14)]
    # in Tokyo it is already 10000-01-01: period 0 is past the calendar
    assert next_fires(p, TOP, TOKYO, BOTTOM, 3) == []
    assert next_fires(p, JAN1, UTC, TOP, 3) == []


def test_the_last_partial_week() -> None:
    # 9999-12-27 is a Monday and 9999-12-31 a Friday: the week's days are Mon..Fri only
    # (the start is Sunday 26 Dec at noon, after that Sunday's 08:00)
    p = Pattern("W", EIGHT, indices=(-1,))
    assert next_fires(p, JAN1, UTC, u(9999, 12, 26, 12), 3) == [u(9999, 12, 31, 8)]
    p = Pattern("W", EIGHT, indices=(6,))
    assert next_fires(p, JAN1, UTC, u(9999, 12, 26, 12), 3) == []


EDGE_ZONES = [
    UTC,
    timezone(timedelta(hours=5)),
    timezone(timedelta(hours=-5)),
    CHICAGO,
    TOKYO,
    ZoneInfo("Pacific/Kiritimati"),
    ZoneInfo("Pacific/Pago_Pago"),
]
EDGE_INSTANTS = [
    BOTTOM,
    TOP,
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12))),
    datetime(1, 1, 1, 12, tzinfo=CHICAGO),
    datetime(9999, 12, 31, 23, tzinfo=TOKYO),
]


@pytest.mark.parametrize("frequency", ["Y", "M", "W", "D", "H"])
@pytest.mark.parametrize("zone", EDGE_ZONES, ids=str)
def test_edges_never_raise(frequency: str, zone: tzinfo) -> None:
    patterns = [
        Pattern(frequency, time(23, 59, 59)),
        Pattern(frequency, time(0), interval=3, indices=(1, -1)),
        Pattern(frequency, time(12), interval=2**31 - 1, indices=(-2,)),
    ]
    for p in patterns:
        for anchor in EDGE_INSTANTS:
            for after in EDGE_INSTANTS:
                fires = next_fires(p, anchor, zone, after, 5)
                assert all(f > after and f.tzinfo is UTC for f in fires)
                assert fires == sorted(set(fires))
                assert list(islice(iter_fires(p, anchor, zone, after), 5)) == fires
                # fewer than 5 means the calendar ran out: nothing more up to the last instant
                until = fires[-1] if len(fires) == 5 else TOP
                assert fires_between(p, anchor, zone, after, until) == fires


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frequency": "X"},
        {"interval": 0},
        {"indices": (0,)},
        {"indices": (367,)},
        {"indices": (-367,)},
        {"months": ALL_MONTHS + 1},
        {"months": -1},
        {"weekdays": ALL_WEEKDAYS + 1},
        {"time_of_day": time(8, 0, 0, 1)},
        {"time_of_day": time(8, tzinfo=UTC)},
    ],
)
def test_invalid_patterns_are_rejected(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"frequency": "D", "time_of_day": EIGHT, **kwargs}
    with pytest.raises(ValueError):
        Pattern(**fields)  # type: ignore[arg-type]


def test_indices_given_as_a_list_become_a_tuple() -> None:
    p = Pattern("M", EIGHT, indices=[1, 14])  # type: ignore[arg-type]
    assert p.indices == (1, 14)
    assert next_fires(p, JAN1, UTC, JAN1, 2) == [u(2024, 1, 1, 8), u(2024, 1, 14, 8)]


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError):
        next_fires(Pattern("D", EIGHT), datetime(2024, 1, 1), UTC, JAN1, 1)
