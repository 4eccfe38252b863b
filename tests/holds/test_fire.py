"""A materialized hold keeps the fire it was made for: its start can move, onto a sibling's too,
and the fire is never made again (docs/MATERIALIZER.md, Each hold knows its fire)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from pytm4srv.models import MachineHold

HOLDS = "/api/machines/holds/"
HOUR = 3600


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def materialize(runner, now: datetime, horizon_minutes: int) -> str:
    result = runner.invoke(
        args=[
            "holds",
            "materialize",
            "--now",
            str(int(now.timestamp())),
            "--horizon",
            str(horizon_minutes),
        ]
    )
    assert result.exit_code == 0, result.output
    return result.output


def holds(session) -> list[MachineHold]:
    session.expire_all()
    return list(session.scalars(select(MachineHold).order_by(MachineHold.id)))


def test_materialized_holds_store_their_fire_and_hand_made_ones_none(
    runner, session, make_schedule, planner, machine
):
    schedule = make_schedule(duration=timedelta(hours=1))
    materialize(runner, at(2027, 1, 4), 2 * 24 * 60)
    by_hand = planner.put(
        HOLDS, json={"machine_id": machine.id, "reason": "r", "start": 1_900_000_000}
    )
    assert by_hand.status_code == 201
    stored = holds(session)
    made = [hold for hold in stored if hold.schedule_id == schedule.id]
    assert [(hold.start, hold.fire) for hold in made] == [
        (at(2027, 1, 4, 8), at(2027, 1, 4, 8)),
        (at(2027, 1, 5, 8), at(2027, 1, 5, 8)),
    ]
    (manual,) = [hold for hold in stored if hold.schedule_id is None]
    assert manual.fire is None
    assert "fire" not in by_hand.json  # internal: the answer's fields stay those of the API


def test_a_hold_moves_onto_its_siblings_start_and_no_fire_is_made_twice(
    runner, session, make_schedule, planner
):
    schedule = make_schedule(duration=timedelta(hours=1))
    materialize(runner, at(2027, 1, 4), 2 * 24 * 60)
    first, second = holds(session)
    moved = planner.patch(
        f"{HOLDS}{first.id}",
        json={"start": int(second.start.timestamp()), "end": int(second.end.timestamp())},
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["start"] == int(second.start.timestamp())
    # Runs over the same fires and beyond make only the fires not yet made.
    out = materialize(runner, at(2027, 1, 4), 3 * 24 * 60)
    assert "created=1" in out
    stored = holds(session)
    assert [hold.fire for hold in stored] == [
        at(2027, 1, 4, 8),
        at(2027, 1, 5, 8),
        at(2027, 1, 6, 8),
    ]
    assert [hold.start for hold in stored] == [
        at(2027, 1, 5, 8),
        at(2027, 1, 5, 8),
        at(2027, 1, 6, 8),
    ]
    assert {hold.schedule_id for hold in stored} == {schedule.id}


def test_a_hold_moved_onto_a_later_fire_does_not_take_that_fire(
    runner, session, make_schedule, planner
):
    make_schedule(duration=timedelta(hours=1))
    materialize(runner, at(2027, 1, 4), 24 * 60)
    (first,) = holds(session)
    later = at(2027, 1, 6, 8)
    moved = planner.patch(f"{HOLDS}{first.id}", json={"start": int(later.timestamp()), "end": None})
    assert moved.status_code == 200, moved.json
    assert "created=2" in materialize(runner, at(2027, 1, 4), 3 * 24 * 60)
    stored = holds(session)
    assert [(hold.fire, hold.start) for hold in stored] == [
        (at(2027, 1, 4, 8), later),
        (at(2027, 1, 5, 8), at(2027, 1, 5, 8)),
        (later, later),
    ]
