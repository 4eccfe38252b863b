"""A change to a schedule reaches its coming holds (docs/API.md, Changing a schedule).

The schedules here fire daily and were created days ago; the materializer runs at the real now
(the change is made at the real now too), so each schedule has holds that ended, one in effect
(their duration spans a day), and a week of coming ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import icalendar
import pytest
from sqlalchemy import select

from pytm4srv.feed.queries import fire_uid
from pytm4srv.models import DeletedFire, MachineHold, MachineHoldSchedule

SCHEDULES = "/api/machines/holds/schedules/"
HOLDS = "/api/machines/holds/"
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def now() -> datetime:
    """The materializer's now: the real one, to the second (a change is made at the real now)."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def run(runner, now):
    """A materializer run at ``now`` (or ``at``), a week ahead, a day back."""

    def invoke(at: datetime | None = None) -> str:
        when = str(int((at or now).timestamp()))
        result = runner.invoke(args=["holds", "materialize", "--now", when])
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


@pytest.fixture
def schedule(make_schedule, now, run) -> MachineHoldSchedule:
    """Daily, an hour after ``now``'s time of day, for 25 hours, created 3 days ago: after a run,
    holds starting 23 h ago (in effect now) and in 1 h, 1 d + 1 h, ... 6 d + 1 h (coming)."""
    made = make_schedule(
        created=now - 3 * DAY,
        time_of_day=(now + HOUR).time(),
        duration=timedelta(hours=25),
    )
    run()
    return made


def holds(session, schedule_id: int | None = None) -> list[Any]:
    """The holds (of a schedule) as rows: what they were when read, whatever happens later."""
    session.expire_all()
    query = select(MachineHold.__table__).order_by(MachineHold.start, MachineHold.id)
    if schedule_id is not None:
        query = query.where(MachineHold.schedule_id == schedule_id)
    return list(session.execute(query).all())


def fires(first: datetime, count: int, step: timedelta = DAY) -> list[datetime]:
    return [first + i * step for i in range(count)]


def patch(caller, schedule_id: int, **fields):
    answer = caller.patch(f"{SCHEDULES}{schedule_id}", json=fields)
    assert answer.status_code == 200, answer.json
    return answer.json


def test_the_fixture_has_one_hold_in_effect_and_seven_coming(schedule, session, now):
    got = holds(session, schedule.id)
    assert [h.start for h in got] == fires(now + HOUR - DAY, 8)
    assert got[0].start <= now < got[0].end


def test_a_new_time_of_day_moves_the_coming_holds_and_leaves_the_one_in_effect(
    schedule, session, planner, now
):
    before = holds(session, schedule.id)
    in_effect = before[0]
    cursor = before[-1].start
    later = (now + 2 * HOUR).time()
    patch(planner, schedule.id, time_of_day=later.isoformat())
    after = holds(session, schedule.id)
    assert after[0].id == in_effect.id and after[0].start == in_effect.start
    assert after[0].end == in_effect.end and after[0].modified == in_effect.modified
    # Every fire of the new pattern after the change and up to the cursor, nothing else.
    assert [h.start for h in after[1:]] == [f for f in fires(now + 2 * HOUR, 7) if f <= cursor]
    assert all(h.fire == h.start and h.end == h.start + timedelta(hours=25) for h in after)
    assert not {h.id for h in after[1:]} & {h.id for h in before}  # other fires: other holds


def test_the_next_run_goes_on_from_the_cursor_and_makes_each_fire_once(
    schedule, session, planner, now, run
):
    patch(planner, schedule.id, time_of_day=(now + 2 * HOUR).time().isoformat())
    assert "created=1 " in run()  # the fire after the cursor: now + 6 d + 2 h
    assert "created=0 " in run()  # the same run again: nothing new
    run(now + 3 * DAY)  # three days on: three more days ahead
    starts = [h.start for h in holds(session, schedule.id)]
    assert starts == [now + HOUR - DAY, *fires(now + 2 * HOUR, 10)]  # up to now + 10 d
    assert len(set(starts)) == len(starts)


@pytest.mark.parametrize(
    "change, check",
    [
        ({"duration": 90}, lambda h, m: h.end == h.start + timedelta(minutes=90)),
        ({"duration": None}, lambda h, m: h.end is None),
        ({"reason": "new filter"}, lambda h, m: h.reason == "new filter"),
        ({"machine_id": "other"}, lambda h, m: h.machine_id == m.id),
    ],
)
def test_a_change_of_what_fires_make_keeps_the_holds_ids_and_feed_uids(
    schedule, session, planner, make_machine, change, check
):
    other = make_machine("other mill")
    if change.get("machine_id") == "other":
        change = {"machine_id": other.id}
    before = holds(session, schedule.id)
    patch(planner, schedule.id, **change)
    after = holds(session, schedule.id)
    assert [h.id for h in after] == [h.id for h in before]
    assert [fire_uid(schedule.id, h.fire) for h in after] == [
        fire_uid(schedule.id, h.fire) for h in before
    ]
    assert not check(after[0], other)  # the hold in effect keeps what it was
    assert all(check(h, other) for h in after[1:])
    assert all(h.modified > b.modified for h, b in zip(after[1:], before[1:], strict=True))


