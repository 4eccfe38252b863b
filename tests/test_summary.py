"""The schedule summary sentence (docs/RECURRENCE.md, Summaries).

Every row of the examples table in docs/RECURRENCE.md is a test case, so the documented wording
and the code cannot drift apart; the property tests cover every valid pattern.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytm4srv import recurrence
from pytm4srv.summary import MONTH_NAMES, WEEKDAY_NAMES, describe

DOC = Path(__file__).resolve().parent.parent / "docs" / "RECURRENCE.md"
COLUMNS = [
    "frequency",
    "interval",
    "indices",
    "months",
    "weekdays",
    "time",
    "zone",
    "duration",
    "summary",
]
MONTH_ABBR = [m[:3] for m in MONTH_NAMES]
WEEKDAY_ABBR = [d[:3] for d in WEEKDAY_NAMES]


# --------------------------------------------------------------------------
# The documented examples
# --------------------------------------------------------------------------


def _bits(cell: str, names: list[str]) -> int:
    if cell == "all":
        return (1 << len(names)) - 1
    if cell == "none":
        return 0
    return sum(1 << names.index(word) for word in cell.split())


def _indices(cell: str) -> tuple[int, ...]:
    inner = cell.strip()
    assert inner.startswith("[") and inner.endswith("]"), cell
    return tuple(int(x) for x in inner[1:-1].split(",") if x.strip())


def documented_examples() -> list[tuple[recurrence.Pattern, str, timedelta | None, str]]:
    """The rows of the examples table in the Summaries section of docs/RECURRENCE.md."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Summaries\n", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == COLUMNS
    assert set(lines[1].replace("|", "").strip()) <= {"-", ":"}
    rows = []
    for line in lines[2:]:
        cells = dict(zip(COLUMNS, (c.strip() for c in line.strip("|").split("|")), strict=True))
        pattern = recurrence.Pattern(
            cells["frequency"],
            time.fromisoformat(cells["time"]),
            interval=int(cells["interval"]),
            indices=_indices(cells["indices"]),
            months=_bits(cells["months"], MONTH_ABBR),
            weekdays=_bits(cells["weekdays"], WEEKDAY_ABBR),
        )
        minutes = cells["duration"]
        duration = None if minutes == "null" else timedelta(minutes=int(minutes))
        rows.append((pattern, cells["zone"], duration, cells["summary"]))
    return rows


EXAMPLES = documented_examples()


def test_the_table_covers_every_form() -> None:
    patterns = [p for p, _, _, _ in EXAMPLES]
    assert len(EXAMPLES) >= 20
    assert {p.frequency for p in patterns} == set(recurrence.FREQUENCIES)
    assert {min(p.interval, 3) for p in patterns} == {1, 2, 3}
    indices = {i for p in patterns for i in p.indices}
    assert {1, -1, -2, 11, 21, 22, 23, 111} <= indices
    assert any(not p.indices for p in patterns)
    assert any(len(set(p.indices)) > 1 for p in patterns)
    weekdays = {p.weekdays for p in patterns}
    assert {0, recurrence.ALL_WEEKDAYS, 0b0011111, 0b1100000, 0b0010101} <= weekdays
    months = {p.months for p in patterns}
    assert {0, recurrence.ALL_MONTHS, 1} <= months
    assert any(bin(m).count("1") > 1 and m != recurrence.ALL_MONTHS for m in months)
    assert any(p.time_of_day.second for p in patterns)
    assert {z for _, z, _, _ in EXAMPLES} >= {"UTC", "Europe/Berlin"}
    assert any(d is None for _, _, d, _ in EXAMPLES)
    assert any(recurrence.never_fires(p) for p in patterns)


@pytest.mark.parametrize(
    "pattern, zone, duration, summary", EXAMPLES, ids=[row[3] for row in EXAMPLES]
)
def test_documented_example(
    pattern: recurrence.Pattern, zone: str, duration: timedelta | None, summary: str
) -> None:
    assert describe(pattern, zone, duration) == summary


# --------------------------------------------------------------------------
# Inputs describe() refuses
# --------------------------------------------------------------------------

