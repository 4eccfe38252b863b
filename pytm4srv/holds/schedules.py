"""The schedule domain: when a schedule fires, and what that makes.

This module is the one owner of a schedule's rules; the views, the materializer, the
re-planning of a changed schedule and the calendar feed ask it, and state none of them again:

- the pattern of a stored schedule (:func:`pattern_of`, which checks a row the way the API
  checks input), its cursor (:func:`cursor_of`) and its next fire (:func:`next_fire`,
  :func:`refresh_next_fire`), and the service zone a next fire was computed in
  (:func:`next_fire_zone`);
- the holds its fires make, each ``start`` = the fire, ``end`` = :func:`hold_end`, in one
  planner that the materializer's runs and the re-planning both use (:func:`plan`);
- the fires shown as planned, not yet made into holds (:func:`planned_fires`);
- the preview's merge of a stored schedule and the fields sent (:func:`preview_request`), the
  preview and its details;
- which changed fields reach a schedule's coming holds (:data:`REPLAN_FIELDS`).

The pattern fields are those of :class:`recurrence.Pattern`, listed once there: the columns the
materializer reads, the preview's merge and the defaults come from :data:`PATTERN_FIELDS`.

A stored row the API would not have written (a value changed outside it) must not make a read
fail: :func:`answer` then shows what it can, and :func:`refresh_next_fire` leaves the row for the
next materializer run to report.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from pytm4srv import ical, recurrence
from pytm4srv.holds.models import MAX_SKIP, UNKNOWN_ZONE, MachineHoldSchedule
from pytm4srv.holds.queries import holds_in_effect
from pytm4srv.summary import describe

#: The schedule fields that decide when it fires, in the engine's order.
PATTERN_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(recurrence.Pattern))

#: The value a new schedule gets for each pattern field it was not given.
PATTERN_DEFAULTS: dict[str, Any] = {
    f.name: f.default
    for f in dataclasses.fields(recurrence.Pattern)
    if f.default is not dataclasses.MISSING
}

#: The fields whose change reaches a schedule's coming holds: those of its pattern, and what its
#: holds are made of (docs/API.md, Changing a schedule).
REPLAN_FIELDS: frozenset[str] = frozenset(PATTERN_FIELDS) | {
    "anchor",
    "duration",
    "machine_id",
    "reason",
}

#: The fields an ``rrule`` sets (``timezone`` and ``anchor`` only from its DTSTART).
RRULE_FIELDS: tuple[str, ...] = (*PATTERN_FIELDS, "anchor")

_ZERO = timedelta(0)
_FIRST = datetime.min.replace(tzinfo=UTC)
_LAST = datetime.max.replace(tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_DAY = timedelta(days=1)
#: Skipped fires a plan counts one by one; beyond, its count is a lower bound.
SKIP_COUNT_LIMIT = 1000

#: The stored columns of a schedule, as answers show them.
_COLUMNS = tuple(attribute.key for attribute in inspect(MachineHoldSchedule).column_attrs)


class UnreadableSchedule(ValueError):
    """A stored schedule with fields the API would not have stored (a row changed outside it).

    ``problems``: what is wrong, by field name, each a readable sentence naming the field.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(problems.values()))
        self.problems = problems


#: A pattern that every field of a schedule can be tried in alone, to find the bad ones.
_PROBE = PATTERN_DEFAULTS | {"frequency": recurrence.FREQUENCIES[0], "time_of_day": time(0)}


def pattern_of(source: Mapping[str, Any] | Any) -> recurrence.Pattern:
    """The pattern of a schedule: a stored one, a database row or a mapping of its fields.

    It passes the checks the API makes on the way in that a stored row can fail (a row written
    outside the API): each pattern field, the zone's name (known to this host), the size of
    ``skip``, and a ``duration`` longer than 0 when ``source`` has one. Else UnreadableSchedule,
    a ValueError, names every field that fails. The pattern is built once when nothing does,
    so the checks cost next to nothing per schedule.
    """
    values = _fields(source, PATTERN_FIELDS)
    problems: dict[str, str] = {}
    try:
        pattern = recurrence.Pattern(**values)
    except (TypeError, ValueError) as exc:
        # Every field alone, to name the bad ones (the whole pattern, should none fail alone).
        problems = _pattern_problems(values) or {"pattern": f"the pattern cannot be read: {exc}"}
    else:
        if pattern.timezone is not None and not recurrence.is_zone_name(pattern.timezone):
            problems["timezone"] = f"timezone {pattern.timezone!r} is unknown to this host"
        if len(pattern.skip) > MAX_SKIP:
            problems["skip"] = f"skip holds more than {MAX_SKIP} instants"
    duration = _duration(source)
    if duration is not None and (not isinstance(duration, timedelta) or duration <= _ZERO):
        problems["duration"] = f"duration must be longer than 0 (stored: {_shown(duration)})"
    if problems:
        raise UnreadableSchedule(problems)
    return pattern


