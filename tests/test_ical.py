"""Schedules as iCalendar RRULE text and back (pytm4srv.ical; docs/RECURRENCE.md, "RRULE").

The reference is python-dateutil's ``rrulestr(text, forceset=True)``: the text a schedule
answers must expand to exactly its fires, and a text read in must fire as dateutil expands it.
The RFC 5545 section 3.8.5.3 examples that the model can state are read in and compared with
the dates the RFC lists; the others must be refused, naming the part.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from pytm4srv import recurrence as rec
from pytm4srv.ical import RuleRefused, from_rrule, to_rrule

Pattern = rec.Pattern
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
ZONE_NAMES = ("UTC", "America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia")
CLOCK_CHANGES = [
    datetime(2027, 3, 14, 8, tzinfo=UTC),  # Chicago
    datetime(2027, 11, 7, 7, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),  # Berlin
    datetime(2027, 10, 31, 1, tzinfo=UTC),
    datetime(2027, 4, 3, 15, tzinfo=UTC),  # Lord Howe (30 minutes)
    datetime(2027, 10, 2, 15, 30, tzinfo=UTC),
    datetime(2011, 12, 30, 10, tzinfo=UTC),  # Apia skips a day
    datetime(2011, 9, 24, 14, tzinfo=UTC),
]
#: How far an example compares the two expansions, by frequency.
SPAN = {
    "Y": timedelta(days=30 * 366),
    "M": timedelta(days=6 * 366),
    "W": timedelta(days=2 * 366),
    "D": timedelta(days=400),
    "H": timedelta(days=12),
}
EXAMPLES = int(os.environ.get("PYTM4SRV_ICAL_EXAMPLES", "150"))


def dateutil_fires(text: str, after: datetime, before: datetime) -> list[datetime]:
    """dateutil's instants of ``text`` in [after, before], as UTC, ascending, each once."""
    rules = rrulestr(text, forceset=True)
    return sorted({d.astimezone(UTC) for d in rules.between(after, before, inc=True)})


def pattern_of(fields, timezone: str | None = None) -> Pattern:
    values = fields.values()
    values.pop("anchor", None)
    values["timezone"] = values.get("timezone", timezone)
    return Pattern(**values)


# --------------------------------------------------------------------------
# Random schedules: answered text == the fires, and reading it back fires the same
# --------------------------------------------------------------------------

hours_st = st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True)
minutes_st = st.lists(st.sampled_from([0, 15, 30, 45, 59]), min_size=1, max_size=2, unique=True)
seconds_st = st.one_of(st.just([0]), st.lists(st.integers(0, 59), min_size=1, max_size=2))


@st.composite
def times_st(draw) -> tuple[time, ...]:
    """Mostly a product of hours, minutes and seconds (what an RRULE states), sometimes not."""
    if draw(st.integers(0, 5)) == 0:
        picked = draw(st.lists(st.builds(time, st.integers(0, 23), st.integers(0, 59)),
                               min_size=1, max_size=4, unique=True))  # fmt: skip
        return tuple(sorted(picked))
    hours, minutes, seconds = draw(hours_st), draw(minutes_st), draw(seconds_st)
    return tuple(sorted({time(h, m, s) for h in hours for m in minutes for s in seconds}))