DAILY = recurrence.Pattern("D", time(8))


@pytest.mark.parametrize(
    "duration",
    [timedelta(0), timedelta(minutes=-5), timedelta(minutes=1, microseconds=1)],
    ids=["zero", "negative", "fraction-of-a-second"],
)
def test_duration_must_be_positive_whole_seconds(duration: timedelta) -> None:
    with pytest.raises(ValueError, match="duration"):
        describe(DAILY, "UTC", duration)


def test_zone_name_is_required() -> None:
    with pytest.raises(ValueError, match="zone"):
        describe(DAILY, "", None)


# --------------------------------------------------------------------------
# Properties over every valid pattern
# --------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "Asia/Kolkata"]

patterns = st.builds(
    recurrence.Pattern,
    frequency=st.sampled_from(recurrence.FREQUENCIES),
    time_of_day=st.times().map(lambda t: t.replace(microsecond=0)),
    interval=st.one_of(st.integers(1, 4), st.integers(1, 2**31 - 1)),
    indices=st.lists(
        st.integers(-366, 366).filter(bool)
        | st.sampled_from([1, 2, 3, 10, 11, 12, 13, 21, 22, 23, 111, -1, -2, -11]),
        max_size=8,
    ).map(tuple),
    months=st.one_of(st.just(recurrence.ALL_MONTHS), st.integers(0, recurrence.ALL_MONTHS)),
    weekdays=st.one_of(
        st.sampled_from([recurrence.ALL_WEEKDAYS, 0b0011111, 0b1100000, 0]),
        st.integers(0, recurrence.ALL_WEEKDAYS),
    ),
)
durations = st.one_of(st.none(), st.integers(1, 2**31 - 1).map(lambda m: timedelta(minutes=m)))


@settings(max_examples=500, deadline=None)
@given(patterns, st.sampled_from(ZONES), durations)
def test_any_valid_pattern_gives_one_well_formed_sentence(
    pattern: recurrence.Pattern, zone: str, duration: timedelta | None
) -> None:
    s = describe(pattern, zone, duration)
    assert s == s.strip()
    assert "  " not in s
    assert "\n" not in s
    assert s[0].isupper()
    assert not s.endswith((".", ","))
    assert ". " not in s  # one sentence
    assert s.count("(") == s.count(")")
    assert f"({zone}), " in s
    assert re.search(r"\b(\w+) \1\b", s) is None  # no word doubled ("on on", "the the")


@settings(max_examples=500, deadline=None)
@given(patterns, durations)
def test_says_never_exactly_when_the_pattern_never_fires(
    pattern: recurrence.Pattern, duration: timedelta | None
) -> None:
    s = describe(pattern, "UTC", duration)
    if recurrence.never_fires(pattern):
        assert s.startswith("Never fires: every ")
    else:
        assert "never" not in s.lower()
        assert s.startswith("Every ")


@settings(max_examples=300, deadline=None)
@given(patterns)
def test_names_exactly_the_chosen_months_and_weekdays(pattern: recurrence.Pattern) -> None:
    s = describe(pattern, "UTC", None)
    if pattern.months not in (0, recurrence.ALL_MONTHS):
        for bit, name in enumerate(MONTH_NAMES):
            assert (name in s) == bool(pattern.months >> bit & 1), name
    else:
        assert not any(name in s for name in MONTH_NAMES)
    if pattern.weekdays not in (0, recurrence.ALL_WEEKDAYS, 0b0011111, 0b1100000):
        for bit, name in enumerate(WEEKDAY_NAMES):
            assert (name in s) == bool(pattern.weekdays >> bit & 1), name
    else:
        assert not any(name in s for name in WEEKDAY_NAMES)


@settings(max_examples=300, deadline=None)
@given(patterns, st.data())
def test_order_and_repeats_of_indices_do_not_change_the_sentence(
    pattern: recurrence.Pattern, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(list(pattern.indices) * 2))
    other = recurrence.Pattern(
        pattern.frequency,
        pattern.time_of_day,
        interval=pattern.interval,
        indices=tuple(shuffled),
        months=pattern.months,
        weekdays=pattern.weekdays,
    )
    assert describe(other, "UTC", None) == describe(pattern, "UTC", None)


