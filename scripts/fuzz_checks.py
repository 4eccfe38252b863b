"""schemathesis hooks of scripts/fuzz.py: the check that keeps the positive-data check strict where
scripts/schemathesis.toml lets an operation answer 422 to schema-valid data.

OpenAPI cannot state every rule of the API: that one field is later than another (a hold's end
after its start), that a value names a stored object (a machine that exists), that an
Idempotency-Key is not already taken by another request, that an iCalendar RRULE is one the
schedule model can state. schemathesis.toml allows 422 to schema-valid data on the operations
with such rules, and only there. ``refused_only_for_unstated_rules`` then reads each such 422
and fails unless every message in it is one of :data:`UNSTATED_RULES`: a 422 for anything the
document could have stated (a time zone it does not list, a length it does not bound) is still
found, on every phase, stateful included.
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: The refusals of schema-valid input that the document cannot state, by where the value was
#: sent, the field, and how the message starts ("" for any message of that field). Each is in
#: docs/API.md.
UNSTATED_RULES: dict[tuple[str, str], tuple[str, ...]] = {
    # One field against another.
    ("json", "end"): ("Must be later than start.",),
    ("query", "active_until"): ("Must be later than active_from.",),
    ("query", "until"): (
        "Must be later than from",
        "from and until come together.",
        "Must be at most 120 days after from.",
    ),
    ("query", "from"): ("from and until come together.",),
    ("query", "at"): ("Give at, or from and until, not both.",),
    ("json", "time_of_day"): (
        "Must be the earliest of times_of_day",
        "Required (or times_of_day, or rrule).",
        "Required without id.",
    ),
    ("json", "frequency"): ("Missing data for required field.", "Required without id."),
    # "07:00" and "07:00:00" are two strings, one time.
    ("json", "times_of_day"): ("Each time of day must be given once.",),
    # An RRULE: sent with the fields it sets, or a rule the schedule model cannot state.
    ("json", "rrule"): ("",),
    # Stored objects and stored state.
    ("json", "machine_id"): ("No machine with id",),
    ("json", "id"): ("The stored schedule cannot be read",),
    ("headers", "Idempotency-Key"): ("Already used for another request",),
}

#: Of any field: a PATCH's field whose stored value the API would refuse now; an ISO 8601 instant
#: whose UTC offset carries it out of the range of instants (the document states the range of
#: UNIX seconds, not of ISO strings' offsets).
ANY_FIELD = ("The stored value cannot be used", "ISO 8601 instant out of range")


def unstated(errors: dict[str, Any]) -> list[str]:
    """The messages of a 422's ``errors`` that are not for a rule the document cannot state."""
    found = []
    for location, fields in errors.items():
        for field, messages in (fields or {}).items():
            allowed = ANY_FIELD + UNSTATED_RULES.get((location, field), ())
            for text in _messages(messages):
                if not text.startswith(allowed):
                    found.append(f"{location}.{field}: {text}")
    return found


def _messages(messages: Any) -> list[str]:
    """A field's messages, those of its items (``{"2": [...]}`` for a list's third) included."""
    if isinstance(messages, dict):
        return [text for inner in messages.values() for text in _messages(inner)]
    if isinstance(messages, list):
        return [text for inner in messages for text in _messages(inner)]
    return [str(messages)]


@schemathesis.check
def refused_only_for_unstated_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid data answered 422 only for a rule of :data:`UNSTATED_RULES`."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        errors = response.json().get("errors", {})
    except ValueError:
        errors = {}
    problems = unstated(errors) if isinstance(errors, dict) else [repr(errors)]
    if problems or not errors:
        raise AssertionError(
            "Schema-valid data refused for a rule the document could state: "
            + ("; ".join(problems) or "no field named")
        )
    return None