@st.composite
def schedules(draw) -> tuple[Pattern, datetime]:
    frequency = draw(st.sampled_from("YMWDH"))
    times = draw(times_st())
    indices = draw(
        st.one_of(
            st.just(()),
            st.lists(st.one_of(st.integers(1, 5), st.integers(-5, -1)), min_size=1, max_size=3),
            st.lists(st.sampled_from([1, 14, 28, 31, -1, -2, 60, 200]), min_size=1, max_size=2),
        )
    )
    zone = draw(st.sampled_from(ZONE_NAMES))
    anchor = draw(
        st.one_of(
            st.integers(0, 10 * 366 * 86400).map(
                lambda s: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
            ),
            # Near a clock change of one of the zones (Apia's skipped 2011-12-30 included).
            st.builds(
                lambda t, s: t + timedelta(seconds=s),
                st.sampled_from(CLOCK_CHANGES),
                st.integers(-3 * 86400, 3 * 86400),
            ),
        )
    )
    until = draw(
        st.one_of(
            st.none(),
            st.integers(0, 3 * 366 * 86400).map(lambda s: anchor + timedelta(seconds=s)),
        )
    )
    pattern = Pattern(
        frequency=frequency,
        time_of_day=times[0],
        interval=draw(st.sampled_from([1, 1, 1, 2, 3, 5, 7])),
        indices=tuple(indices),
        months=draw(st.sampled_from([4095, 4095, 1, 0b100000100, 0b111111000000])),
        weekdays=draw(st.sampled_from([127, 127, 31, 1, 96, 21])),
        timezone=zone,
        times_of_day=times,
        until=until,
    )
    # Skip a few real fires, and one instant that is none.
    fires = rec.next_fires(pattern, anchor, UTC, anchor - timedelta(days=40), 30)
    skip = draw(st.lists(st.sampled_from(fires), max_size=4)) if fires else []
    skip.append(anchor + timedelta(seconds=7))
    return dataclasses.replace(pattern, skip=tuple(skip)), anchor


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(schedule=schedules())
def test_answered_rrule_expands_to_the_fires_and_reads_back_the_same(schedule) -> None:
    pattern, anchor = schedule
    text = to_rrule(pattern, anchor, UTC, "UTC")
    note(repr(pattern))
    note(str(text))
    first = rec.next_fires(dataclasses.replace(pattern, skip=()), anchor, UTC, EARLIEST, 1)
    event(f"{pattern.frequency} {'stated' if text else 'no text'}")
    if text is None:
        # Only a schedule that never fires, or whose BYSETPOS would run past position 366 (a
        # date's block holds every combination of its times' hours, minutes and seconds), or
        # a weekly one with positions and not every month, has no text.
        hourly = pattern.frequency == "H"
        times = {t.replace(hour=0) for t in pattern.times_of_day} if hourly else set()
        times = times or set(pattern.times_of_day)
        sizes = [len({getattr(t, part) for t in times}) for part in ("hour", "minute", "second")]
        grid = sizes[0] * sizes[1] * sizes[2]
        most = 2 * max((abs(i) for i in pattern.indices), default=0)
        most = most or {"Y": 366, "M": 31, "W": 7, "D": 1, "H": 1}[pattern.frequency]
        far = grid * most > 366
        # dateutil does not count a BYSETPOS over whole weeks (only months are all here).
        weekly = pattern.frequency == "W" and pattern.indices and pattern.months != 4095
        assert not first or far or weekly
        return
    start = first[0]
    before = start + SPAN[pattern.frequency]
    expected = rec.fires_between(pattern, anchor, UTC, start - timedelta(seconds=1), before)
    assert dateutil_fires(text, start - timedelta(seconds=1), before) == expected
    assert text.startswith(f"DTSTART;TZID={pattern.timezone}:")
    # Read back: the same fires, now from a schedule that got its anchor and zone from DTSTART.
    fields = from_rrule(text, datetime(2000, 1, 1, tzinfo=UTC), None, UTC)
    assert fields.timezone == pattern.timezone
    assert fields.anchor is not None
    again = pattern_of(fields)
    got = rec.fires_between(again, fields.anchor, UTC, start - timedelta(seconds=1), before)
    assert got == expected
    assert to_rrule(again, fields.anchor, UTC, "UTC") is not None


def test_the_answer_names_every_part_and_skipped_instants_become_exdates() -> None:
    p = Pattern("W", time(6), weekdays=0b10101, interval=2, times_of_day=(time(6), time(18)),
                timezone="America/Chicago", until=datetime(2027, 3, 1, tzinfo=UTC),
                skip=(datetime(2027, 1, 6, 12, tzinfo=UTC),))  # fmt: skip
    text = to_rrule(p, datetime(2027, 1, 6, tzinfo=UTC), UTC, "UTC")
    assert text == (
        "DTSTART;TZID=America/Chicago:20270104T060000\n"
        "RRULE:FREQ=WEEKLY;UNTIL=20270301T000000Z;INTERVAL=2;BYSECOND=0;BYMINUTE=0;"
        "BYHOUR=6,18;BYDAY=MO,WE,FR;WKST=MO\n"
        "EXDATE:20270106T120000Z"
    )


@pytest.mark.parametrize(
    ("pattern", "anchor", "skipped", "line"),
    [
        # The first 02:00 of the night the clocks go back (00:00Z), an hourly fire: a skipped
        # instant python-dateutil finds unequal to its wall time when written in UTC.
        (
            Pattern("H", time(0), timezone="Europe/Berlin"),
            datetime(2027, 10, 30, tzinfo=UTC),
            datetime(2027, 10, 31, 0, tzinfo=UTC),
            "EXDATE;TZID=Europe/Berlin:20271031T020000",
        ),
        # 02:30 on the night the clocks go forward is 03:30 CEST (01:30Z): written as asked.
        (
            Pattern("D", time(2, 30), timezone="Europe/Berlin"),
            datetime(2027, 3, 20, tzinfo=UTC),
            datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
            "EXDATE;TZID=Europe/Berlin:20270328T023000",
        ),
        # The second 02:00 (01:00Z) is no fire: in UTC, which excludes nothing.
        (
            Pattern("H", time(0), timezone="Europe/Berlin"),
            datetime(2027, 10, 30, tzinfo=UTC),
            datetime(2027, 10, 31, 1, tzinfo=UTC),
            "EXDATE:20271031T010000Z",
        ),
    ],
)
def test_a_skipped_fire_at_a_clock_change_is_excluded_by_readers(
    pattern, anchor, skipped, line
) -> None:
    pattern = dataclasses.replace(pattern, skip=(skipped,))
    text = to_rrule(pattern, anchor, UTC, "UTC")
    assert text is not None and line in text.splitlines()
    after, before = skipped - timedelta(days=1), skipped + timedelta(days=1)
    expected = rec.fires_between(pattern, anchor, UTC, after - timedelta(microseconds=1), before)
    assert dateutil_fires(text, after, before) == expected  # both from after on
    assert from_rrule(text, anchor, None, UTC).skip == pattern.skip