def stored_problems(source: Mapping[str, Any] | Any) -> dict[str, str]:
    """What :func:`pattern_of` finds wrong with a stored schedule, by field; {} if nothing."""
    try:
        pattern_of(source)
    except UnreadableSchedule as exc:
        return exc.problems
    return {}


def _pattern_problems(values: dict[str, Any]) -> dict[str, str]:
    """Each pattern field that no pattern can hold, tried alone among valid values."""
    problems = {}
    for name in PATTERN_FIELDS:
        value = values[name]
        probe = _PROBE | {name: value}
        if name == "times_of_day" and isinstance(value, tuple) and value:
            probe["time_of_day"] = min(value, key=str)  # the earliest, if they are times
        try:
            recurrence.Pattern(**probe)
        except ValueError as exc:
            problems[name] = f"{exc} (stored: {_shown(value)})"
        except TypeError:
            problems[name] = f"{name} cannot be read (stored: {_shown(value)})"
    if "skip" in problems and values["skip"] is None:  # what InstantList reads of a bad value
        problems["skip"] = "skip cannot be read: it is not a list of instants with a UTC offset"
    times, first = values["times_of_day"], values["time_of_day"]
    if times is None:  # what TimeList reads of a bad value
        problems["times_of_day"] = "times_of_day cannot be read: it is not a list of times"
    elif not problems.keys() & {"times_of_day", "time_of_day"} and times and min(times) != first:
        problems["times_of_day"] = (
            f"time_of_day ({_shown(first)}) is not the earliest of times_of_day "
            f"(stored: {', '.join(t.isoformat() for t in times)})"
        )
    return problems


def _shown(value: Any) -> str:
    """A stored value in a message: readable, and short."""
    if isinstance(value, time):
        text = value.isoformat()
    elif isinstance(value, timedelta):
        text = f"{value.total_seconds() / 60:g} minutes"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields(source: Mapping[str, Any] | Any, names: Sequence[str]) -> dict[str, Any]:
    """The values of ``names`` in a mapping (a row's, say) or an object."""
    if isinstance(source, Mapping):
        return {name: source[name] for name in names}
    return {name: getattr(source, name) for name in names}


def _duration(source: Mapping[str, Any] | Any) -> Any:
    """The ``duration`` of a schedule's mapping or object; None when it has none."""
    if isinstance(source, Mapping):
        return source.get("duration")
    return getattr(source, "duration", None)


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


def next_fire_zone(timezone: str | None, zone: tzinfo) -> str | None:
    """What ``next_fire_zone`` holds for a next fire computed now with service zone ``zone``."""
    return None if timezone is not None else zone_name(zone)


def refresh_next_fire(schedule: Any, zone: tzinfo) -> None:
    """Store the schedule's :func:`next_fire` after its cursor, read in its own zone, or in
    ``zone`` (the service's) when it has none.

    Called whenever a schedule is created or changed, so that the materializer's due query finds
    it (docs/MATERIALIZER.md, Design). A row that cannot be read is stored as due with the
    unknown zone: the next run takes it up, or names it.
    """
    try:
        schedule.next_fire = _next_fire_of(schedule, zone)
    except ValueError:
        schedule.next_fire, schedule.next_fire_zone = None, UNKNOWN_ZONE
    else:
        schedule.next_fire_zone = next_fire_zone(schedule.timezone, zone)


def _next_fire_of(schedule: Any, zone: tzinfo) -> datetime | None:
    cursor = cursor_of(schedule.last_fire, schedule.created)
    return next_fire(pattern_of(schedule), schedule.anchor, zone, cursor)