_UNITS = {
    "day": timedelta(days=1),
    "hour": timedelta(hours=1),
    "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1),
}


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 2**31 - 1).map(lambda m: timedelta(minutes=m))
    | st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=10**6)).map(
        lambda d: d - timedelta(microseconds=d.microseconds)
    )
)
def test_the_duration_reads_back_to_itself(duration: timedelta) -> None:
    s = describe(DAILY, "UTC", duration)
    words = s.split(", for ", 1)[1].split()
    total = timedelta(0)
    units = []
    for n, unit in zip(words[::2], words[1::2], strict=True):
        singular = unit.removesuffix("s")
        assert (unit == singular) == (n == "1"), s  # "1 hour", "2 hours"
        units.append(singular)
        total += int(n) * _UNITS[singular]
    assert units == sorted(units, key=list(_UNITS).index)  # largest unit first, each once
    assert len(set(units)) == len(units)
    assert total == duration


@settings(max_examples=200, deadline=None)
@given(patterns)
def test_the_time_of_day_is_shown_as_the_rule_uses_it(pattern: recurrence.Pattern) -> None:
    s = describe(pattern, "UTC", None)
    t = pattern.time_of_day
    if pattern.frequency == "H":
        assert re.search(r"\d\d:\d\d", s) is None  # the hour is not part of an hourly rule
        assert ("on the hour" in s) == (t.minute == t.second == 0)
    else:
        shown = f"{t:%H:%M:%S}" if t.second else f"{t:%H:%M}"
        assert f" at {shown} (UTC)" in s


# --------------------------------------------------------------------------
# Several times a day and an end (section 16)
# --------------------------------------------------------------------------


def _several(frequency: str, *times: time, **kwargs) -> recurrence.Pattern:
    return recurrence.Pattern(frequency, min(times), times_of_day=times, **kwargs)


@pytest.mark.parametrize(
    "pattern, summary",
    [
        (_several("D", time(18), time(6)), "Every day at 06:00 and 18:00 (UTC), for 1 hour"),
        (
            _several("W", time(22), time(6), time(14), weekdays=0b11111),
            "Every week on weekdays (Mon–Fri) at 06:00, 14:00 and 22:00 (UTC), for 1 hour",
        ),
        (
            _several("D", time(6, 0, 30), time(7)),
            "Every day at 06:00:30 and 07:00 (UTC), for 1 hour",
        ),
        (
            _several("H", time(6), time(7, 30)),
            "Every hour on the hour and at 30 minutes past the hour (UTC), for 1 hour",
        ),
        (
            _several("H", time(6, 15), time(9, 15), time(8, 45)),
            "Every hour at 15 minutes and 45 minutes past the hour (UTC), for 1 hour",
        ),
    ],
)
def test_several_times_are_listed_in_order(pattern: recurrence.Pattern, summary: str) -> None:
    assert describe(pattern, "UTC", timedelta(hours=1)) == summary


def test_until_ends_the_sentence_as_a_wall_time_in_the_zone() -> None:
    from datetime import UTC, datetime

    p = _several("D", time(6), time(18), until=datetime(2027, 6, 30, 16, 0, tzinfo=UTC))
    assert describe(p, "Europe/Berlin", None) == (
        "Every day at 06:00 and 18:00 (Europe/Berlin), indefinitely, until 2027-06-30 18:00"
    )
    assert describe(p, "UTC", None).endswith(", until 2027-06-30 16:00")
    never = recurrence.Pattern("D", time(6), months=0, until=datetime(2027, 1, 1, tzinfo=UTC))
    assert describe(never, "UTC", None).startswith("Never fires: ")


def test_until_in_a_zone_this_host_does_not_know_is_shown_in_utc() -> None:
    from datetime import UTC, datetime

    p = _several("D", time(6), until=datetime(2027, 6, 30, 16, 0, tzinfo=UTC))
    assert describe(p, "Mars/Olympus_Mons", None).endswith(
        "(Mars/Olympus_Mons), indefinitely, until 2027-06-30 16:00"
    )