def test_a_schedule_without_zone_answers_the_service_zone() -> None:
    p = Pattern("D", time(8))
    text = to_rrule(p, datetime(2027, 1, 1, tzinfo=UTC), UTC, "UTC")
    assert text is not None and text.startswith("DTSTART;TZID=UTC:20270101T080000\n")
    berlin = to_rrule(p, datetime(2027, 1, 1, tzinfo=UTC), ZoneInfo("Europe/Berlin"),
                      "Europe/Berlin")  # fmt: skip
    assert berlin is not None and berlin.startswith("DTSTART;TZID=Europe/Berlin:20270101T080000")


@pytest.mark.parametrize(
    "pattern",
    [
        Pattern("D", time(8), months=0),  # never
        # The 20th Monday of the year, at every hour: instance positions 457 to 480.
        Pattern(
            "Y", time(0), weekdays=1, indices=(20,), times_of_day=tuple(time(h) for h in range(24))
        ),
        Pattern("D", time(8), until=datetime(2026, 1, 1, tzinfo=UTC)),  # ends before it starts
    ],
    ids=["never", "positions-past-366", "over-before-the-anchor"],
)
def test_schedules_no_single_rrule_states_answer_none(pattern: Pattern) -> None:
    assert to_rrule(pattern, datetime(2027, 1, 1, tzinfo=UTC), UTC, "UTC") is None


def test_times_that_are_no_grid_of_hours_and_minutes_are_kept_by_bysetpos() -> None:
    # 06:00 and 18:30: BYHOUR=6,18 x BYMINUTE=0,30 gives 06:00, 06:30, 18:00, 18:30 each day;
    # BYSETPOS keeps the 1st and 4th of each day (of each date's block of 4 for a week).
    daily = Pattern("D", time(6), times_of_day=(time(6), time(18, 30)))
    text = to_rrule(daily, datetime(2027, 1, 1, tzinfo=UTC), UTC, "UTC")
    assert text is not None and text.endswith("BYHOUR=6,18;BYSETPOS=1,4")
    weekly = Pattern("W", time(6), weekdays=0b101, times_of_day=(time(6), time(18, 30)))
    text = to_rrule(weekly, datetime(2027, 1, 1, tzinfo=UTC), UTC, "UTC")
    assert text is not None and "BYDAY=MO,WE;BYSETPOS=1,4,5,8;WKST=MO" in text
    after, before = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    expected = rec.fires_between(weekly, datetime(2027, 1, 1, tzinfo=UTC), UTC, after, before)
    assert dateutil_fires(text, after, before) == expected
    back = from_rrule(text, EARLIEST, None, UTC)
    assert (back.times_of_day, back.weekdays) == ((time(6), time(18, 30)), 0b101)


def test_the_first_fire_in_a_gap_is_written_as_the_wall_time_asked_for() -> None:
    # 02:30 on 2027-03-14 does not exist in Chicago; DTSTART says 02:30, which a reader takes
    # with the offset before the gap: the same instant, and every later 02:30 is kept.
    p = Pattern("D", time(2, 30), timezone="America/Chicago")
    anchor = datetime(2027, 3, 14, 12, tzinfo=UTC)
    text = to_rrule(p, anchor, UTC, "UTC")
    assert text is not None and text.startswith("DTSTART;TZID=America/Chicago:20270314T023000")
    after = datetime(2027, 3, 14, tzinfo=UTC)
    before = datetime(2027, 3, 20, tzinfo=UTC)
    assert dateutil_fires(text, after, before) == rec.fires_between(p, anchor, UTC, after, before)


# --------------------------------------------------------------------------
# Reading: folding, CRLF, RRULE alone, COUNT
# --------------------------------------------------------------------------


def test_folded_crlf_lines_are_read() -> None:
    text = (
        "DTSTART;TZID=Europe/Berlin:20270104T060000\r\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=6,18;BYMI\r\n NUTE=0;BYSECOND=0\r\n"
        "EXDATE:20270106T050000Z,\r\n\t20270111T050000Z\r\n"
    )
    fields = from_rrule(text, datetime(2000, 1, 1, tzinfo=UTC), None, UTC)
    assert (fields.frequency, fields.weekdays) == ("W", 0b101)
    assert fields.times_of_day == (time(6), time(18))
    assert fields.skip == (
        datetime(2027, 1, 6, 5, tzinfo=UTC),
        datetime(2027, 1, 11, 5, tzinfo=UTC),
    )
    assert fields.timezone == "Europe/Berlin"
    assert fields.anchor == datetime(2027, 1, 4, 5, tzinfo=UTC)


