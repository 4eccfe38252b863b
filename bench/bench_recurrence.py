"""Benchmark of pytm4srv.recurrence, measured side by side in one run.

    .venv/bin/python bench/bench_recurrence.py

(a) 1000 occurrences of typical schedules: the engine against dateutil's ``rrule`` producing
    the same list (checked equal), printed as a ratio (target: engine <= 1.5x rrule).
(b) sparse and never-firing schedules previewing count=1000 (or proving there are none):
    milliseconds, checked against the 50 ms budget, and the same schedules at count=10 and
    count=100 to show that the cost follows the count, not the sparsity; each read in the
    zones below, given as the pattern's own ``timezone``.
(c) a seeded random sweep of patterns (every frequency, intervals up to 2**31 - 1, single and
    random masks, indices, never-firing ones included) at count=1000 in each zone: the slowest
    ones, re-timed, against the same budget.

Zones: UTC, America/Chicago, Australia/Lord_Howe (30-minute DST), Pacific/Apia (the skipped
2011-12-30), Asia/Kolkata (+05:30).

Timings are the best of several repeats (``timeit``); nothing here asserts an absolute time
in a test suite, this script only reports and exits non-zero when a check fails.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import random
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, time, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import dateutil
from dateutil import rrule as du

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytm4srv.recurrence import Pattern, never_fires, next_fires

BUDGET_MS = 50.0
RATIO_TARGET = 1.5
ZONES = ("UTC", "America/Chicago", "Australia/Lord_Howe", "Pacific/Apia", "Asia/Kolkata")
SWEEP_PATTERNS = 400


def best_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    """Best wall time of one call, in milliseconds (the usual timeit reading)."""
    number = 5
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1000


def typical() -> bool:
    ok = True
    start = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    chicago = ZoneInfo("America/Chicago")
    cases: list[tuple[str, Pattern, tzinfo, Callable[[], list[datetime]]]] = [
        (
            "W Mon/Wed/Fri 08:00, UTC",
            Pattern("W", time(8), weekdays=0b10101),
            UTC,
            lambda: list(
                du.rrule(
                    du.WEEKLY,
                    dtstart=start.replace(hour=8),
                    byweekday=(du.MO, du.WE, du.FR),
                    count=1000,
                )
            ),
        ),
        (
            "M 1st and 14th 08:00, UTC",
            Pattern("M", time(8), indices=(1, 14)),
            UTC,
            lambda: list(
                du.rrule(du.MONTHLY, dtstart=start.replace(hour=8), bymonthday=(1, 14), count=1000)
            ),
        ),
        (
            "M last weekday 08:00, UTC",
            Pattern("M", time(8), weekdays=0b11111, indices=(-1,)),
            UTC,
            lambda: list(
                du.rrule(
                    du.MONTHLY,
                    dtstart=start.replace(hour=8),
                    byweekday=(du.MO, du.TU, du.WE, du.TH, du.FR),
                    bysetpos=-1,
                    count=1000,
                )
            ),
        ),
        (
            "D every day 08:00, UTC",
            Pattern("D", time(8)),
            UTC,
            lambda: list(du.rrule(du.DAILY, dtstart=start.replace(hour=8), count=1000)),
        ),
        (
            # rrule yields Chicago wall times; converting them to UTC is part of the job.
            "W Mon/Wed/Fri 08:00, America/Chicago",
            Pattern("W", time(8), weekdays=0b10101),
            chicago,
            lambda: [
                d.astimezone(UTC)
                for d in du.rrule(
                    du.WEEKLY,
                    dtstart=datetime(2024, 1, 1, 8, tzinfo=chicago),
                    byweekday=(du.MO, du.WE, du.FR),
                    count=1000,
                )
            ],
        ),
    ]
    print("(a) 1000 occurrences: engine vs dateutil rrule (same list)")
    print(f"    {'schedule':40} {'engine ms':>10} {'rrule ms':>10} {'ratio':>7}")
    for name, pattern, zone, reference in cases:

        def engine(p: Pattern = pattern, z: tzinfo = zone) -> list[datetime]:
            # after = midnight, before the first fire (rrule yields its dtstart itself)
            return next_fires(p, start, z, start, 1000)

        same = engine() == reference()
        e_ms, r_ms = best_ms(engine), best_ms(reference)
        ratio = e_ms / r_ms
        good = same and ratio <= RATIO_TARGET
        ok &= good
        flag = "" if good else ("  <- lists differ" if not same else "  <- over target")
        print(f"    {name:40} {e_ms:10.2f} {r_ms:10.2f} {ratio:7.2f}{flag}")
    return ok


def sparse() -> bool:
    ok = True
    utc_2024 = datetime(2024, 1, 1, tzinfo=UTC)
    monday = datetime(2024, 1, 1, 12, tzinfo=UTC)
    cases: list[tuple[str, Pattern, datetime, datetime]] = [
        ("D every day (dense, for reference)", Pattern("D", time(8)), utc_2024, utc_2024),
        (
            "M Feb Mon [5] (29 Feb on a Monday)",
            Pattern("M", time(8), months=0b10, weekdays=1, indices=(5,)),
            utc_2024,
            datetime(1, 1, 1, tzinfo=UTC),
        ),
        (
            "Y Feb Mon [5]",
            Pattern("Y", time(8), months=0b10, weekdays=1, indices=(5,)),
            utc_2024,
            datetime(1, 1, 1, tzinfo=UTC),
        ),
        ("months = 0", Pattern("D", time(8), months=0), utc_2024, utc_2024),
        ("W Mon [2] (never)", Pattern("W", time(8), weekdays=1, indices=(2,)), utc_2024, utc_2024),
        (
            "D every 7 days from a Monday, Tue only",
            Pattern("D", time(8), interval=7, weekdays=0b10),
            monday,
            utc_2024,
        ),
        (
            "H every 168 h from a Monday, Tue only",
            Pattern("H", time(0, 30), interval=168, weekdays=0b10),
            monday,
            utc_2024,
        ),
        (
            "Y interval 400, 366th day from 2023",
            Pattern("Y", time(8), interval=400, indices=(366,)),
            datetime(2023, 6, 1, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
        ),
        (
            "M interval 4800 (400 y), Feb [29] from 2023",
            Pattern("M", time(8), interval=4800, months=0b10, indices=(29,)),
            datetime(2023, 2, 1, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
        ),
        (
            "W interval 20871 (400 y), whole Jan week",
            Pattern("W", time(8), interval=20871, months=1, indices=(7,)),
            datetime(2024, 1, 29, 12, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
        ),
        (
            "D interval 52, Mar Tue (~1 per 3 years)",
            Pattern("D", time(2), interval=52, months=0b100, weekdays=0b10),
            datetime(739, 12, 24, tzinfo=UTC),
            datetime(1000, 1, 1, tzinfo=UTC),
        ),
        (
            "H interval 1889 h, Feb Mon/Sun",
            Pattern("H", time(20, 30), interval=1889, months=0b10, weekdays=65),
            datetime(3753, 5, 21, tzinfo=UTC),
            datetime(2000, 1, 1, tzinfo=UTC),
        ),
        (
            "W interval 58, Apr Tue",
            Pattern("W", time(1), interval=58, months=0b1000, weekdays=0b10),
            datetime(2652, 6, 5, tzinfo=UTC),
            datetime(506, 1, 1, tzinfo=UTC),
        ),
    ]
    print()
    print(f"(b) sparse / never-firing schedules, count=1000 (budget {BUDGET_MS:.0f} ms)")
    print(
        f"    {'schedule':44} {'zone':19} {'found':>5} {'n=10':>7} {'n=100':>7} "
        f"{'n=1000':>7}  never_fires()"
    )
    for name, pattern, anchor, after in cases:
        for zone_name in ZONES:
            own = dataclasses.replace(pattern, timezone=zone_name)

            def run(
                n: int, p: Pattern = own, a: datetime = anchor, s: datetime = after
            ) -> list[datetime]:
                return next_fires(p, a, UTC, s, n)

            found = len(run(1000))
            times = [best_ms(lambda n=n: run(n), repeat=3) for n in (10, 100, 1000)]
            good = times[-1] < BUDGET_MS
            ok &= good
            print(
                f"    {name:44} {zone_name:19} {found:5d} "
                + " ".join(f"{t:7.3f}" for t in times)
                + f"  {never_fires(pattern)}"
                + ("" if good else "  <- over budget")
            )
    return ok


def random_pattern(rng: random.Random) -> Pattern:
    frequency = rng.choice("YMWDH")
    interval = rng.choice(
        [1, 2, 3, 7, rng.randint(1, 10), rng.randint(1, 1000), rng.randint(1, 2**31 - 1)]
    )
    months = rng.choice([0xFFF, 1 << rng.randrange(12), rng.randint(0, 0xFFF)])
    weekdays = rng.choice([0x7F, 1 << rng.randrange(7), rng.randint(0, 0x7F)])
    indices = tuple(
        rng.choice([rng.randint(1, 5), -rng.randint(1, 5), rng.randint(-366, 366) or 1])
        for _ in range(rng.choice([0, 0, 1, 2]))
    )
    tod = time(rng.randrange(24), rng.choice([0, 30, rng.randrange(60)]))
    return Pattern(frequency, tod, interval, indices, months, weekdays)


def sweep() -> bool:
    """Random patterns at count=1000 in every zone; the slowest re-timed against the budget."""
    rng = random.Random(20271)
    timed: list[tuple[float, str, Pattern, datetime]] = []
    for _ in range(SWEEP_PATTERNS):
        pattern = random_pattern(rng)
        anchor = datetime(rng.randint(1000, 3000), rng.randint(1, 12), 1, tzinfo=UTC)
        for zone_name in ZONES:
            own = dataclasses.replace(pattern, timezone=zone_name)
            began = timeit.default_timer()
            next_fires(own, anchor, UTC, anchor, 1000)
            once = timeit.default_timer() - began
            timed.append((once * 1000, zone_name, own, anchor))
    timed.sort(key=lambda row: row[0], reverse=True)
    print()
    print(
        f"(c) {SWEEP_PATTERNS} random patterns x {len(ZONES)} zones at count=1000: "
        f"median {timed[len(timed) // 2][0]:.3f} ms; the slowest five, re-timed:"
    )
    ok = True
    for _, zone_name, own, anchor in timed[:5]:

        def preview(p: Pattern = own, a: datetime = anchor) -> list[datetime]:
            return next_fires(p, a, UTC, a, 1000)

        ms = best_ms(preview, repeat=3)
        good = ms < BUDGET_MS
        ok &= good
        found = len(next_fires(own, anchor, UTC, anchor, 1000))
        print(
            f"    {ms:7.3f} ms  {found:4d} found  {zone_name:19} {own.frequency} "
            f"interval={own.interval} months={own.months:#05x} weekdays={own.weekdays:#04x} "
            f"indices={list(own.indices)} {own.time_of_day} from {anchor.date()}"
            + ("" if good else "  <- over budget")
        )
    return ok


def main() -> int:
    print(
        f"python {platform.python_version()}, dateutil {dateutil.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores; times are best-of-repeats in ms"
    )
    ok = typical()
    ok &= sparse()
    ok &= sweep()
    print()
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