def next_fire(
    pattern: recurrence.Pattern, anchor: datetime, zone: tzinfo, after: datetime
) -> datetime | None:
    """The first fire after ``after`` that is not skipped: the one a run takes next.

    The day after is looked at first, where a daily or hourly schedule's next fire is: far
    cheaper than an open-ended look, which reads local times up to the end of the month (a
    daily schedule) or the day (an hourly one).
    """
    skip = frozenset(pattern.skip)
    plain = dataclasses.replace(pattern, skip=()) if skip else pattern
    soon = recurrence.fires_between(plain, anchor, zone, after, shift(after, _DAY))
    fire = next((f for f in soon if f not in skip), None)
    if fire is not None:
        return fire
    start = soon[-1] if soon else after
    return next(recurrence.iter_fires(pattern, anchor, zone, start), None)


def hold_end(start: datetime, duration: timedelta | None) -> datetime | None:
    """The end of the hold a fire makes: ``duration`` of elapsed time after its start.

    An end past the last representable instant (9999-12-31 23:59:59.999999 UTC) becomes null:
    "until someone ends it", which such a hold effectively is.
    """
    if duration is None:
        return None
    try:
        return start + duration
    except OverflowError:
        return None


@dataclass
class Plan:
    """What a schedule's fires make in a span of time (:func:`plan`)."""

    #: The holds to make, as ``(fire, end)``: each starts at its fire.
    holds: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    #: Fires older than the plan's ``oldest``, which make no hold.
    skipped: int = 0
    #: False when more than SKIP_COUNT_LIMIT fires were older: ``skipped`` is then a lower bound.
    skipped_exact: bool = True
    #: The last fire the plan passed (skipped or not); None when it passed none.
    last_fire: datetime | None = None
    #: The first fire after the plan's ``until`` that is not skipped.
    next_fire: datetime | None = None


def plan(
    schedule: Mapping[str, Any] | Any,
    zone: tzinfo,
    after: datetime,
    until: datetime,
    oldest: datetime | None = None,
) -> Plan:
    """The holds a schedule's fires f with ``after`` < f <= ``until`` make, the materializer's
    way: one per fire that is neither in ``skip`` nor older than ``oldest`` (its catch-up
    limit), each starting at its fire and ending at :func:`hold_end`.

    ``schedule``: a stored schedule, or a row of its columns (``anchor``, ``duration`` and the
    pattern fields). ``zone``: the service zone, for a schedule without one of its own. Both a
    materializer run (``after`` = the cursor) and the re-planning of a changed schedule (``after``
    = the change, ``until`` = the cursor) plan with this.

    Fires older than ``oldest`` are counted one by one only up to :data:`SKIP_COUNT_LIMIT`; past
    that the count is a lower bound, and the iteration jumps straight to ``oldest``.
    """
    pattern = pattern_of(schedule)  # UnreadableSchedule names what the API would refuse
    skip = frozenset(pattern.skip)
    plain = dataclasses.replace(pattern, skip=()) if skip else pattern  # the cursor passes them
    anchor, duration = _fields(schedule, ("anchor", "duration")).values()
    oldest = after if oldest is None else oldest
    result = Plan()
    # Bounded by until: the engine then converts only the local times up to it.
    fires = recurrence.iter_fires(plain, anchor, zone, after, until)
    fire = next(fires, None)
    last_skipped = None
    while fire is not None and fire < oldest:
        if result.skipped == SKIP_COUNT_LIMIT:
            # Counting on would cost as much as the outage was long: jump to the window.
            result.skipped_exact = False
            fires = recurrence.iter_fires(plain, anchor, zone, oldest - _TICK, until)
            fire = next(fires, None)
            break
        result.skipped += 1
        last_skipped = fire
        fire = next(fires, None)
    taken = None
    while fire is not None:  # every fire left is in the window
        if fire not in skip:
            result.holds.append((fire, hold_end(fire, duration)))
        taken = fire
        fire = next(fires, None)
    # Every fire up to until is taken now, so the next one is the first after until.
    result.next_fire = next_fire(pattern, anchor, zone, until)
    if taken is not None:
        result.last_fire = taken
    elif result.skipped:
        result.last_fire = (
            last_skipped
            if result.skipped_exact
            else _last_fire_before(plain, anchor, zone, after, oldest)
        )
    return result


def _last_fire_before(
    pattern: recurrence.Pattern, anchor: datetime, zone: tzinfo, after: datetime, before: datetime
) -> datetime | None:
    """The last fire f with after < f < before, looking back over doubling spans."""
    span = timedelta(hours=1)
    while True:
        start = after if before - after <= span else before - span
        fires = recurrence.fires_between(pattern, anchor, zone, start, before - _TICK)
        if fires:
            return fires[-1]
        if start == after:
            return None
        span *= 2