def test_rrule_alone_keeps_the_anchor_and_zone() -> None:
    anchor = datetime(2027, 1, 6, 14, 30, tzinfo=UTC)  # Wednesday 08:30 in Chicago
    fields = from_rrule("RRULE:FREQ=WEEKLY;INTERVAL=2", anchor, "America/Chicago", UTC)
    assert fields.anchor is None and "anchor" not in fields.values()
    assert "timezone" not in fields.values()
    # The day and the time a reader takes from DTSTART come from the anchor's wall time.
    assert (fields.weekdays, fields.times_of_day) == (0b100, (time(8, 30),))
    bare = from_rrule("FREQ=DAILY;BYHOUR=7;BYMINUTE=0;BYSECOND=0", anchor, None, UTC)
    assert bare.times_of_day == (time(7),)


def test_count_is_read_as_until_the_nth_instance() -> None:
    text = "DTSTART;TZID=UTC:20270101T080000\nRRULE:FREQ=DAILY;BYHOUR=8,20;COUNT=5"
    fields = from_rrule(text, EARLIEST, None, UTC)
    assert fields.until == datetime(2027, 1, 3, 8, tzinfo=UTC)  # 5th of 08:00, 20:00, 08:00...


# --------------------------------------------------------------------------
# RFC 5545 section 3.8.5.3: the examples the model can state, against the dates it lists
# --------------------------------------------------------------------------


def _dates(year: int, month: int, *days: int, at: str = "09:00") -> list[str]:
    return [f"{year:04d}-{month:02d}-{d:02d} {at}" for d in days]


def _rfc(dtstart: str, rule: str, extra: str = "") -> str:
    return f"DTSTART;TZID=America/New_York:{dtstart}\nRRULE:{rule}" + (
        f"\n{extra}" if extra else ""
    )


