"""The schedule domain, between stored schedules and the recurrence engine.

The pattern fields of a schedule are those of :class:`recurrence.Pattern`, listed once there: the
columns the materializer reads, the preview's merge of stored and sent fields and the defaults all
come from :data:`PATTERN_FIELDS`. The schedule views and the materializer both keep a schedule's
stored ``next_fire`` with :func:`refresh_next_fire`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from pytm4srv import recurrence

#: The schedule fields that decide when it fires, in the engine's order.
PATTERN_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(recurrence.Pattern))

#: The value a new schedule gets for each pattern field it was not given.
PATTERN_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(recurrence.Pattern)
    if f.default is not dataclasses.MISSING
}


def pattern_of(source: Mapping[str, Any] | Any) -> recurrence.Pattern:
    """The pattern of a schedule: a stored one, a database row or a mapping of its fields."""
    if isinstance(source, Mapping):
        return recurrence.Pattern(**{name: source[name] for name in PATTERN_FIELDS})
    return recurrence.Pattern(**{name: getattr(source, name) for name in PATTERN_FIELDS})


def pattern_fields(schedule: Any) -> dict[str, Any]:
    """The pattern fields of a stored schedule, by name."""
    return {name: getattr(schedule, name) for name in PATTERN_FIELDS}


def cursor_of(last_fire: datetime | None, created: datetime) -> datetime:
    """Where a schedule's next run starts: its last processed fire, or its creation."""
    return last_fire or created


def zone_name(zone: tzinfo) -> str:
    """The name stored in ``next_fire_zone``: the IANA key of a ZoneInfo, else ``str(zone)``."""
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) else str(zone)


def refresh_next_fire(schedule: Any, zone: tzinfo) -> None:
    """Store the schedule's first fire instant after its cursor, computed in ``zone``.

    Called whenever a schedule is created or changed, so that the materializer's due query finds
    it (docs/MATERIALIZER.md, How it works).
    """
    cursor = cursor_of(schedule.last_fire, schedule.created)
    fires = recurrence.next_fires(pattern_of(schedule), schedule.anchor, zone, cursor, 1)
    schedule.next_fire = fires[0] if fires else None
    schedule.next_fire_zone = zone_name(zone)


def preview(
    fields: Mapping[str, Any], anchor: datetime, zone: tzinfo, start: datetime, count: int
) -> list[datetime]:
    """The first ``count`` fire instants strictly after ``start``."""
    return recurrence.next_fires(pattern_of(fields), anchor, zone, start, count)
