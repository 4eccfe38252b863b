"""Form fields to the API's JSON, and back.

Only the shape changes here: wall times become instants in the page's zone, checkboxes become
the bitfields, comma-separated positions become a list. What a value must be is the API's to
say: a value that cannot even be shaped (a number written in words) is sent as it was typed, so
that the API's own message names it.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from werkzeug.datastructures import MultiDict

from pytm4srv.web.times import BadWallTime, parse_wall, wall

#: "Repeats": the API's frequency codes and their names on the form.
FREQUENCIES = (("Y", "Yearly"), ("M", "Monthly"), ("W", "Weekly"), ("D", "Daily"), ("H", "Hourly"))
WEEKDAYS = tuple(calendar.day_name)  # Monday first, as the weekday bits count
MONTHS = tuple(calendar.month_name[1:])

FormErrors = dict[str, list[str]]


def number(text: str) -> int | str:
    """``text`` as a whole number, or as it was typed (for the API to name)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def _instant(form: MultiDict[str, str], name: str, zone: tzinfo, errors: FormErrors) -> Any:
    try:
        instant = parse_wall(form.get(name, ""), zone)
    except BadWallTime as exc:
        errors[name] = [str(exc)]
        return None
    return None if instant is None else instant.isoformat()


def hold_body(form: MultiDict[str, str], zone: tzinfo) -> tuple[dict[str, Any], FormErrors]:
    """A hold's JSON from its form; an empty "Start" is left out (the API's default: now), an
    empty "End" is null (until released)."""
    errors: FormErrors = {}
    body: dict[str, Any] = {
        "machine_id": number(form.get("machine_id", "")),
        "reason": form.get("reason", ""),
        "notes": form.get("notes", ""),
        "end": _instant(form, "end", zone, errors),
    }
    start = _instant(form, "start", zone, errors)
    if start is not None:
        body["start"] = start
    return body, errors


def hold_fields(hold: dict[str, Any], zone: tzinfo) -> dict[str, str]:
    """A hold's API answer as the values of its form."""
    return {
        "machine_id": str(hold["machine_id"]),
        "start": wall(_from_unix(hold["start"]), zone),
        "end": wall(_from_unix(hold["end"]), zone),
        "reason": hold["reason"],
        "notes": hold["notes"],
    }


def changed(
    body: dict[str, Any], before: dict[str, str], form: MultiDict[str, str]
) -> dict[str, Any]:
    """The fields of ``body`` whose form value differs from the one the form was shown with, so
    that saving a note does not round the stored start to the minute."""
    return {name: value for name, value in body.items() if form.get(name, "") != before[name]}


def times(text: str) -> list[str]:
    """Comma-separated times of day, as typed (for the API to read, or name)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def schedule_body(form: MultiDict[str, str], zone: tzinfo) -> tuple[dict[str, Any], FormErrors]:
    """A schedule's JSON from its form; "Until" is a wall time in the page's ``zone``.

    A pasted "RRULE" is sent as ``rrule`` instead of the fields it states (the API refuses them
    beside it, and reads them from it). Without one, "Times of day" (several times) is sent as
    ``times_of_day``, and "Time of day" as ``time_of_day`` when filled or when it is the only
    one: the API says what either must be.
    """
    errors: FormErrors = {}
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "machine_id": number(form.get("machine_id", "")),
        "reason": form.get("reason", ""),
    }
    duration = form.get("duration", "").strip()
    body["duration"] = number(duration) if duration else None
    rule = form.get("rrule", "").strip()
    if rule:
        body["rrule"] = rule
        return body, errors
    body |= {
        "frequency": form.get("frequency", ""),
        "weekdays": sum(1 << i for i, day in enumerate(WEEKDAYS) if day in form.getlist("day")),
        "months": sum(1 << i for i, month in enumerate(MONTHS) if month in form.getlist("month")),
        "timezone": form.get("timezone", "").strip() or None,
        "until": _instant(form, "until", zone, errors),
    }
    interval = form.get("interval", "").strip()
    if interval:
        body["interval"] = number(interval)
    several = times(form.get("times_of_day", ""))
    first = form.get("time_of_day", "").strip()
    if several:
        body["times_of_day"] = several
    if first or not several:
        body["time_of_day"] = first
    positions = [part.strip() for part in form.get("indices", "").split(",") if part.strip()]
    indices = [number(part) for part in positions]
    if any(isinstance(index, str) for index in indices):
        errors["indices"] = ["Write whole numbers separated by commas, e.g. 1, 15 or -1."]
    body["indices"] = indices
    return body, errors


def _short(time_of_day: str) -> str:
    """``HH:MM:SS`` as ``HH:MM`` when its seconds are 0."""
    whole_minute = len(time_of_day) == 8 and time_of_day.endswith(":00")
    return time_of_day[:-3] if whole_minute else time_of_day


def schedule_fields(schedule: dict[str, Any] | None, zone: tzinfo) -> dict[str, Any]:
    """A schedule's API answer as the values of its form (a new schedule's defaults for None).

    One time of day fills "Time of day"; several fill "Times of day" alone, so that changing
    them needs no second field kept the earliest. "Until" is shown in the page's ``zone``;
    "RRULE" starts empty (the schedule's own is on its page), so that saving the form saves
    what its fields say.
    """
    if schedule is None:
        return {
            "frequency": "W",
            "interval": "1",
            "days": list(WEEKDAYS),
            "months": list(MONTHS),
            "indices": "",
            "time_of_day": "",
            "times_of_day": "",
            "until": "",
            "rrule": "",
            "duration": "",
            "timezone": "",
        }
    all_times = [_short(t) for t in schedule.get("times_of_day") or []]
    time_of_day = _short(schedule["time_of_day"] or "")
    several = len(all_times) > 1
    duration = schedule["duration"]
    return {
        "name": schedule["name"],
        "machine_id": str(schedule["machine_id"]),
        "reason": schedule["reason"],
        "frequency": schedule["frequency"],
        "interval": str(schedule["interval"]),
        "days": [day for i, day in enumerate(WEEKDAYS) if schedule["weekdays"] >> i & 1],
        "months": [month for i, month in enumerate(MONTHS) if schedule["months"] >> i & 1],
        "indices": ", ".join(str(index) for index in schedule["indices"] or []),
        "time_of_day": "" if several else time_of_day,
        "times_of_day": ", ".join(all_times) if several else "",
        "until": wall(_from_unix(schedule.get("until")), zone),
        "rrule": "",
        "duration": "" if duration is None else str(duration),
        "timezone": schedule["timezone"] or "",
    }


def form_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """A posted schedule form as the values to show it again with."""
    values: dict[str, Any] = form.to_dict()
    values["days"] = form.getlist("day")
    values["months"] = form.getlist("month")
    return values


def _from_unix(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=value)