#: (what the RFC says, text, the first instances it lists, New York wall times).
RFC_EXAMPLES = [
    ("Daily for 10 occurrences", _rfc("19970902T090000", "FREQ=DAILY;COUNT=10"),
     _dates(1997, 9, *range(2, 12))),
    ("Daily until December 24, 1997", _rfc("19970902T090000", "FREQ=DAILY;UNTIL=19971224T000000Z"),
     _dates(1997, 9, *range(2, 31)) + _dates(1997, 10, *range(1, 32))
     + _dates(1997, 11, *range(1, 31)) + _dates(1997, 12, *range(1, 24))),
    ("Every other day - forever", _rfc("19970902T090000", "FREQ=DAILY;INTERVAL=2"),
     _dates(1997, 9, *range(2, 31, 2)) + _dates(1997, 10, *range(2, 32, 2))
     + _dates(1997, 11, *range(1, 31, 2)) + _dates(1997, 12, *range(1, 32, 2))),
    ("Every 10 days, 5 occurrences", _rfc("19970902T090000", "FREQ=DAILY;INTERVAL=10;COUNT=5"),
     _dates(1997, 9, 2, 12, 22) + _dates(1997, 10, 2, 12)),
    ("Every day in January, for 3 years (YEARLY)",
     _rfc("19980101T090000",
          "FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA"),
     _dates(1998, 1, *range(1, 32)) + _dates(1999, 1, *range(1, 32))
     + _dates(2000, 1, *range(1, 32))),
    ("Every day in January, for 3 years (DAILY)",
     _rfc("19980101T090000", "FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1"),
     _dates(1998, 1, *range(1, 32)) + _dates(1999, 1, *range(1, 32))
     + _dates(2000, 1, *range(1, 32))),
    ("Weekly for 10 occurrences", _rfc("19970902T090000", "FREQ=WEEKLY;COUNT=10"),
     _dates(1997, 9, 2, 9, 16, 23, 30) + _dates(1997, 10, 7, 14, 21, 28)
     + _dates(1997, 11, 4)),
    ("Weekly until December 24, 1997",
     _rfc("19970902T090000", "FREQ=WEEKLY;UNTIL=19971224T000000Z"),
     _dates(1997, 9, 2, 9, 16, 23, 30) + _dates(1997, 10, 7, 14, 21, 28)
     + _dates(1997, 11, 4, 11, 18, 25) + _dates(1997, 12, 2, 9, 16, 23)),
    ("Every other week - forever", _rfc("19970902T090000", "FREQ=WEEKLY;INTERVAL=2;WKST=SU"),
     _dates(1997, 9, 2, 16, 30) + _dates(1997, 10, 14, 28) + _dates(1997, 11, 11, 25)
     + _dates(1997, 12, 9, 23) + _dates(1998, 1, 6, 20) + _dates(1998, 2, 3, 17)),
    ("Weekly on Tuesday and Thursday for five weeks (UNTIL)",
     _rfc("19970902T090000", "FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH"),
     _dates(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + _dates(1997, 10, 2)),
    ("Weekly on Tuesday and Thursday for five weeks (COUNT)",
     _rfc("19970902T090000", "FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH"),
     _dates(1997, 9, 2, 4, 9, 11, 16, 18, 23, 25, 30) + _dates(1997, 10, 2)),
    ("Every other week on Monday, Wednesday, and Friday until December 24, 1997",
     _rfc("19970901T090000",
          "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR"),
     _dates(1997, 9, 1, 3, 5, 15, 17, 19, 29) + _dates(1997, 10, 1, 3, 13, 15, 17, 27, 29, 31)
     + _dates(1997, 11, 10, 12, 14, 24, 26, 28) + _dates(1997, 12, 8, 10, 12, 22)),
    ("Every other week on Tuesday and Thursday, for 8 occurrences",
     _rfc("19970902T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH"),
     _dates(1997, 9, 2, 4, 16, 18, 30) + _dates(1997, 10, 2, 14, 16)),
    ("Monthly on the first Friday for 10 occurrences",
     _rfc("19970905T090000", "FREQ=MONTHLY;COUNT=10;BYDAY=1FR"),
     _dates(1997, 9, 5) + _dates(1997, 10, 3) + _dates(1997, 11, 7) + _dates(1997, 12, 5)
     + _dates(1998, 1, 2) + _dates(1998, 2, 6) + _dates(1998, 3, 6) + _dates(1998, 4, 3)
     + _dates(1998, 5, 1) + _dates(1998, 6, 5)),
    ("Monthly on the first Friday until December 24, 1997",
     _rfc("19970905T090000", "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR"),
     _dates(1997, 9, 5) + _dates(1997, 10, 3) + _dates(1997, 11, 7) + _dates(1997, 12, 5)),
    ("Every other month on the first and last Sunday of the month for 10 occurrences",
     _rfc("19970907T090000", "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU"),
     _dates(1997, 9, 7, 28) + _dates(1997, 11, 2, 30) + _dates(1998, 1, 4, 25)
     + _dates(1998, 3, 1, 29) + _dates(1998, 5, 3, 31)),
    ("Monthly on the second-to-last Monday of the month for 6 months",
     _rfc("19970922T090000", "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO"),
     _dates(1997, 9, 22) + _dates(1997, 10, 20) + _dates(1997, 11, 17) + _dates(1997, 12, 22)
     + _dates(1998, 1, 19) + _dates(1998, 2, 16)),
    ("Monthly on the third-to-the-last day of the month, forever",
     _rfc("19970928T090000", "FREQ=MONTHLY;BYMONTHDAY=-3"),
     _dates(1997, 9, 28) + _dates(1997, 10, 29) + _dates(1997, 11, 28) + _dates(1997, 12, 29)
     + _dates(1998, 1, 29) + _dates(1998, 2, 26)),
    ("Monthly on the 2nd and 15th of the month for 10 occurrences",
     _rfc("19970902T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15"),
     _dates(1997, 9, 2, 15) + _dates(1997, 10, 2, 15) + _dates(1997, 11, 2, 15)
     + _dates(1997, 12, 2, 15) + _dates(1998, 1, 2, 15)),
    ("Monthly on the first and last day of the month for 10 occurrences",
     _rfc("19970930T090000", "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1"),
     _dates(1997, 9, 30) + _dates(1997, 10, 1, 31) + _dates(1997, 11, 1, 30)
     + _dates(1997, 12, 1, 31) + _dates(1998, 1, 1, 31) + _dates(1998, 2, 1)),
    ("Every 18 months on the 10th thru 15th of the month for 10 occurrences",
     _rfc("19970910T090000", "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15"),
     _dates(1997, 9, *range(10, 16)) + _dates(1999, 3, 10, 11, 12, 13)),
    ("Every Tuesday, every other month",
     _rfc("19970902T090000", "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU"),
     _dates(1997, 9, 2, 9, 16, 23, 30) + _dates(1997, 11, 4, 11, 18, 25)
     + _dates(1998, 1, 6, 13, 20, 27) + _dates(1998, 3, 3, 10, 17, 24, 31)),
    ("Yearly in June and July for 10 occurrences",
     _rfc("19970610T090000", "FREQ=YEARLY;COUNT=10;BYMONTH=6,7"),
     [d for y in range(1997, 2002) for d in _dates(y, 6, 10) + _dates(y, 7, 10)]),
    ("Every third year on the 1st, 100th, and 200th day for 10 occurrences",
     _rfc("19970101T090000", "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200"),
     _dates(1997, 1, 1) + _dates(1997, 4, 10) + _dates(1997, 7, 19) + _dates(2000, 1, 1)
     + _dates(2000, 4, 9) + _dates(2000, 7, 18) + _dates(2003, 1, 1) + _dates(2003, 4, 10)
     + _dates(2003, 7, 19) + _dates(2006, 1, 1)),
    ("Every 20th Monday of the year, forever", _rfc("19970519T090000", "FREQ=YEARLY;BYDAY=20MO"),
     _dates(1997, 5, 19) + _dates(1998, 5, 18) + _dates(1999, 5, 17)),
    ("Every Thursday in March, forever",
     _rfc("19970313T090000", "FREQ=YEARLY;BYMONTH=3;BYDAY=TH"),
     _dates(1997, 3, 13, 20, 27) + _dates(1998, 3, 5, 12, 19, 26)
     + _dates(1999, 3, 4, 11, 18, 25)),
    ("Every Thursday, but only during June, July, and August, forever",
     _rfc("19970605T090000", "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8"),
     _dates(1997, 6, 5, 12, 19, 26) + _dates(1997, 7, 3, 10, 17, 24, 31)
     + _dates(1997, 8, 7, 14, 21, 28) + _dates(1998, 6, 4, 11, 18, 25)
     + _dates(1998, 7, 2, 9, 16, 23, 30) + _dates(1998, 8, 6, 13, 20, 27)
     + _dates(1999, 6, 3, 10, 17, 24) + _dates(1999, 7, 1, 8, 15, 22, 29)
     + _dates(1999, 8, 5, 12, 19, 26)),
    ("The third instance into the month of one of Tuesday, Wednesday, or Thursday, for the "
     "next 3 months", _rfc("19970904T090000", "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3"),
     _dates(1997, 9, 4) + _dates(1997, 10, 7) + _dates(1997, 11, 6)),
    ("The second-to-last weekday of the month",
     _rfc("19970929T090000", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2"),
     _dates(1997, 9, 29) + _dates(1997, 10, 30) + _dates(1997, 11, 27) + _dates(1997, 12, 30)
     + _dates(1998, 1, 29) + _dates(1998, 2, 26) + _dates(1998, 3, 30)),
    ("Every 20 minutes from 9:00 AM to 4:40 PM every day (DAILY)",
     _rfc("19970902T090000", "FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40"),
     [f"1997-09-{d:02d} {h:02d}:{m:02d}" for d in (2, 3) for h in range(9, 17)
      for m in (0, 20, 40)]),
    ("WKST=MO makes a difference", _rfc("19970805T090000",
                                        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO"),
     _dates(1997, 8, 5, 10, 19, 24)),
    ("An invalid date (February 30) is ignored",
     _rfc("20070115T090000", "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5"),
     _dates(2007, 1, 15, 30) + _dates(2007, 2, 15) + _dates(2007, 3, 15, 30)),
]  # fmt: skip


def _wall_times(text: str, count: int) -> list[str]:
    fields = from_rrule(text, EARLIEST, None, NEW_YORK)
    pattern = pattern_of(fields)
    assert fields.anchor is not None
    fires = rec.next_fires(pattern, fields.anchor, NEW_YORK, fields.anchor - timedelta(days=400),
                           count + 1)  # fmt: skip
    return [f.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M") for f in fires]


@pytest.mark.parametrize(("what", "text", "listed"), RFC_EXAMPLES, ids=[e[0] for e in RFC_EXAMPLES])
def test_rfc_5545_example_fires_on_the_dates_the_rfc_lists(what, text, listed) -> None:
    got = _wall_times(text, len(listed))
    assert got[: len(listed)] == listed
    if "COUNT" in text or "UNTIL" in text:  # the RFC lists every instance: none after them
        assert got == listed
    # dateutil agrees, instance for instance.
    rules = rrulestr(text, forceset=True)
    reference = [d.strftime("%Y-%m-%d %H:%M") for d in rules[: len(listed) + 1]]
    assert reference[: len(listed)] == listed


def test_the_rfcs_every_3_hours_example_lists_an_instance_past_its_until() -> None:
    """RFC 5545's "every 3 hours from 9:00 AM to 5:00 PM on a specific day" (DTSTART
    19970902T090000 New York, UNTIL=19970902T170000Z) lists 09:00, 12:00 and 15:00 EDT. But
    UNTIL is 17:00 UTC, 13:00 EDT: 15:00 EDT (19:00 UTC) is past it. The RFC's own error
    (errata): only 09:00 and 12:00 fire, as dateutil also says."""
    text = _rfc("19970902T090000", "FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z")
    listed_by_the_rfc = ["1997-09-02 09:00", "1997-09-02 12:00", "1997-09-02 15:00"]
    got = _wall_times(text, 3)
    assert got == listed_by_the_rfc[:2]
    assert [d.strftime("%Y-%m-%d %H:%M") for d in rrulestr(text, forceset=True)] == got


#: The RFC examples the model cannot state exactly, with the part the refusal names.
RFC_REFUSED = [
    ("Every other year on January, February, and March for 10 occurrences",
     _rfc("19970310T090000", "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3"),
     "FREQ=YEARLY with INTERVAL above 1"),
    ("Monday of week number 20", _rfc("19970512T090000", "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO"),
     "BYWEEKNO"),
    ("Every Friday the 13th", _rfc("19970902T090000", "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13",
                                   "EXDATE;TZID=America/New_York:19970902T090000"),
     "BYMONTHDAY together with BYDAY"),
    ("The first Saturday that follows the first Sunday of the month",
     _rfc("19970913T090000", "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13"),
     "BYMONTHDAY together with BYDAY"),
    ("U.S. Presidential Election day",
     _rfc("19961105T090000",
          "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8"),
     "BYMONTHDAY together with BYDAY"),
    ("Every 15 minutes for 6 occurrences",
     _rfc("19970902T090000", "FREQ=MINUTELY;INTERVAL=15;COUNT=6"), "FREQ=MINUTELY"),
    ("Every hour and a half for 4 occurrences",
     _rfc("19970902T090000", "FREQ=MINUTELY;INTERVAL=90;COUNT=4"), "FREQ=MINUTELY"),
    ("Every 20 minutes from 9:00 AM to 4:40 PM every day (MINUTELY)",
     _rfc("19970902T090000", "FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16"),
     "FREQ=MINUTELY"),
    ("WKST=SU makes a difference",
     _rfc("19970805T090000", "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU"), "WKST=SU"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "text", "part"), RFC_REFUSED, ids=[e[0] for e in RFC_REFUSED])
def test_rfc_5545_examples_the_model_cannot_state_are_refused(what, text, part) -> None:
    with pytest.raises(RuleRefused, match=part.replace("=", "=")):
        from_rrule(text, EARLIEST, None, NEW_YORK)


# --------------------------------------------------------------------------
# Refusals, each naming the part
# --------------------------------------------------------------------------

D = "DTSTART;TZID=UTC:20270104T080000\n"


@pytest.mark.parametrize(
    ("text", "part"),
    [
        (D + "RRULE:FREQ=SECONDLY", "FREQ=SECONDLY"),
        (D + "RRULE:FREQ=MINUTELY;BYHOUR=8", "FREQ=MINUTELY"),
        (D + "RRULE:FREQ=YEARLY;BYWEEKNO=1", "BYWEEKNO"),
        (D + "RRULE:FREQ=MONTHLY;BYMONTHDAY=1;BYDAY=MO", "BYMONTHDAY together with BYDAY"),
        (D + "RRULE:FREQ=MONTHLY;BYDAY=1MO,2TU", "BYDAY ordinals that differ between weekdays"),
        (D + "RRULE:FREQ=MONTHLY;BYDAY=1MO,1TU,2MO", "BYDAY ordinals that differ between weekdays"),
        (D + "RRULE:FREQ=MONTHLY;BYDAY=1MO,TU", "BYDAY mixes"),
        (D + "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,SU;WKST=SU", "WKST=SU"),
        (D + "RRULE:FREQ=WEEKLY;BYDAY=MO,SU;BYSETPOS=1;WKST=SU", "WKST=SU"),
        (D + "RRULE:FREQ=WEEKLY;BYDAY=2MO", "BYDAY with ordinals"),
        (D + "RRULE:FREQ=DAILY;BYMONTHDAY=1", "BYMONTHDAY with FREQ=DAILY"),
        (D + "RRULE:FREQ=HOURLY;BYMINUTE=0;BYSECOND=0;BYSETPOS=2", "no instance of an hour"),
        (D + "RRULE:FREQ=MONTHLY;BYMONTHDAY=1,15;BYSETPOS=1", "BYSETPOS together with BYMONTHDAY"),
        (
            D + "RRULE:FREQ=MONTHLY;BYDAY=MO;BYHOUR=6,18;BYSETPOS=1,4",
            "different times on different days",
        ),
        (D + "RRULE:FREQ=MONTHLY;BYYEARDAY=1", "BYYEARDAY"),
        (D + "RRULE:FREQ=HOURLY;BYHOUR=8", "BYHOUR with FREQ=HOURLY"),
        (D + "RRULE:FREQ=DAILY;BYHOUR=1,2,3,4,5;BYMINUTE=0,10,20,30,40", "more than 24|at most 24"),
        (D + "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20280101T000000Z", "COUNT and UNTIL"),
        (D + "RRULE:FREQ=DAILY;UNTIL=20280101", "UNTIL must be a date-time"),
        (D + "RRULE:FREQ=DAILY;UNTIL=20280101T000000", "UNTIL must be in UTC"),
        (D + "RRULE:FREQ=DAILY;X-NAME=1", "X-NAME|cannot be read"),
        (D + "RRULE:FREQ=DAILY\nRDATE:20270105T080000Z", "RDATE"),
        (D + "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "Several RRULEs"),
        (D.rstrip(), "Exactly one RRULE"),
        ("DTSTART:20270104T080000\nRRULE:FREQ=DAILY", "floating"),
        ("DTSTART;TZID=Mars/Olympus:20270104T080000\nRRULE:FREQ=DAILY", "TZID 'Mars/Olympus'"),
        ("DTSTART;VALUE=DATE:20270104\nRRULE:FREQ=DAILY", "VALUE=DATE"),
        (D + "RRULE:FREQ=DAILY;BYSECOND=60", "BYSECOND=60"),
    ],  # fmt: skip
)
def test_each_rule_the_model_cannot_state_is_refused_naming_the_part(text: str, part: str):
    """(The first Monday of the month at 06:00 alone, BYSETPOS=1 over BYHOUR=6,18, is stated:
    see test_bysetpos_may_keep_some_times_of_the_days_it_keeps.)"""
    with pytest.raises(RuleRefused, match=part):
        from_rrule(text, EARLIEST, None, UTC)


_PARTS = st.sampled_from(
    ["FREQ=DAILY", "FREQ=WEEKLY", "FREQ=MONTHLY", "FREQ=YEARLY", "FREQ=HOURLY", "FREQ=MINUTELY",
     "INTERVAL=0", "INTERVAL=3", "INTERVAL=99999999999", "COUNT=0", "COUNT=4", "COUNT=x",
     "UNTIL=99991231T235959Z", "UNTIL=00010101T000000Z", "BYDAY=MO,TU", "BYDAY=53MO",
     "BYDAY=-1FR", "BYDAY=0MO", "BYMONTHDAY=31", "BYMONTHDAY=-31", "BYMONTHDAY=0",
     "BYYEARDAY=366", "BYSETPOS=-1", "BYSETPOS=400", "BYHOUR=25", "BYHOUR=1,2", "BYMINUTE=61",
     "BYSECOND=59", "BYMONTH=13", "BYMONTH=2", "WKST=SU", "WKST=XX", "BYWEEKNO=1", ""]
)  # fmt: skip
_STARTS = st.sampled_from(
    ["DTSTART;TZID=Pacific/Apia:00010101T000000\n", "DTSTART:99991231T235959Z\n",
     "DTSTART;TZID=Europe/Berlin:20270330T023000\n", "DTSTART;TZID=UTC:20270229T000000\n",
     "DTSTART;TZID=America/Chicago:20270314T023000\n", ""]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    start=_STARTS,
    parts=st.lists(_PARTS, max_size=6),
    noise=st.text(max_size=20),
    exdate=st.sampled_from(["", "\nEXDATE:20270101T000000Z", "\nEXDATE:nonsense"]),
)
def test_any_text_reads_or_is_refused_never_fails_otherwise(start, parts, noise, exdate):
    text = f"{start}RRULE:{';'.join(parts)}{exdate}"
    for candidate in (text, noise, text + noise):
        try:
            fields = from_rrule(candidate, datetime(2027, 1, 1, tzinfo=UTC), None, UTC)
        except RuleRefused as exc:
            assert str(exc)
        else:
            pattern_of(fields)  # what is read makes a valid pattern


@pytest.mark.parametrize(
    ("rule", "times", "indices"),
    [
        ("FREQ=MONTHLY;BYDAY=MO;BYHOUR=6,18;BYSETPOS=1", (time(6),), (1,)),
        ("FREQ=MONTHLY;BYDAY=MO;BYHOUR=6,18;BYSETPOS=-1", (time(18),), (-1,)),
        ("FREQ=DAILY;BYHOUR=6,18;BYMINUTE=0,30;BYSETPOS=1,4", (time(6), time(18, 30)), ()),
        ("FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=6,18;BYSETPOS=2", (time(18),), (1,)),
    ],
)
def test_bysetpos_may_keep_some_times_of_the_days_it_keeps(rule, times, indices) -> None:
    text = D + "RRULE:" + rule + ";BYSECOND=0" + ("" if "BYMINUTE" in rule else ";BYMINUTE=0")
    fields = from_rrule(text, EARLIEST, None, UTC)
    assert (fields.times_of_day, fields.indices) == (times, indices)
    after, before = datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    assert fields.anchor is not None
    got = rec.fires_between(pattern_of(fields), fields.anchor, UTC, after, before)
    assert got == dateutil_fires(text, after, before) and got


def test_an_hourly_rule_starting_in_a_gap_counts_its_hours_from_there() -> None:
    # 2027-03-14 02:30 does not exist in Chicago; every 2 hours from it is 02:30 (08:30Z), 04:30,
    # 06:30 ... wall time, as python-dateutil counts them: not 03:30, 05:30.
    text = "DTSTART;TZID=America/Chicago:20270314T023000\nRRULE:FREQ=HOURLY;INTERVAL=2;COUNT=4"
    fields = from_rrule(text, EARLIEST, None, UTC)
    assert fields.anchor is not None
    pattern = pattern_of(fields)
    got = rec.next_fires(pattern, fields.anchor, UTC, datetime(2027, 3, 14, tzinfo=UTC), 10)
    assert got == dateutil_fires(
        text, datetime(2027, 3, 14, tzinfo=UTC), datetime(2027, 3, 15, tzinfo=UTC)
    )
    assert len(got) == 4


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MONTHLY;BYDAY=1MO,1FR",
        "FREQ=MONTHLY;BYDAY=-1SA,-1SU",
        "FREQ=MONTHLY;BYDAY=5MO,5FR",  # months without a fifth Friday keep the fifth Monday
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU,2TH,-2TU,-2TH",
        "FREQ=YEARLY;BYDAY=2MO,2TU,53MO,53TU",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=1MO,1WE",
        "FREQ=YEARLY;BYMONTH=3,9;BYDAY=-1FR,-1SA",
    ],
)
def test_the_same_ordinals_on_several_weekdays_are_read_exactly(rule: str) -> None:
    text = f"DTSTART;TZID=Europe/Berlin:20270101T083000\nRRULE:{rule}"
    fields = from_rrule(text, EARLIEST, None, UTC)
    assert fields.anchor is not None
    after, before = datetime(2026, 12, 31, tzinfo=UTC), datetime(2035, 1, 1, tzinfo=UTC)
    got = rec.fires_between(pattern_of(fields), fields.anchor, UTC, after, before)
    assert got and got == dateutil_fires(text, after, before)
