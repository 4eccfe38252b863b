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


def schedule_body(form: MultiDict[str, str]) -> tuple[dict[str, Any], FormErrors]:
    """A schedule's JSON from its form."""
    errors: FormErrors = {}
    body: dict[str, Any] = {
        "name": form.get("name", ""),
        "machine_id": number(form.get("machine_id", "")),
        "reason": form.get("reason", ""),
        "frequency": form.get("frequency", ""),
        "weekdays": sum(1 << i for i, day in enumerate(WEEKDAYS) if day in form.getlist("day")),
        "months": sum(1 << i for i, month in enumerate(MONTHS) if month in form.getlist("month")),
        "time_of_day": form.get("time_of_day", "").strip(),
        "timezone": form.get("timezone", "").strip() or None,
    }
    interval = form.get("interval", "").strip()
    if interval:
        body["interval"] = number(interval)
    duration = form.get("duration", "").strip()
    body["duration"] = number(duration) if duration else None
    positions = [part.strip() for part in form.get("indices", "").split(",") if part.strip()]
    indices = [number(part) for part in positions]
    if any(isinstance(index, str) for index in indices):
        errors["indices"] = ["Write whole numbers separated by commas, e.g. 1, 15 or -1."]
    body["indices"] = indices
    return body, errors


def schedule_fields(schedule: dict[str, Any] | None) -> dict[str, Any]:
    """A schedule's API answer as the values of its form (a new schedule's defaults for None)."""
    if schedule is None:
        return {
            "frequency": "W",
            "interval": "1",
            "days": list(WEEKDAYS),
            "months": list(MONTHS),
            "indices": "",
            "time_of_day": "",
            "duration": "",
            "timezone": "",
        }
    time_of_day = schedule["time_of_day"] or ""
    if time_of_day.endswith(":00"):
        time_of_day = time_of_day[:-3]
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
        "time_of_day": time_of_day,
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
