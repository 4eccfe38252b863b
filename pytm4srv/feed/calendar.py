"""The feed's iCalendar text, built with the icalendar package (RFC 5545, RFC 7986).

Pure: takes the events to show and returns the calendar's bytes. Times are written in UTC
(``...Z``); icalendar ends lines in CRLF and folds them at 75 octets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vDuration
from icalendar.enums import STATUS

PRODID = "-//pytm4srv//holds feed//EN"
#: How often clients should fetch the feed again (REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH = timedelta(hours=1)
#: SEQUENCE counts the whole seconds of an event's last change since this instant: it grows with
#: every change (``holds.revisions.touch``) and stays a 32-bit integer until 2088.
SEQUENCE_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One VEVENT: a hold (confirmed) or a coming fire of a schedule (tentative)."""

    uid: str
    start: datetime
    #: None: indefinite; the event then ends at the window's end.
    end: datetime | None
    summary: str
    description: str
    confirmed: bool
    #: When the hold or schedule last changed: DTSTAMP, LAST-MODIFIED and SEQUENCE.
    modified: datetime


#: Control characters a text value may not hold (RFC 5545 section 3.3.11 allows none of them;
#: line breaks are written as "\n" by icalendar). Rows stored before the API refused them may
#: still hold some.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _text(value: str) -> str:
    """``value`` as calendar text: CR LF and CR as line breaks, a tab as a space, no other
    control character."""
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return _CONTROL.sub("", value)


def sequence_of(modified: datetime) -> int:
    return max(0, int((modified - SEQUENCE_EPOCH).total_seconds()))


def render(events: Iterable[FeedEvent], name: str, uid: str, window_end: datetime) -> bytes:
    """The VCALENDAR of ``events``, named ``name``, its indefinite events ending at
    ``window_end``."""
    calendar = Calendar.new(prodid=PRODID, name=name, uid=uid)
    # RFC 7986 wants the value type written out; icalendar leaves it implicit.
    calendar.add("REFRESH-INTERVAL", vDuration(REFRESH), parameters={"VALUE": "DURATION"})
    # A property of its own name is text to icalendar unless it is given a duration value.
    calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH))
    for event in events:
        indefinite = event.end is None
        description = event.description
        if indefinite:
            description = f"{description}\n\nIndefinite: no end is set.".lstrip()
        calendar.add_component(
            Event.new(
                uid=event.uid,
                start=event.start.astimezone(UTC),
                end=(window_end if event.end is None else event.end).astimezone(UTC),
                summary=_text(event.summary),
                description=_text(description),
                status=STATUS.CONFIRMED if event.confirmed else STATUS.TENTATIVE,
                stamp=event.modified.astimezone(UTC),
                last_modified=event.modified.astimezone(UTC),
                sequence=sequence_of(event.modified),
            )
        )
    text: bytes = calendar.to_ical()
    return text
