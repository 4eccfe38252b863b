"""Wire formats of holds and schedules (docs/API.md, Wire formats)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import ValidationError, fields, post_load, validate, validates, validates_schema
from sqlalchemy import select

from pytm4srv import db, recurrence
from pytm4srv.fields import (
    INT32_MAX,
    Bits,
    InstantSet,
    Minutes,
    QueryInstant,
    QueryInteger,
    StrictInteger,
    TimeOfDay,
    Timestamp,
    to_unix,
)
from pytm4srv.holds.models import (
    MAX_SKIP,
    NOTES_LENGTH,
    REASON_LENGTH,
    SCHEDULE_NAME_LENGTH,
    ZONE_NAME_LENGTH,
    MachineHold,
)
from pytm4srv.holds.schedules import PATTERN_DEFAULTS, RRULE_FIELDS, DetailedPreview
from pytm4srv.schemas import ZONE_NAME, Id, StrictSchema, Text, TextWithLines
from pytm4srv.summary import MONTH_NAMES, WEEKDAY_NAMES

#: The machines' id column, found through the holds' foreign key: holds name machines without
#: importing their package (which imports this one for a machine's status).
(_MACHINE_KEY,) = MachineHold.__table__.c.machine_id.foreign_keys


class MachineRefMixin:
    @validates("machine_id")
    def machine_exists(self, value: int, **kwargs: Any) -> None:
        machine_id = _MACHINE_KEY.column
        found = db.session().scalar(select(machine_id).where(machine_id == value))
        if found is None:
            raise ValidationError(f"No machine with id {value}.")


def check_end_after_start(data: dict[str, Any]) -> None:
    """``end`` must be later than ``start`` when both are known."""
    start, end = data.get("start"), data.get("end")
    if start is not None and end is not None and end <= start:
        raise ValidationError({"end": ["Must be later than start."]})


#: Request examples of the OpenAPI document (Swagger UI's "Try it out" starts from them): valid
#: requests, given a machine 1 (tests/test_openapi.py sends them).
HOLD_EXAMPLE: dict[str, Any] = {
    "machine_id": 1,
    "reason": "Spindle bearing replacement",
    "start": 1_800_000_000,  # 2027-01-15 08:00 UTC
    "end": 1_800_014_400,  # four hours later
}
HOLD_PATCH_EXAMPLE: dict[str, Any] = {
    "notes": "Bearing replaced; back in service after a test run."
}
SCHEDULE_EXAMPLE: dict[str, Any] = {
    "machine_id": 1,
    "name": "Weekly spindle inspection",
    "reason": "Spindle inspection",
    "frequency": "W",
    "weekdays": 1,
    "time_of_day": "07:00",
    "duration": 120,
}
SCHEDULE_PATCH_EXAMPLE: dict[str, Any] = {"time_of_day": "06:30"}
PREVIEW_EXAMPLE: dict[str, Any] = {
    name: SCHEDULE_EXAMPLE[name] for name in ("frequency", "weekdays", "time_of_day")
}


class HoldSchema(MachineRefMixin, StrictSchema):
    """A machine hold."""

    id = fields.Integer(
        dump_only=True, metadata={"description": "Unique, numeric ID.", "example": 41}
    )
    machine_id = Id(
        required=True,
        metadata={"description": "The machine this hold applies to.", "example": 1},
    )
    user_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Who created it; null if made by a schedule or user deleted.",
            "example": 3,
        },
    )
    schedule_id = fields.Integer(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The schedule that created it; null if created manually."},
    )
    reason = TextWithLines(
        required=True,
        min_length=1,
        max_length=REASON_LENGTH,
        metadata={"example": HOLD_EXAMPLE["reason"]},
    )
    notes = TextWithLines(
        max_length=NOTES_LENGTH,
        metadata={"description": "Defaults to empty.", "example": HOLD_PATCH_EXAMPLE["notes"]},
    )
    start = Timestamp(
        metadata={
            "description": "UNIX seconds; defaults to now on creation.",
            "example": HOLD_EXAMPLE["start"],
        }
    )
    end = Timestamp(
        allow_none=True,
        metadata={
            "description": "UNIX seconds, later than start; null: until released.",
            "example": HOLD_EXAMPLE["end"],
        },
    )

    @validates_schema
    def end_after_start(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_end_after_start(data)


#: Most values a repeatable filter of the hold list takes.
MAX_FILTER_VALUES = 100


class PageQuerySchema(StrictSchema):
    """``limit`` and ``offset`` of a list that answers a page at a time."""

    limit = QueryInteger(
        validate=validate.Range(min=0),
        metadata={
            "description": "At most this many; default and maximum: the server's page "
            "size (MAX_PAGE_SIZE). A Link header (rel=next) follows a page cut short.",
            "maximum_setting": "MAX_PAGE_SIZE",
        },
    )
    offset = QueryInteger(
        validate=validate.Range(min=0, max=2**62), metadata={"description": "Skip this many."}
    )

    @validates("limit")
    def limit_within_page_size(self, value: int, **kwargs: Any) -> None:
        cap = current_app.config["MAX_PAGE_SIZE"]
        if value > cap:
            raise ValidationError(f"Must be at most {cap} (the server's page size).")


class HoldQuerySchema(PageQuerySchema):
    """Filters of the hold list (docs/API.md, Endpoints)."""

    machine = fields.List(
        QueryInteger(validate=validate.Range(min=0, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only holds of these machines (repeatable)."},
    )
    user = fields.List(
        QueryInteger(validate=validate.Range(min=0, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only holds created by these users (repeatable); 0: by none."},
    )
    end = QueryInteger(
        validate=validate.OneOf([0, 1]),
        metadata={"description": "1: only holds with an end; 0: only holds without one."},
    )
    start_after = QueryInstant(metadata={"description": "Only holds with start > this instant."})
    end_before = QueryInstant(
        metadata={"description": "Only holds with an end, at or before this instant."}
    )
    schedule = fields.List(
        QueryInteger(validate=validate.Range(min=0, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only holds made by these schedules (repeatable); 0: by none."},
    )
    active_at = QueryInstant(
        metadata={
            "description": "Only holds in effect at this instant: start <= T and (no end, or "
            "end > T)."
        }
    )
    active_from = QueryInstant(
        metadata={
            "description": "Only holds in effect at some instant from this one on: no end, or "
            "end > this instant. With active_until: earlier than it."
        }
    )
    active_until = QueryInstant(
        metadata={"description": "Only holds in effect at some instant before this one: start < T."}
    )

    @validates_schema
    def window_not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        since, until = data.get("active_from"), data.get("active_until")
        if since is not None and until is not None and until <= since:
            raise ValidationError({"active_until": ["Must be later than active_from."]})


class ScheduleQuerySchema(StrictSchema):
    """Filters of the schedule list (docs/API.md, Schedules)."""

    machine = fields.List(
        QueryInteger(validate=validate.Range(min=0, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only the schedules of these machines (repeatable)."},
    )


def _non_zero(value: int) -> None:
    if value == 0:
        raise ValidationError("Must not be 0: positions count from 1, or from -1 at the end.")


#: The longest ``rrule`` text read (DTSTART, RRULE and up to 1000 EXDATE lines).
RRULE_LENGTH = 64_000


class ScheduleSchema(MachineRefMixin, StrictSchema):
    """A machine hold schedule (docs/API.md, Wire formats; docs/RECURRENCE.md, Rules)."""

    id = fields.Integer(dump_only=True, metadata={"example": 7})
    machine_id = Id(required=True, metadata={"description": "The machine to hold.", "example": 1})
    name = Text(
        required=True,
        min_length=1,
        max_length=SCHEDULE_NAME_LENGTH,
        metadata={"example": SCHEDULE_EXAMPLE["name"]},
    )
    reason = TextWithLines(
        required=True,
        min_length=1,
        max_length=REASON_LENGTH,
        metadata={
            "description": "Reason given to the holds this schedule creates.",
            "example": SCHEDULE_EXAMPLE["reason"],
        },
    )
    frequency = fields.String(
        validate=validate.OneOf(recurrence.FREQUENCIES),
        metadata={
            "description": "Y yearly, M monthly, W weekly, D daily, H hourly.",
            "example": "W",
        },
    )
    interval = StrictInteger(
        load_default=PATTERN_DEFAULTS["interval"],
        validate=validate.Range(min=1, max=INT32_MAX),
        metadata={
            "description": "Every n-th period, counted from the anchor's period.",
            "example": 1,
        },
    )
    indices = fields.List(
        StrictInteger(
            validate=[validate.Range(min=-366, max=366), _non_zero],
            metadata={"not": {"enum": [0]}},
        ),
        load_default=list,
        validate=validate.Length(max=2 * 366),
        metadata={"description": "1-based positions within each period (negative: from the "
                  "end); [] keeps every candidate. Ignored for H.", "example": []},
    )  # fmt: skip
    months = Bits(
        MONTH_NAMES,
        ("March", "June"),
        load_default=PATTERN_DEFAULTS["months"],
        metadata={"description": "Bitfield: bit 0 January ... bit 11 December.", "example": 4095},
    )
    weekdays = Bits(
        WEEKDAY_NAMES,
        ("Monday", "Thursday"),
        load_default=PATTERN_DEFAULTS["weekdays"],
        metadata={"description": "Bitfield: bit 0 Monday ... bit 6 Sunday.", "example": 1},
    )
    time_of_day = TimeOfDay(
        metadata={
            "description": "Local time in the schedule's zone, 'HH:MM' or 'HH:MM:SS': the "
            "earliest of times_of_day. Sent alone, it sets times_of_day to this one time.",
            "example": SCHEDULE_EXAMPLE["time_of_day"],
        },
    )
    times_of_day = fields.List(
        TimeOfDay(),
        validate=validate.Length(min=1, max=recurrence.MAX_TIMES_OF_DAY),
        metadata={
            "description": "Every local time a selected date fires at (1 to "
            f"{recurrence.MAX_TIMES_OF_DAY}, distinct; for H their minutes and seconds); "
            "answered ascending.",
            "example": [SCHEDULE_EXAMPLE["time_of_day"]],
            "uniqueItems": True,
        },
    )
    until = Timestamp(
        allow_none=True,
        metadata={
            "description": "No fire instant is later than this; null: no end.",
            "example": None,
        },
    )
    timezone = Text(
        load_default=PATTERN_DEFAULTS["timezone"],
        allow_none=True,
        min_length=1,
        max_length=ZONE_NAME_LENGTH,
        metadata={
            "description": "IANA name of the zone time_of_day, weekdays and months are read in "
            "(e.g. 'Europe/Berlin'); null: the server's zone (PYTM4SRV_TIMEZONE).",
            "example": "Europe/Berlin",
        },
    )
    skip = InstantSet(
        max_length=MAX_SKIP,
        load_default=list,
        metadata={
            "description": f"Fire instants that make no hold (at most {MAX_SKIP}); answered "
            "ascending, each once. An instant that is no fire instant has no effect.",
            "example": [],
        },
    )
    duration = Minutes(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Length of each hold in minutes; null: indefinite.",
            "example": SCHEDULE_EXAMPLE["duration"],
        },
    )
    anchor = Timestamp(
        metadata={
            "description": "Fixes the phase of interval; defaults to the creation instant.",
            "example": 1_799_042_400,  # Monday 2027-01-04 07:00 in Europe/Berlin (06:00 UTC)
        }
    )
    created = Timestamp(dump_only=True, metadata={"example": 1_798_794_000})
    last_fire = Timestamp(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "The last fire instant materialized; null before the first.",
            "example": 1_799_647_200,  # the Monday after the anchor, 07:00 in Europe/Berlin
        },
    )
    next_fire = Timestamp(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "The next fire instant the materializer takes: the first after "
            "last_fire (or created) that is not skipped; null when there is none.",
            "example": 1_800_252_000,  # the Monday after last_fire
        },
    )
    summary = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "When it fires, as one English sentence; null only for a stored "
            "schedule whose fields the server cannot read.",
            "example": "Every week on Monday at 07:00 (Europe/Berlin), for 2 hours",
        },
    )

    rrule = TextWithLines(
        allow_none=True,
        min_length=1,
        max_length=RRULE_LENGTH,
        metadata={
            "description": "The schedule as iCalendar lines (RFC 5545): DTSTART;TZID=<zone>:"
            "<first fire, local>, RRULE:<recur>, one EXDATE per skipped instant, joined by "
            "newlines; RFC 5545 readers and python-dateutil expand it to exactly the fires. "
            "null when the schedule never fires or no single RRULE states it. Sent, it sets "
            "frequency, interval, weekdays, months, indices, times_of_day and until, timezone "
            "and anchor from its DTSTART, and skip from its EXDATE lines (none of which may be "
            "sent with it); a rule the schedule cannot state exactly is refused, naming the "
            "part. null sent changes nothing.",
        },
    )

    @validates_schema(pass_original=True)
    def rule_alone(
        self, data: dict[str, Any], original: Any, partial: Any = None, **kwargs: Any
    ) -> None:
        """``rrule`` sets the pattern fields: sent with any of them, it is invalid; without it a
        new schedule needs ``frequency``."""
        sent = original if isinstance(original, dict) else {}
        if data.get("rrule") is not None:
            clash = [name for name in RRULE_FIELDS if name in sent]
            if clash:
                raise ValidationError(
                    {"rrule": [f"Sent with {', '.join(clash)}: the rule sets those; send "
                               "either the rule or the fields."]}
                )  # fmt: skip
        elif not partial and "frequency" not in data:
            raise ValidationError({"frequency": ["Missing data for required field."]})

    @validates("times_of_day")
    def distinct_times(self, value: list[Any], **kwargs: Any) -> None:
        if len(set(value)) != len(value):
            raise ValidationError("Each time of day must be given once.")

    @validates_schema
    def consistent_times(self, data: dict[str, Any], partial: Any = None, **kwargs: Any) -> None:
        """``time_of_day`` sent with ``times_of_day`` must be their earliest; a new schedule
        needs one of them (a preview does with no stored schedule to start from)."""
        times, first = data.get("times_of_day"), data.get("time_of_day")
        if times and first is not None and first != min(times):
            raise ValidationError(
                {"time_of_day": ["Must be the earliest of times_of_day (or left out)."]}
            )
        if not partial and first is None and not times and data.get("rrule") is None:
            raise ValidationError({"time_of_day": ["Required (or times_of_day, or rrule)."]})

    @post_load
    def both_times(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Either time field sets both: ``time_of_day`` is the earliest of ``times_of_day``.
        A null ``rrule`` changes nothing."""
        if "rrule" in data and data["rrule"] is None:
            del data["rrule"]
        if data.get("times_of_day"):
            data["times_of_day"] = tuple(sorted(data["times_of_day"]))
            data["time_of_day"] = data["times_of_day"][0]
        elif data.get("time_of_day") is not None:
            data["times_of_day"] = (data["time_of_day"],)
        return data

    def openapi_rules(self) -> dict[str, Any]:
        """``rule_alone`` and ``consistent_times`` as far as JSON Schema can say them, for the
        OpenAPI document (``pytm4srv.api.CrossFieldRules``): a schedule is sent either as its
        fields (a new one with ``frequency`` and a time) or as an ``rrule`` without them. An
        answer, which has an ``id``, holds both."""
        if self.partial:
            return {"anyOf": [_AS_FIELDS, _AS_RULE]}
        return {"anyOf": [{"required": ["id"]}, *_with_a_time(_AS_FIELDS), _AS_RULE]}

    @validates("timezone")
    def zone_exists(self, value: str | None, **kwargs: Any) -> None:
        if value is not None and not recurrence.is_zone_name(value):
            raise ValidationError(
                f"Unknown time zone {value!r}: give an IANA zone name such as 'Europe/Berlin', "
                "or null for the server's zone."
            )


