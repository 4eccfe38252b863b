"""Preview of schedules firing 4 times a day, against python-dateutil's expansion of the same
rule, measured side by side in one run.

    .venv/bin/python bench/bench_times.py [--repeat 7]

Each schedule (several patterns, 4 times a day; hourly: 4 minutes past each hour) is read in
UTC, America/Chicago, Europe/Berlin, Australia/Lord_Howe and Pacific/Apia as its own zone, and
previewed with count=1000 through ``holds.schedules.preview`` (the pattern built and checked
from the schedule's fields, then the engine). The reference is the schedule's own ``rrule``
text (``pytm4srv.ical.to_rrule``), parsed once by ``dateutil.rrule.rrulestr(forceset=True)``,
then expanded to the same 1000 instants as UTC (checked equal). Printed: both times (best of
repeats) and their ratio. Targets: preview under 50 ms, and at most 1x dateutil's expansion.
Exit status 1 if a target is missed; no test asserts an absolute time.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import dateutil
from dateutil.rrule import rrulestr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytm4srv import ical
from pytm4srv.holds.schedules import PATTERN_DEFAULTS, pattern_of, preview

BUDGET_MS = 50.0
RATIO_TARGET = 1.0
ZONES = ("UTC", "America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia")
FOUR = (time(6), time(10), time(14), time(18))
#: (name, the pattern fields that differ from the defaults)
SCHEDULES: list[tuple[str, dict[str, Any]]] = [
    ("D every day", {"frequency": "D"}),
    ("W Mon-Fri", {"frequency": "W", "weekdays": 0b11111}),
    ("W every other Mon/Wed/Fri", {"frequency": "W", "weekdays": 0b10101, "interval": 2}),
    ("M 1st and 15th", {"frequency": "M", "indices": [1, 15]}),
    ("M last weekday", {"frequency": "M", "weekdays": 0b11111, "indices": [-1]}),
    ("Y every Monday of March", {"frequency": "Y", "months": 0b100, "weekdays": 1}),
    (
        "H at :00 :15 :30 :45 on weekdays",
        {
            "frequency": "H",
            "weekdays": 0b11111,
            "times": (time(0), time(0, 15), time(0, 30), time(0, 45)),
        },
    ),
]
START = datetime(2027, 1, 4, tzinfo=UTC)


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    number = 3
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, dateutil {dateutil.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
        "best-of-repeats in ms"
    )
    print(
        f"{'schedule (4 times a day)':34} {'zone':20} {'preview':>8} {'dateutil':>9} {'ratio':>6}"
    )
    ok = True
    ratios: list[float] = []
    for name, changes in SCHEDULES:
        times = changes.pop("times", FOUR) if "times" in changes else FOUR
        for zone in ZONES:
            fields = (
                dict(PATTERN_DEFAULTS)
                | changes
                | {
                    "time_of_day": times[0],
                    "times_of_day": times,
                    "timezone": zone,
                }
            )
            anchor = START
            text = ical.to_rrule(pattern_of(fields), anchor, UTC, "UTC")
            assert text is not None, name
            rules = rrulestr(text, forceset=True)
            # From the rule's first instance (DTSTART) on, as dateutil expands it.
            after = rules[0].astimezone(UTC) - timedelta(seconds=1)

            def ours(
                f: dict[str, Any] = fields, a: datetime = anchor, s: datetime = after
            ) -> list[datetime]:
                return preview(f, a, UTC, s, 1000)

            def theirs(r: Any = rules) -> list[datetime]:
                return [d.astimezone(UTC) for d in islice(r, 1000)]

            same = ours() == theirs()
            ours_ms, theirs_ms = best_ms(ours, args.repeat), best_ms(theirs, args.repeat)
            ratio = ours_ms / theirs_ms
            ratios.append(ratio)
            good = same and ours_ms < BUDGET_MS and ratio <= RATIO_TARGET
            ok &= good
            flag = "" if good else ("  <- lists differ" if not same else "  <- over target")
            print(f"{name:34} {zone:20} {ours_ms:8.2f} {theirs_ms:9.2f} {ratio:6.2f}{flag}")
    ratios.sort()
    print(
        f"ratio preview / dateutil: median {ratios[len(ratios) // 2]:.2f}, "
        f"max {ratios[-1]:.2f} (target <= {RATIO_TARGET}); budget {BUDGET_MS:.0f} ms"
    )
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
