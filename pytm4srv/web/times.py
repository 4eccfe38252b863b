"""Wall times on the pages: ``YYYY-MM-DD HH:MM`` in one zone that the page names.

The zone is the browser's (``static/web.js`` puts it in the ``tz`` cookie) or the one picked
with the "Time zone" control; without either, the service's zone.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta, tzinfo
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from flask import current_app, request
from markupsafe import Markup

from pytm4srv import recurrence

ZONE_COOKIE = "tz"
WALL = "%Y-%m-%d %H:%M"


@functools.lru_cache(maxsize=64)
def zone_options(selected: str) -> Markup:
    """The ``<option>`` of every zone, ``selected`` marked: the same 600-odd lines on every page,
    written once per zone rather than by the template each time."""
    return Markup(
        "".join(
            f"<option selected>{name}</option>" if name == selected else f"<option>{name}</option>"
            for name in recurrence.zone_names()
        )
    )


def page_zone_name() -> str:
    """The name of the zone the current page shows times in."""
    chosen = unquote(request.cookies.get(ZONE_COOKIE, ""))
    if chosen and recurrence.is_zone_name(chosen):
        return chosen
    return str(current_app.config["TIMEZONE"])


def page_zone() -> tzinfo:
    return ZoneInfo(page_zone_name())


def zone_known_to_browser() -> bool:
    """Whether the browser has told its zone (or a zone was picked) already."""
    return bool(request.cookies.get(ZONE_COOKIE))


def wall(instant: datetime | None, zone: tzinfo | None = None) -> str:
    """An instant as a wall time in the page's zone (or ``zone``); "" for None."""
    if instant is None:
        return ""
    return instant.astimezone(zone or page_zone()).strftime(WALL)


def wall_from_iso(local: str) -> str:
    """An ISO 8601 wall time with its offset (the preview's ``local``), as ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(local).strftime(WALL)


class BadWallTime(ValueError):
    pass


def parse_wall(text: str, zone: tzinfo | None = None) -> datetime | None:
    """A wall time ``YYYY-MM-DD HH:MM`` in the page's zone (or ``zone``) as an instant; None for
    an empty field. A time that a DST change skips or repeats is read as the recurrence engine
    reads it (section 7: the offset before the gap; the earlier of two)."""
    text = text.strip()
    if not text:
        return None
    try:
        naive = datetime.strptime(text.replace("T", " "), WALL)
    except ValueError:
        raise BadWallTime("Write the time as YYYY-MM-DD HH:MM (24-hour).") from None
    return naive.replace(tzinfo=zone or page_zone(), fold=0)


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local date (a midnight that a DST gap skips: the gap's end)."""
    return datetime(day.year, day.month, day.day, tzinfo=zone)
