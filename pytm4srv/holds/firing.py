"""Between schedules and the recurrence engine: a schedule's pattern, cursor and preview."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from pytm4srv import recurrence
from pytm4srv.holds.models import MachineHoldSchedule

#: The schedule fields that decide when it fires.
PATTERN_FIELDS = ("frequency", "time_of_day", "interval", "indices", "months", "weekdays")


def pattern_fields(schedule: MachineHoldSchedule) -> dict[str, Any]:
    """The pattern fields of a stored schedule."""
    return {name: getattr(schedule, name) for name in PATTERN_FIELDS}


def pattern_of(fields: Mapping[str, Any]) -> recurrence.Pattern:
    """The recurrence pattern of a mapping holding the pattern fields."""
    return recurrence.Pattern(
        frequency=fields["frequency"],
        time_of_day=fields["time_of_day"],
        interval=fields["interval"],
        indices=tuple(fields["indices"]),
        months=fields["months"],
        weekdays=fields["weekdays"],
    )


def cursor_of(schedule: MachineHoldSchedule) -> datetime:
    """Where the schedule's next run starts: its last processed fire, or its creation."""
    return schedule.last_fire or schedule.created


def preview(
    fields: Mapping[str, Any], anchor: datetime, zone: tzinfo, start: datetime, count: int
) -> list[datetime]:
    """The first ``count`` fire instants strictly after ``start``."""
    return recurrence.next_fires(pattern_of(fields), anchor, zone, start, count)