def planned_fires(schedule: Any, zone: tzinfo, after: datetime, until: datetime) -> list[datetime]:
    """The fires f with ``after`` < f <= ``until`` that the materializer has not made into
    holds yet and will: after the schedule's cursor, not skipped. Raises ValueError for a
    stored row the API would not have written."""
    cursor = cursor_of(schedule.last_fire, schedule.created)
    pattern = pattern_of(schedule)
    return recurrence.fires_between(pattern, schedule.anchor, zone, max(cursor, after), until)


def shift(instant: datetime, delta: timedelta) -> datetime:
    """``instant + delta``, clamped to the datetime range."""
    try:
        return instant + delta
    except OverflowError:
        return _LAST if delta > _ZERO else _FIRST


#: Stored values an answer cannot show in their wire form, by field: they answer null.
_UNSHOWABLE: dict[str, Callable[[Any], bool]] = {
    "indices": lambda value: (
        not (isinstance(value, list) and all(type(index) is int for index in value))
    ),
    "time_of_day": lambda value: not isinstance(value, time) or value.microsecond != 0,
    "duration": lambda value: value is not None and not isinstance(value, timedelta),
}


def answer(schedule: MachineHoldSchedule, zone: tzinfo, *, derived: bool = True) -> dict[str, Any]:
    """A stored schedule as the API shows it: its columns, its next fire and its summary.

    Without ``derived``, ``summary`` and ``rrule`` are None and ``next_fire`` is the stored
    value: what a history entry compares, which leaves them out.

    ``next_fire`` is the stored one, unless it was computed in another service zone than
    ``zone`` (``PYTM4SRV_TIMEZONE`` changed since, and no run has recomputed it yet): then it is
    computed here. A row the API would not have stored answers without failing (docs/API.md,
    Schedule fields): a value that cannot be shown in its wire form, the ``next_fire`` (no run
    takes such a row) and a ``summary`` that cannot be written answer null.
    """
    values = {name: getattr(schedule, name) for name in _COLUMNS}
    pattern: recurrence.Pattern | None = None
    readable = False  # and so in a zone known here
    try:
        pattern = pattern_of(schedule)
        readable = True
    except UnreadableSchedule as exc:
        for name, unshowable in _UNSHOWABLE.items():
            if name in exc.problems and unshowable(values[name]):
                values[name] = None
        values["next_fire"] = None  # no run takes it as it is
        if exc.problems.keys() == {"timezone"}:  # a zone unknown here is still named
            pattern = recurrence.Pattern(**pattern_fields(schedule))
    else:
        if derived and schedule.next_fire_zone != next_fire_zone(schedule.timezone, zone):
            values["next_fire"] = _next_fire_of(schedule, zone)
    values["summary"] = values["rrule"] = None
    if pattern is not None and derived:
        zone_shown = pattern.timezone or zone_name(zone)
        shown_in = recurrence.zone_of(pattern, zone) if pattern.timezone is None else None
        values["summary"] = describe(pattern, zone_shown, schedule.duration, shown_in)
        if readable:
            values["rrule"] = ical.to_rrule(pattern, schedule.anchor, zone, zone_name(zone))
    return values


def with_rule(
    sent: dict[str, Any], stored: Any | None, zone: tzinfo, now: datetime
) -> dict[str, Any]:
    """``sent`` with its ``rrule`` (if any) replaced by the fields it sets (:data:`RRULE_FIELDS`).

    A rule without DTSTART keeps the stored schedule's anchor and zone (a new one's: ``now``
    and the service zone). ical.RuleRefused, a ValueError naming the part, when the schedule
    model cannot state the rule exactly.
    """
    text = sent.get("rrule")
    if text is None:
        return {name: value for name, value in sent.items() if name != "rrule"}
    anchor = sent.get("anchor") or (stored.anchor if stored is not None else now)
    timezone = stored.timezone if stored is not None else None
    fields = ical.from_rrule(text, anchor, timezone, zone, max_skip=MAX_SKIP)
    rest = {name: value for name, value in sent.items() if name != "rrule"}
    return rest | fields.values()


@dataclass(frozen=True)
class PreviewRequest:
    """What a preview reads: a stored schedule's fields with those sent over them."""

    fields: dict[str, Any]  # the pattern fields
    anchor: datetime
    start: datetime  # fires strictly after it
    duration: timedelta | None
    machine_id: int | None