def test_a_hold_changed_by_hand_stays_as_it_is_and_its_fire_is_not_made_again(
    schedule, session, planner, staff, now
):
    mine = holds(session, schedule.id)[2]  # the fire in 1 d + 1 h
    r = staff.patch(f"{HOLDS}{mine.id}", json={"start": (mine.start + HOUR).isoformat()})
    assert r.status_code == 200
    # The time of day stays; the duration changes: the hold changed by hand keeps its end.
    patch(planner, schedule.id, duration=60, reason="changed")
    kept = next(h for h in holds(session, schedule.id) if h.id == mine.id)
    assert (kept.start, kept.end, kept.reason) == (mine.start + HOUR, mine.end, mine.reason)
    fires_made = [h.fire for h in holds(session, schedule.id)]
    assert fires_made.count(mine.fire) == 1
    # A pattern without its fire at all: the hold changed by hand still stays.
    patch(planner, schedule.id, time_of_day=(now + 3 * HOUR).time().isoformat())
    assert mine.id in {h.id for h in holds(session, schedule.id)}


def test_a_hold_a_user_deleted_is_not_made_again_by_any_later_change(
    schedule, session, planner, now
):
    victim = holds(session, schedule.id)[3]
    assert planner.delete(f"{HOLDS}{victim.id}").status_code == 204
    assert session.scalar(select(DeletedFire.fire)) == victim.fire
    patch(planner, schedule.id, duration=30)  # the same fires
    assert victim.fire not in [h.fire for h in holds(session, schedule.id)]
    # Away from its fire and back again: still not made.
    patch(planner, schedule.id, time_of_day=(now + 2 * HOUR).time().isoformat())
    patch(planner, schedule.id, time_of_day=(now + HOUR).time().isoformat())
    got = [h.fire for h in holds(session, schedule.id)]
    assert victim.fire not in got
    assert got == [f for f in fires(now + HOUR - DAY, 8) if f != victim.fire]


def test_a_hold_deleted_before_deleted_fires_were_kept_is_not_made_again(
    schedule, session, planner
):
    """A hold removed without a record (deleted before the upgrade that keeps them): a fire of
    the old pattern up to the cursor without a hold was deleted, and stays so."""
    victim = holds(session, schedule.id)[4]
    session.delete(session.get(MachineHold, victim.id))
    session.commit()
    patch(planner, schedule.id, duration=45)
    assert victim.fire not in [h.fire for h in holds(session, schedule.id)]
    assert victim.fire in set(session.scalars(select(DeletedFire.fire)))


def test_skip_added_deletes_the_holds_and_skip_taken_away_makes_them_again(
    schedule, session, planner
):
    before = holds(session, schedule.id)
    skipped = [before[2].fire, before[5].fire]
    patch(planner, schedule.id, skip=[f.isoformat() for f in skipped])
    assert [h.id for h in holds(session, schedule.id)] == [
        h.id for h in before if h.fire not in skipped
    ]
    patch(planner, schedule.id, skip=[])
    after = holds(session, schedule.id)
    assert [h.fire for h in after] == [h.fire for h in before]
    assert not session.scalars(select(DeletedFire)).all()  # skipped is not deleted


def test_an_interval_and_anchor_change_reaches_the_coming_holds(schedule, session, planner, now):
    first = holds(session, schedule.id)[1].fire
    patch(planner, schedule.id, interval=2, anchor=first.isoformat())
    got = holds(session, schedule.id)
    assert [h.fire for h in got] == [now + HOUR - DAY, *fires(first, 4, 2 * DAY)]


def test_a_change_of_the_name_alone_touches_no_hold(schedule, session, planner):
    before = [(h.id, h.start, h.end, h.modified) for h in holds(session, schedule.id)]
    patch(planner, schedule.id, name="renamed")
    patch(planner, schedule.id, reason=schedule.reason)  # sent, but the same value
    after = [(h.id, h.start, h.end, h.modified) for h in holds(session, schedule.id)]
    assert after == before


def test_a_deleted_coming_hold_has_a_history_entry_naming_the_planner(
    schedule, session, planner, now
):
    coming = holds(session, schedule.id)[1]
    patch(planner, schedule.id, time_of_day=(now + 2 * HOUR).time().isoformat())
    entries = planner.get(f"{HOLDS}{coming.id}/history").json
    assert [(e["action"], e["user_id"]) for e in entries] == [("deleted", planner.user.id)]
    (change,) = planner.get(f"{SCHEDULES}{schedule.id}/history").json[-1:]
    # time_of_day sent alone sets times_of_day to that one time.
    assert change["action"] == "changed"
    assert set(change["changes"]) == {"time_of_day", "times_of_day"}


def test_the_feed_shows_only_the_new_times_after_a_change(schedule, session, planner, client, now):
    url = planner.post("/api/me/feed").json["url"]
    path = url.split("://", 1)[1].split("/", 1)[1]
    new_time = now + 2 * HOUR
    patch(planner, schedule.id, time_of_day=new_time.time().isoformat())
    calendar = icalendar.Calendar.from_ical(client.get(f"/{path}").data)
    starts = sorted(event.decoded("dtstart") for event in calendar.walk("VEVENT"))
    old_times = {(now + HOUR).time()}
    coming = [s for s in starts if s > now]
    assert coming and all(s.time() == new_time.time() for s in coming)
    assert not [s for s in coming if s.time() in old_times]


def test_a_schedule_whose_cursor_is_behind_the_change_touches_nothing(
    make_schedule, session, planner, now
):
    made = make_schedule(created=now - 3 * DAY, time_of_day=time(8))
    hand = MachineHold(
        machine_id=made.machine_id,
        schedule_id=made.id,
        reason="r",
        start=now + DAY,
        fire=now - 2 * DAY,
        by_hand=True,
    )
    session.add(hand)
    session.commit()
    patch(planner, made.id, time_of_day="09:00")
    assert [h.id for h in holds(session, made.id)] == [hand.id]