#: The shapes of a schedule sent (:meth:`ScheduleSchema.openapi_rules`): its fields, with a
#: null ``rrule`` or none, and a ``timezone`` the server's zone database holds; or an ``rrule``
#: and none of the fields it sets. (The zone is checked here, not on the field: an answer may
#: show a stored zone the database no longer holds.)
_AS_FIELDS: dict[str, Any] = {
    "properties": {
        "rrule": {"nullable": True, "enum": [None]},
        "timezone": {"$ref": f"#/components/schemas/{ZONE_NAME}"},
    }
}
_AS_RULE: dict[str, Any] = {
    "required": ["rrule"],
    "properties": {"rrule": {"type": "string"}},
    "not": {"anyOf": [{"required": [name]} for name in RRULE_FIELDS]},
}


def _with_a_time(shape: dict[str, Any]) -> list[dict[str, Any]]:
    """``shape`` with ``frequency`` and either time field."""
    return [shape | {"required": ["frequency", time]} for time in ("time_of_day", "times_of_day")]


class PreviewSchema(ScheduleSchema):
    """A (partial) schedule to preview; with ``id``, missing fields come from that schedule."""

    id = Id(
        metadata={
            "description": "Preview a stored schedule, overriding the fields sent.",
            "example": 7,
        }
    )

    class Meta(StrictSchema.Meta):
        pass

    def openapi_rules(self) -> dict[str, Any]:
        """As a schedule's, and without ``id`` (or an ``rrule``) the fields of a new one."""
        with_id = _AS_FIELDS | {"required": ["id"]}
        return {"anyOf": [with_id, *_with_a_time(_AS_FIELDS), _AS_RULE]}

    @validates_schema
    def pattern_without_id(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Without ``id`` there is no stored schedule to take the pattern's core from."""
        if "id" not in data and data.get("rrule") is None:
            missing = [name for name in ("frequency", "time_of_day") if name not in data]
            if "times_of_day" in data:
                missing = [name for name in missing if name != "time_of_day"]
            if missing:
                raise ValidationError({name: ["Required without id."] for name in missing})


class PreviewQuerySchema(StrictSchema):
    count = QueryInteger(
        load_default=1,
        validate=validate.Range(min=1, max=1000),
        metadata={"description": "How many fire instants (1 to 1000)."},
    )
    detail = QueryInteger(
        load_default=0,
        validate=validate.OneOf([0, 1]),
        metadata={
            "description": "1: answer objects (start, end, local time, shifted, conflicting "
            "holds) instead of numbers."
        },
    )
    start = QueryInstant(
        metadata={
            "description": "List instants strictly after this one. Default: the stored "
            "schedule's cursor with id, else now."
        }
    )


class PreviewFireSchema(StrictSchema):
    """One fire of a detailed preview (``detail=1``)."""

    start = Timestamp(required=True, metadata={"description": "The fire instant."})
    end = Timestamp(
        required=True,
        allow_none=True,
        metadata={"description": "start + duration; null for a schedule without duration."},
    )
    local = fields.DateTime(
        format="iso",
        required=True,
        metadata={"description": "The wall time in the schedule's zone, with its UTC offset."},
    )
    shifted = fields.Boolean(
        required=True,
        metadata={
            "description": "The wall time asked for does not exist that day (a DST gap), so "
            "the instant was moved (local shows the wall time it got)."
        },
    )
    conflicts = fields.List(
        fields.Integer(),
        required=True,
        metadata={
            "description": "Ids, ascending, of the machine's holds in effect at some instant of "
            "[start, end) ([start, ∞) without end); [] when no machine is known."
        },
    )


def dump_preview_fires(preview: DetailedPreview) -> list[dict[str, Any]]:
    """``PreviewFireSchema(many=True).dump`` of the detailed preview's fires, written out: at
    1000 fires the schema's calls per field cost more than the formatting itself, and a
    detailed preview is held to twice the cost of a plain one (docs/PERFORMANCE.md).
    tests/test_schemas.py checks that both answer the same."""
    fires, ends, conflicts = preview
    starts = [to_unix(fire.instant) for fire in fires]
    local_times = [fire.local.isoformat() for fire in fires]
    return [
        {
            "start": start,
            "end": None if end is None else to_unix(end),
            "local": local,
            "shifted": fire.shifted,
            "conflicts": ids,
        }
        for start, end, local, fire, ids in zip(
            starts, ends, local_times, fires, conflicts, strict=True
        )
    ]
