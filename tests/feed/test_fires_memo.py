"""The coming fires of a schedule are remembered by everything they are computed from: a
change to any of it, made through the API or not, shows the new fires."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from pytm4srv.feed.queries import Window, coming_fires

WINDOW = Window(datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 1, 11, tzinfo=UTC))


def starts(session, app):
    fires = coming_fires(session, [], WINDOW, app.config["ZONE"], set())
    return [(fire.schedule_id, fire.start.hour, fire.start.day) for fire in fires]


def test_a_change_to_a_stored_row_shows_new_fires(session, app, make_schedule):
    schedule = make_schedule(created=datetime(2027, 1, 3, tzinfo=UTC))
    first = starts(session, app)
    assert first == [(schedule.id, 8, day) for day in range(4, 11)]
    assert starts(session, app) == first  # remembered, the same
    # Changed outside the API: no modified, no history; the fires follow all the same.
    schedule.time_of_day = time(9)
    session.commit()
    assert starts(session, app) == [(schedule.id, 9, day) for day in range(4, 11)]
    schedule.weekdays = 1  # Mondays
    session.commit()
    assert starts(session, app) == [(schedule.id, 9, 4)]
    schedule.last_fire = datetime(2027, 1, 4, 9, tzinfo=UTC)  # the materializer took it
    session.commit()
    assert starts(session, app) == []
    schedule.skip = (datetime(2027, 1, 4, 9, tzinfo=UTC),)
    schedule.last_fire = None
    session.commit()
    assert starts(session, app) == []
    schedule.indices = [1]
    schedule.skip = ()
    schedule.duration = timedelta(minutes=5)
    session.commit()
    assert starts(session, app) == [(schedule.id, 9, 4)]