def preview_request(
    stored: Any | None,
    sent: Mapping[str, Any],
    start: datetime | None,
    now: datetime,
    *,
    with_ends: bool,
) -> PreviewRequest:
    """Merge a stored schedule (or none) and the fields sent in a preview body.

    A field sent wins over the stored one, a stored one over the default. The start is
    ``start`` if given; else the stored schedule's cursor; else ``now``. The anchor is the one
    sent; else the stored one; else the start. A stored schedule whose merged fields no schedule
    can hold raises UnreadableSchedule (the body may send a field to replace a bad one); its
    ``duration`` counts only ``with_ends`` (a preview that shows the holds' ends).
    """
    fields = (pattern_fields(stored) if stored is not None else dict(PATTERN_DEFAULTS)) | {
        name: value for name, value in sent.items() if name in PATTERN_FIELDS
    }
    known: dict[str, Any] = {}
    if stored is not None:
        start = start or cursor_of(stored.last_fire, stored.created)
        known = {name: getattr(stored, name) for name in ("anchor", "duration", "machine_id")}
    known |= sent
    start = start or now
    request = PreviewRequest(
        fields=fields,
        anchor=known.get("anchor") or start,
        start=start,
        duration=known.get("duration"),
        machine_id=known.get("machine_id"),
    )
    if stored is not None:
        duration = request.duration if with_ends else None
        problems = stored_problems(fields | {"duration": duration})
        if problems:
            raise UnreadableSchedule(problems)
    return request


def preview(
    fields: Mapping[str, Any], anchor: datetime, zone: tzinfo, start: datetime, count: int
) -> list[datetime]:
    """The first ``count`` fire instants strictly after ``start`` that are not skipped."""
    return recurrence.next_fires(pattern_of(fields), anchor, zone, start, count)


class DetailedPreview(NamedTuple):
    """The fires of a detailed preview (docs/API.md, Preview), field by field, in fire order."""

    fires: list[recurrence.Fire]  # instant, local time, shifted
    ends: list[datetime | None]
    conflicts: list[list[int]]  # ids, ascending


def detailed_preview(
    session: Session,
    fields: Mapping[str, Any],
    anchor: datetime,
    zone: tzinfo,
    fires: Sequence[datetime],
    duration: timedelta | None,
    machine_id: int | None,
) -> DetailedPreview:
    """Each of ``fires`` with its end, its wall time, whether it was moved out of a DST gap, and
    the ids of the holds of machine ``machine_id`` in effect at some instant of it (none without
    a machine).

    The holds come from one query, those in effect at some instant of [first start, last end);
    one sweep over them matches every fire.
    """
    details = recurrence.fire_details(pattern_of(fields), anchor, zone, fires)
    ends = [hold_end(fire, duration) for fire in fires]
    holds: Sequence[Any] = []
    if machine_id is not None and fires:
        params = {"machine": machine_id, "since": fires[0]}
        if ends[-1] is not None:
            params["until"] = ends[-1]
        statement = holds_in_effect(bounded="until" in params)
        holds = session.connection().execute(statement, params).all()  # plain rows, no ORM
    none: list[int] = []
    conflicts = _overlaps(fires, ends, holds) if holds else [none] * len(fires)
    return DetailedPreview(details, ends, conflicts)


def _overlaps(
    starts: Sequence[datetime], ends: Sequence[datetime | None], holds: Sequence[Any]
) -> list[list[int]]:
    """For each interval [starts[i], ends[i]) (end None: unbounded), the ids, ascending, of the
    holds in effect at some instant of it. Starts and ends ascend (one duration for all), and
    ``holds``, rows of (id, start, end or None), are ordered by start: holds join the active set
    as the interval's end passes their start, and leave it once the interval's start reaches
    their end.
    """
    answers: list[list[int]] = []
    active: set[int] = set()
    leaving: list[tuple[datetime, int]] = []  # (end, id) of the active holds that end
    ids: list[int] = []
    changed = False
    joined = 0
    for start, end in zip(starts, ends, strict=True):
        while joined < len(holds) and (end is None or holds[joined][1] < end):
            hold_id, _, ends_at = holds[joined]
            joined += 1
            if ends_at is not None and ends_at <= start:
                continue  # over before this interval, so before every later one
            active.add(hold_id)
            changed = True
            if ends_at is not None:
                heapq.heappush(leaving, (ends_at, hold_id))
        while leaving and leaving[0][0] <= start:
            active.discard(heapq.heappop(leaving)[1])
            changed = True
        if changed:
            ids = sorted(active)
            changed = False
        answers.append(ids)
    return answers
