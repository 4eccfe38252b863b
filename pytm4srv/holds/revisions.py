"""When holds and schedules last changed: what a calendar client revalidates against.

Every hold and schedule carries ``modified``, set when the API creates or changes it and, for
holds the materializer makes, by the database when the row is inserted. A change moves it at
least one second past its previous value, so that the calendar feed's SEQUENCE (whole seconds of
``modified``) grows with every change even within one second. A deletion leaves a mark per kind,
so that the feed's ``Last-Modified`` never moves back when the newest thing it showed goes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, case, update
from sqlalchemy.orm import Session

from pytm4srv.holds.models import DeletionMark

_STEP = timedelta(seconds=1)


def touch(previous: datetime | None, now: datetime) -> datetime:
    """The new ``modified`` of an object changed at ``now`` that was last changed at
    ``previous``."""
    return now if previous is None else max(now, previous + _STEP)


def mark_deletion(session: Session, kind: str, deleted: Any, now: datetime) -> None:
    """Record that ``deleted``, an object of ``kind`` ("hold", "schedule"), was deleted at
    ``now``: the mark never moves back, nor stays behind the object's own ``modified``."""
    at = touch(deleted.modified, now)
    mark = DeletionMark.at
    result = session.execute(
        update(DeletionMark)
        .where(DeletionMark.kind == kind)
        .values(at=case((mark < at, at), else_=mark))
    )
    if not cast(CursorResult[Any], result).rowcount:
        session.add(DeletionMark(kind=kind, at=at))
