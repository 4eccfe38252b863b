"""The materializer, ``flask holds materialize`` and ``materialize()`` (docs/MATERIALIZER.md).

Expected fire instants are written out by hand (or, in the multi-process tests, by stepping a
plain datetime), never taken from the recurrence engine.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text

from pytm4srv import create_app
from pytm4srv.db import WRITE, database, make_engine
from pytm4srv.fields import INT32_MAX
from pytm4srv.holds import materialize as materialize_module
from pytm4srv.holds.materialize import materialize
from pytm4srv.holds.models import UNKNOWN_ZONE
from pytm4srv.holds.schedules import SKIP_COUNT_LIMIT, refresh_next_fire
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule
from tests.conftest import REPO, migrated_database, on_postgresql, stderr_lines
from tests.holds.materialize_worker import run_materialize

SCHEDULES = "/api/machines/holds/schedules/"
HOLDS = "/api/machines/holds/"
DAY = 24 * 60
WEEK = 7 * DAY


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def unix(instant: datetime) -> str:
    return str(int(instant.timestamp()))


@pytest.fixture
def run(runner):
    """``flask holds materialize --now NOW [options]``; asserts exit 0 and returns the output."""

    def invoke(now: datetime, *options: str) -> str:
        result = runner.invoke(args=["holds", "materialize", "--now", unix(now), *options])
        assert result.exit_code == 0, result.output
        return result.output

    return invoke


def holds_of(session, schedule_id: int | None = None) -> list[MachineHold]:
    session.expire_all()
    stmt = select(MachineHold).order_by(MachineHold.start)
    if schedule_id is not None:
        stmt = stmt.where(MachineHold.schedule_id == schedule_id)
    return list(session.scalars(stmt))


def starts(session, schedule_id: int | None = None) -> list[datetime]:
    return [hold.start for hold in holds_of(session, schedule_id)]


def set_zone(app, name: str) -> None:
    app.config.update(TIMEZONE=name, ZONE=ZoneInfo(name))


# -- what a run creates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "horizon", "expected"),
    [
        pytest.param(
            {"frequency": "D"},
            WEEK,
            [at(2027, 1, d, 8) for d in range(4, 11)],
            id="daily",
        ),
        pytest.param(
            {"frequency": "M", "indices": [1, -1], "time_of_day": time(9, 30)},
            60 * DAY,
            [at(2027, 1, 31, 9, 30), at(2027, 2, 1, 9, 30), at(2027, 2, 28, 9, 30)]
            + [at(2027, 3, 1, 9, 30)],
            id="monthly-first-and-last",
        ),
        pytest.param(
            {"frequency": "W", "weekdays": 0b10101, "interval": 2},
            4 * WEEK,
            [at(2027, 1, d, 8) for d in (4, 6, 8, 18, 20, 22)],
            id="mon-wed-fri-every-other-week",
        ),
        pytest.param(
            {"frequency": "H", "time_of_day": time(0, 15, 30)},
            5 * 60,
            [at(2027, 1, 4, h, 15, 30) for h in range(5)],
            id="hourly",
        ),
        pytest.param(
            {"frequency": "Y", "months": 0b10, "indices": [-1]},
            700 * DAY,
            [at(2027, 2, 28, 8), at(2028, 2, 29, 8)],
            id="yearly-last-day-of-february",
        ),
    ],
)
def test_run_creates_a_hold_for_each_fire_in_the_window(
    run, make_schedule, session, machine, fields, horizon, expected
):
    schedule = make_schedule(duration=timedelta(minutes=90), **fields)
    out = run(at(2027, 1, 4), "--horizon", str(horizon))
    assert f"schedules=1 created={len(expected)} skipped=0" in out
    holds = holds_of(session)
    assert [h.start for h in holds] == expected
    for hold in holds:
        assert hold.end == hold.start + timedelta(minutes=90)
        assert (hold.machine_id, hold.reason, hold.schedule_id) == (
            machine.id,
            "maintenance",
            schedule.id,
        )
        assert hold.user_id is None
        assert hold.notes == ""
    session.refresh(schedule)
    assert schedule.last_fire == expected[-1]
    assert schedule.next_fire is not None and schedule.next_fire > at(2027, 1, 4) + timedelta(
        minutes=horizon
    )


def test_holds_without_duration_have_no_end(run, make_schedule, session):
    make_schedule()
    run(at(2027, 1, 4), "--horizon", str(DAY))
    assert [(h.start, h.end) for h in holds_of(session)] == [(at(2027, 1, 4, 8), None)]


def test_holds_are_visible_over_the_api(run, make_schedule, staff):
    schedule = make_schedule(duration=timedelta(minutes=30))
    run(at(2027, 1, 4), "--horizon", str(DAY))
    [hold] = staff.get(HOLDS).json
    start = int(at(2027, 1, 4, 8).timestamp())
    assert hold["schedule_id"] == schedule.id
    assert (hold["start"], hold["end"], hold["user_id"]) == (start, start + 1800, None)


def test_rerun_with_the_same_now_creates_nothing(run, make_schedule, session):
    make_schedule()
    make_schedule(frequency="H")
    first = run(at(2027, 1, 4))
    assert "created=175 " in first  # 7 daily + 168 hourly
    again = run(at(2027, 1, 4))
    assert "schedules=0 created=0 skipped=0" in again
    assert len(holds_of(session)) == 175


def test_a_later_run_continues_from_the_cursor(run, make_schedule, session):
    schedule = make_schedule()
    run(at(2027, 1, 4), "--horizon", str(DAY))
    run(at(2027, 1, 6, 6), "--horizon", str(DAY))
    # Jan 5 08:00 is within the catch-up day before Jan 6 06:00, so it is created late.
    assert starts(session, schedule.id) == [at(2027, 1, d, 8) for d in (4, 5, 6)]


def test_a_deleted_hold_is_not_created_again(run, make_schedule, session, planner):
    make_schedule()
    run(at(2027, 1, 4))
    victim = holds_of(session)[2]
    assert victim.start == at(2027, 1, 6, 8)
    assert planner.delete(f"{HOLDS}{victim.id}").status_code == 204
    run(at(2027, 1, 4))
    run(at(2027, 1, 5))
    assert at(2027, 1, 6, 8) not in starts(session)
    assert starts(session) == [at(2027, 1, d, 8) for d in (4, 5, 7, 8, 9, 10, 11)]


def test_fires_older_than_the_catch_up_are_skipped(run, make_schedule, session):
    schedule = make_schedule(created=at(2027, 1, 1))
    out = run(at(2027, 1, 11, 12), "--catch-up", str(DAY), "--horizon", str(WEEK))
    # Jan 1..10 08:00 are before Jan 10 12:00; Jan 11..18 08:00 are in the window.
    assert "schedules=1 created=8 skipped=10" in out
    assert starts(session) == [at(2027, 1, d, 8) for d in range(11, 19)]
    session.refresh(schedule)
    assert schedule.last_fire == at(2027, 1, 18, 8)


def test_window_bounds_are_inclusive(run, make_schedule, session):
    make_schedule(created=at(2027, 1, 1))
    # now - catch-up = Jan 2 08:00 exactly; now + horizon = Jan 4 08:00 exactly.
    out = run(at(2027, 1, 3, 8), "--catch-up", str(DAY), "--horizon", str(DAY))
    assert "created=3 skipped=1" in out
    assert starts(session) == [at(2027, 1, 2, 8), at(2027, 1, 3, 8), at(2027, 1, 4, 8)]


def test_horizon_limits_how_far_ahead(run, make_schedule, session):
    make_schedule()
    run(at(2027, 1, 4, 7), "--horizon", "59")
    assert starts(session) == []
    run(at(2027, 1, 4, 7), "--horizon", "60")
    assert starts(session) == [at(2027, 1, 4, 8)]


def test_defaults_come_from_the_config(run, make_schedule, session, app):
    make_schedule(created=at(2027, 1, 1))
    app.config.update(MATERIALIZE_HORIZON=2 * DAY, MATERIALIZE_CATCH_UP=60)
    out = run(at(2027, 1, 3, 8, 30))
    assert "horizon=2880 catch_up=60" in out
    assert starts(session) == [at(2027, 1, 3, 8), at(2027, 1, 4, 8), at(2027, 1, 5, 8)]


def test_default_horizon_is_a_week_and_catch_up_a_day(run, make_schedule, session):
    make_schedule(created=at(2027, 1, 1))
    out = run(at(2027, 1, 10, 12))
    assert "horizon=10080 catch_up=1440" in out
    assert starts(session) == [at(2027, 1, d, 8) for d in range(10, 18)]


# -- zones -----------------------------------------------------------------------------------------


def test_duration_is_elapsed_time_across_dst_changes(run, make_schedule, session, app):
    set_zone(app, "Europe/Berlin")
    two_hours = timedelta(minutes=120)
    spring = make_schedule(time_of_day=time(2, 30), created=at(2027, 3, 25, 12), duration=two_hours)
    run(at(2027, 3, 25, 12), "--horizon", str(4 * DAY))
    assert starts(session, spring.id) == [
        at(2027, 3, 26, 1, 30),  # 02:30 CET
        at(2027, 3, 27, 1, 30),
        at(2027, 3, 28, 1, 30),  # 02:30 does not exist: offset before the gap, 03:30 CEST
        at(2027, 3, 29, 0, 30),  # 02:30 CEST
    ]
    fall = make_schedule(time_of_day=time(2, 30), created=at(2027, 10, 29, 12), duration=two_hours)
    run(at(2027, 10, 29, 12), "--horizon", str(3 * DAY))
    assert starts(session, fall.id) == [
        at(2027, 10, 30, 0, 30),  # 02:30 CEST
        at(2027, 10, 31, 0, 30),  # 02:30 happens twice: the earlier, CEST
        at(2027, 11, 1, 1, 30),  # 02:30 CET
    ]
    holds = holds_of(session)
    assert all(h.end - h.start == two_hours for h in holds)
    # On the fall-back night the wall clock shows 02:30 CEST to 03:30 CET: one hour, two elapsed.
    berlin = ZoneInfo("Europe/Berlin")
    night = holds_of(session, fall.id)[1]
    assert night.start.astimezone(berlin).strftime("%H:%M %Z") == "02:30 CEST"
    assert night.end.astimezone(berlin).strftime("%H:%M %Z") == "03:30 CET"


def test_a_zone_change_recomputes_the_stored_next_fire(run, make_schedule, session, app):
    schedule = make_schedule(created=at(2027, 1, 4, 10))
    assert (schedule.next_fire, schedule.next_fire_zone) == (at(2027, 1, 5, 8), "UTC")
    set_zone(app, "Asia/Tokyo")
    # 08:00 in Tokyo is 23:00 UTC the day before: earlier than the stored UTC next fire.
    out = run(at(2027, 1, 4, 20), "--horizon", "240")
    assert "schedules=1 created=1" in out
    assert starts(session) == [at(2027, 1, 4, 23)]
    session.refresh(schedule)
    assert (schedule.next_fire, schedule.next_fire_zone) == (at(2027, 1, 5, 23), "Asia/Tokyo")
    assert "schedules=0 created=0" in run(at(2027, 1, 4, 20), "--horizon", "240")


def test_rows_without_a_stored_next_fire_are_computed_on_the_first_run(run, make_schedule, session):
    schedule = make_schedule()
    # As migration 0007 leaves rows whose next fire was never computed.
    schedule.next_fire, schedule.next_fire_zone = None, UNKNOWN_ZONE
    session.commit()
    assert "schedules=1 created=1" in run(at(2027, 1, 4), "--horizon", str(DAY))
    session.refresh(schedule)
    assert (schedule.next_fire, schedule.next_fire_zone) == (at(2027, 1, 5, 8), "UTC")


# -- a schedule's own zone and skipped fires -------------------------------------------------------


def test_each_schedule_is_read_in_its_own_zone(run, make_schedule, session, app):
    set_zone(app, "Europe/Berlin")  # the service's zone applies to none of them
    expected = {
        "UTC": at(2027, 1, 4, 8),
        "America/Chicago": at(2027, 1, 4, 14),  # 08:00 CST
        "Australia/Lord_Howe": at(2027, 1, 4, 21),  # 08:00 +11 on Jan 5
        "Pacific/Apia": at(2027, 1, 4, 19),  # 08:00 +13 on Jan 5
        "Asia/Kolkata": at(2027, 1, 4, 2, 30),  # 08:00 IST
    }
    schedules = {zone: make_schedule(timezone=zone) for zone in expected}
    out = run(at(2027, 1, 4), "--horizon", str(DAY), "--catch-up", "0")
    assert "schedules=5 created=5 skipped=0" in out
    for zone, fire in expected.items():
        schedule = schedules[zone]
        assert starts(session, schedule.id) == [fire], zone
        session.refresh(schedule)
        assert schedule.last_fire == fire
        assert schedule.next_fire == fire + timedelta(days=1)
        assert schedule.next_fire_zone is None  # exact, whatever the service's zone
    assert "schedules=0 created=0" in run(at(2027, 1, 4), "--horizon", str(DAY))


def test_skipped_fires_make_no_hold_and_the_cursor_passes_them(
    run, make_schedule, session, planner
):
    skip = (at(2027, 1, 5, 8), at(2027, 1, 6, 9), at(2027, 1, 7, 8), at(2027, 1, 8, 8))
    schedule = make_schedule(skip=skip)  # Jan 6 09:00 is no fire: no effect
    out = run(at(2027, 1, 4), "--horizon", str(3 * DAY + 8 * 60), "--catch-up", "0")
    # Jan 4, 5, 6, 7 at 08:00 are in the window; Jan 5 and 7 are skipped.
    assert "schedules=1 created=2 skipped=0" in out
    assert starts(session) == [at(2027, 1, 4, 8), at(2027, 1, 6, 8)]
    session.refresh(schedule)
    # The cursor passes the skipped Jan 7 too; Jan 8 is skipped, so Jan 9 comes next.
    assert (schedule.last_fire, schedule.next_fire) == (at(2027, 1, 7, 8), at(2027, 1, 9, 8))
    assert "schedules=0 created=0" in run(at(2027, 1, 4), "--horizon", str(4 * DAY))
    # Taking fires out of skip: Jan 5 and 7, which the cursor passed and which are still to
    # come when the change is made, get their holds with it; Jan 8 from the next run.
    assert planner.patch(f"{SCHEDULES}{schedule.id}", json={"skip": []}).status_code == 200
    assert starts(session) == [at(2027, 1, d, 8) for d in (4, 5, 6, 7)]
    run(at(2027, 1, 8), "--horizon", str(DAY), "--catch-up", str(DAY))
    assert starts(session) == [at(2027, 1, d, 8) for d in (4, 5, 6, 7, 8)]


def test_a_schedule_is_due_only_for_fires_not_skipped(run, make_schedule, session):
    schedule = make_schedule(skip=(at(2027, 1, 4, 8), at(2027, 1, 5, 8)))
    assert schedule.next_fire == at(2027, 1, 6, 8)
    # Only skipped fires up to now + horizon: nothing to take yet, the cursor stays.
    out = run(at(2027, 1, 4), "--horizon", str(DAY + 8 * 60), "--catch-up", "0")
    assert "schedules=0 created=0 skipped=0" in out
    # The run that takes Jan 6 passes Jan 4 and 5 without holds.
    out = run(at(2027, 1, 5), "--horizon", str(DAY + 8 * 60), "--catch-up", str(DAY))
    assert "schedules=1 created=1 skipped=0" in out
    assert starts(session) == [at(2027, 1, 6, 8)]
    session.refresh(schedule)
    assert (schedule.last_fire, schedule.next_fire) == (at(2027, 1, 6, 8), at(2027, 1, 7, 8))


def test_a_service_zone_change_moves_only_schedules_without_their_own(
    run, make_schedule, session, app
):
    default = make_schedule()
    own = make_schedule(timezone="UTC")
    assert (default.next_fire_zone, own.next_fire_zone) == ("UTC", None)
    set_zone(app, "America/Chicago")
    # Nothing is due by the stored instants (Jan 4 08:00 UTC); the default one is recomputed.
    out = run(at(2027, 1, 4), "--horizon", "60")
    assert "schedules=1 created=0" in out
    session.refresh(default)
    session.refresh(own)
    assert (default.next_fire, default.next_fire_zone) == (at(2027, 1, 4, 14), "America/Chicago")
    assert (own.next_fire, own.next_fire_zone) == (at(2027, 1, 4, 8), None)
    assert "schedules=0 created=0" in run(at(2027, 1, 4), "--horizon", "60")
    run(at(2027, 1, 4), "--horizon", str(DAY))
    assert starts(session, default.id) == [at(2027, 1, 4, 14)]  # 08:00 in Chicago
    assert starts(session, own.id) == [at(2027, 1, 4, 8)]
    session.refresh(own)
    assert own.next_fire_zone is None


# -- schedule changes ------------------------------------------------------------------------------


def test_a_new_time_moves_the_coming_holds_and_the_next_run_goes_on(
    run, make_schedule, session, planner
):
    schedule = make_schedule()  # all its fires come after the change (made today)
    run(at(2027, 1, 4), "--horizon", str(2 * DAY))
    r = planner.patch(f"{SCHEDULES}{schedule.id}", json={"time_of_day": "20:00"})
    assert r.status_code == 200, r.json
    # Up to the cursor (Jan 5 08:00), the new pattern's fires: Jan 4 20:00 only.
    assert starts(session) == [at(2027, 1, 4, 20)]
    session.refresh(schedule)
    assert schedule.last_fire == at(2027, 1, 5, 8)  # the change leaves the cursor
    assert schedule.next_fire == at(2027, 1, 5, 20)
    run(at(2027, 1, 5), "--horizon", str(2 * DAY))
    assert starts(session) == [at(2027, 1, 4, 20), at(2027, 1, 5, 20), at(2027, 1, 6, 20)]


def test_deleting_a_schedule_deletes_its_coming_holds_but_not_one_changed_by_hand(
    run, make_schedule, session, planner, staff
):
    schedule = make_schedule()
    run(at(2027, 1, 4), "--horizon", str(2 * DAY))
    mine, theirs = holds_of(session)
    assert staff.patch(f"/api/machines/holds/{mine.id}", json={"notes": "n"}).status_code == 200
    assert planner.delete(f"{SCHEDULES}{schedule.id}").status_code == 204
    session.expire_all()
    holds = holds_of(session)
    assert [(h.id, h.start, h.schedule_id) for h in holds] == [(mine.id, at(2027, 1, 4, 8), None)]
    assert "schedules=0 created=0" in run(at(2027, 1, 10))
    assert len(holds_of(session)) == 1


def test_schedule_views_store_the_next_fire(planner, machine, session, app):
    body = {
        "machine_id": machine.id,
        "name": "n",
        "reason": "r",
        "frequency": "D",
        "time_of_day": "08:00",
    }
    created = planner.put(SCHEDULES, json=body).json
    assert "next_fire_zone" not in created
    stored = session.get(MachineHoldSchedule, created["id"])
    day = datetime.fromtimestamp(created["created"], UTC).replace(hour=8, minute=0, second=0)
    day = day.replace(microsecond=0)
    expected = day if day.timestamp() > created["created"] else day + timedelta(days=1)
    assert (stored.next_fire, stored.next_fire_zone) == (expected, "UTC")
    assert created["next_fire"] == expected.timestamp()
    set_zone(app, "America/New_York")
    changed = planner.patch(f"{SCHEDULES}{created['id']}", json={"months": 0}).json
    session.refresh(stored)
    assert (stored.next_fire, stored.next_fire_zone) == (None, "America/New_York")
    assert changed["next_fire"] is None
    # A zone of its own: the stored next fire depends on no setting.
    changed = planner.patch(
        f"{SCHEDULES}{created['id']}", json={"months": 4095, "timezone": "Asia/Kolkata"}
    ).json
    session.refresh(stored)
    kolkata = expected.replace(hour=2, minute=30)  # 08:00 IST
    if kolkata.timestamp() <= created["created"]:
        kolkata += timedelta(days=1)
    assert (stored.next_fire, stored.next_fire_zone) == (kolkata, None)
    assert changed["next_fire"] == kolkata.timestamp()


@pytest.mark.parametrize("field", ["next_fire", "next_fire_zone"])
def test_clients_cannot_set_the_next_fire(planner, machine, session, field):
    body = {"machine_id": machine.id, "name": "n", "reason": "r", "frequency": "D"}
    body |= {"time_of_day": "08:00", field: 1800000000 if field == "next_fire" else "UTC"}
    r = planner.put(SCHEDULES, json=body)
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]


# -- edges -----------------------------------------------------------------------------------------


def test_a_schedule_that_never_fires_is_never_due(run, make_schedule, session):
    schedule = make_schedule(months=0)
    assert schedule.next_fire is None
    assert "schedules=0 created=0" in run(at(2027, 1, 4))


def test_an_end_past_year_9999_becomes_open(run, make_schedule, session):
    yearly = make_schedule(
        frequency="Y",
        months=1,
        indices=[1],
        time_of_day=time(0, 0),
        created=at(9990, 6, 1),
        duration=timedelta(minutes=INT32_MAX),
    )
    assert "created=1 " in run(at(9990, 6, 1), "--horizon", str(400 * DAY))
    assert [(h.start, h.end) for h in holds_of(session, yearly.id)] == [(at(9991, 1, 1), None)]

    daily = make_schedule(created=at(9999, 12, 29), duration=timedelta(days=2))
    # now + horizon is past the last instant: the window simply ends there.
    out = run(at(9999, 12, 29), "--horizon", str(400 * DAY))
    assert "created=3 skipped=8" in out  # the yearly one's 9992..9999 fires are too old
    assert [(h.start, h.end) for h in holds_of(session, daily.id)] == [
        (at(9999, 12, 29, 8), at(9999, 12, 31, 8)),
        (at(9999, 12, 30, 8), None),
        (at(9999, 12, 31, 8), None),
    ]
    session.refresh(daily)
    session.refresh(yearly)
    assert daily.next_fire is None and yearly.next_fire is None  # no fire after 9999
    assert "schedules=0 created=0" in run(at(9999, 12, 30), "--horizon", str(400 * DAY))


def test_skipped_count_stops_at_the_limit_and_the_cost_does_not(run, make_schedule, session):
    # Hourly, created five years before the run: 43 800 missed fires are not walked one by one.
    schedule = make_schedule(frequency="H", time_of_day=time(0, 0), created=at(2022, 1, 1))
    out = run(at(2027, 1, 1))
    assert f"created=193 skipped={SKIP_COUNT_LIMIT}+" in out
    assert starts(session)[0] == at(2026, 12, 31)
    assert starts(session)[-1] == at(2027, 1, 8)
    session.refresh(schedule)
    assert schedule.last_fire == at(2027, 1, 8)


def test_cursor_moves_past_skipped_fires_when_the_window_has_none(run, make_schedule, session):
    monthly = make_schedule(frequency="M", indices=[1], created=at(2026, 10, 15))
    daily = make_schedule(created=at(2022, 1, 1))  # more skipped fires than are counted
    out = run(at(2027, 1, 1, 12), "--catch-up", "0", "--horizon", "0")
    assert f"created=0 skipped={SKIP_COUNT_LIMIT + 3}+" in out
    session.refresh(monthly)
    session.refresh(daily)
    assert (monthly.last_fire, monthly.next_fire) == (at(2027, 1, 1, 8), at(2027, 2, 1, 8))
    assert (daily.last_fire, daily.next_fire) == (at(2027, 1, 1, 8), at(2027, 1, 2, 8))
    assert "skipped=0" in run(at(2027, 1, 1, 12), "--catch-up", "0", "--horizon", "0")


# -- failures --------------------------------------------------------------------------------------


def test_a_schedule_that_fails_to_plan_is_left_and_the_others_done(
    app, make_schedule, session, monkeypatch
):
    first, second = make_schedule(), make_schedule()
    plan = materialize_module.plan

    def failing_plan(row, *args):
        if row["id"] == second.id:
            raise RuntimeError("boom")
        return plan(row, *args)

    monkeypatch.setattr(materialize_module, "plan", failing_plan)
    with database(app).open(WRITE) as run_session:
        summary = materialize(
            run_session, at(2027, 1, 4), timedelta(days=1), timedelta(0), UTC, batch_size=1
        )
    assert summary.failed == {second.id: "RuntimeError: boom"}
    assert (summary.schedules, summary.created) == (1, 1)
    session.expire_all()
    assert session.get(MachineHoldSchedule, second.id).last_fire is None
    assert starts(session, second.id) == []
    assert session.get(MachineHoldSchedule, first.id).last_fire == at(2027, 1, 4, 8)
    assert starts(session, first.id) == [at(2027, 1, 4, 8)]

    monkeypatch.setattr(materialize_module, "plan", plan)
    with database(app).open(WRITE) as run_session:
        summary = materialize(run_session, at(2027, 1, 4), timedelta(days=1), timedelta(0), UTC)
    assert (summary.schedules, summary.failed) == (1, {})
    assert starts(session, first.id) == starts(session, second.id) == [at(2027, 1, 4, 8)]


def test_a_failing_schedule_is_named_on_stderr_and_the_run_exits_1(
    runner, make_schedule, monkeypatch
):
    schedule = make_schedule()

    def failing_plan(*args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(materialize_module, "plan", failing_plan)
    result = runner.invoke(args=["holds", "materialize", "--now", unix(at(2027, 1, 4))])
    assert result.exit_code == 1
    assert result.stdout.startswith("materialize: schedules=0 created=0 skipped=0 ")
    assert stderr_lines(result) == [f"schedule {schedule.id}: RuntimeError: boom second line"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=5",
        "sqlite:////nonexistent-directory/pytm4srv.sqlite",
    ],
    ids=["postgresql", "sqlite"],
)
def test_unreachable_database_exits_non_zero_with_one_line_on_stderr(url, tmp_path):
    env = {**os.environ, "PYTM4SRV_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "pytm4srv", "holds", "materialize"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = stderr_lines(done)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: materialize failed: ")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--now", "yesterday"], "'--now'"),
        (["--now", "nan"], "finite"),
        (["--now", "1e12"], "years 1 to 9999"),
        (["--horizon", "-1"], "'--horizon'"),
        (["--catch-up", "1.5"], "'--catch-up'"),
        (["--horizon", "99999999999999"], "'--horizon'"),
    ],
)
def test_bad_options_are_usage_errors(runner, options, message):
    result = runner.invoke(args=["holds", "materialize", *options])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    "now",
    ["1799020800", "1799020800.0", "2027-01-04T00:00:00Z", "2027-01-04T02:00:00+02:00"],
)
def test_now_takes_unix_seconds_or_iso_8601_with_an_offset(runner, make_schedule, session, now):
    schedule = make_schedule()
    result = runner.invoke(args=["holds", "materialize", "--now", now, "--horizon", str(DAY)])
    assert result.exit_code == 0, result.output
    assert " now=2027-01-04T00:00:00Z " in result.stdout
    assert starts(session, schedule.id) == [at(2027, 1, 4, 8)]


@pytest.mark.parametrize(
    ("now", "message"),
    [
        ("2027-01-04T00:00:00", "without a UTC offset"),
        ("2027-01-04", "without a UTC offset"),
        ("next monday", "Not a valid timestamp"),
        ("10000-01-01T00:00:00Z", "Not a valid timestamp"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_now_refuses_a_naive_iso_string_or_anything_else(
    runner, make_schedule, session, now, message
):
    schedule = make_schedule()
    result = runner.invoke(args=["holds", "materialize", "--now", now])
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "'--now'" in errors[0] and message in errors[0]
    assert starts(session, schedule.id) == []


def test_a_bad_configured_default_is_a_clear_error(runner, app):
    app.config["MATERIALIZE_HORIZON"] = "a week"
    result = runner.invoke(args=["holds", "materialize", "--now", "1800000000"])
    assert result.exit_code == 2
    assert "PYTM4SRV_MATERIALIZE_HORIZON" in result.output


# -- several runs at once on a real database -------------------------------------------------------

NOW = at(2027, 3, 1, 12)
CREATED = NOW - timedelta(days=3)
DAILY, HOURLY = 350, 50


def _expected(
    first: datetime, step: timedelta, oldest: datetime, until: datetime
) -> list[datetime]:
    """Fires of a fixed-step schedule, stepped by hand, in (CREATED, until] and >= oldest."""
    fires, fire = [], first
    while fire <= until:
        if fire > CREATED and fire >= oldest:
            fires.append(fire)
        fire += step
    return fires


def _fill(
    url: str, daily: int = DAILY, hourly: int = HOURLY
) -> dict[int, tuple[datetime, timedelta]]:
    """Daily and hourly schedules created at CREATED; each one's first fire that day and step."""
    app = create_app({"DATABASE_URL": url, "TIMEZONE": "UTC"})
    stepping = {}
    with app.app_context(), database(app).open(WRITE) as session:
        machine = Machine(name="press")
        session.add(machine)
        session.flush()
        schedules = []
        for i in range(daily + hourly):
            is_hourly = i >= daily
            minute = i % 60 if is_hourly else (i * 7) % DAY
            schedule = MachineHoldSchedule(
                machine_id=machine.id,
                name=f"s{i}",
                reason="r",
                frequency="H" if is_hourly else "D",
                time_of_day=time(minute // 60, minute % 60),
                interval=1,
                indices=[],
                months=4095,
                weekdays=127,
                duration=timedelta(minutes=5),
                anchor=CREATED,
                created=CREATED,
            )
            refresh_next_fire(schedule, app.config["ZONE"])
            session.add(schedule)
            schedules.append((schedule, is_hourly, minute))
        session.commit()
        for schedule, is_hourly, minute in schedules:
            first = CREATED.replace(hour=0, minute=0) + timedelta(minutes=minute)
            step = timedelta(hours=1) if is_hourly else timedelta(days=1)
            stepping[schedule.id] = (first, step)
    database(app).engine.dispose()
    return stepping


def _run_together(url: str, runs: list[tuple[datetime, float]]) -> list[tuple[int, str]]:
    """One process per (now, seconds per schedule) run, all started at the same moment."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(runs))
    results = context.Queue()
    workers = [
        context.Process(target=run_materialize, args=(url, unix(now), barrier, results, slow))
        for now, slow in runs
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    return outcomes


def _run_at_once(url: str, processes: int) -> list[tuple[int, str]]:
    return _run_together(url, [(NOW, 0.0)] * processes)


def _created(output: str) -> int:
    return int(output.split("created=")[1].split()[0])


def _holds_by_schedule(session) -> dict[int, list[datetime]]:
    rows = session.execute(select(MachineHold.schedule_id, MachineHold.start)).all()
    assert len(rows) == len(set(rows))
    got: dict[int, list[datetime]] = {}
    for schedule_id, start in sorted(rows, key=lambda row: row[1]):
        got.setdefault(schedule_id, []).append(start)
    return got


def _last_fires(session) -> dict[int, datetime | None]:
    return dict(
        session.execute(select(MachineHoldSchedule.id, MachineHoldSchedule.last_fire)).all()
    )


@pytest.mark.slow
def test_concurrent_runs_create_each_hold_exactly_once(tmp_path):
    processes = 6 if on_postgresql() else 3
    with migrated_database(tmp_path) as url:
        stepping = _fill(url)
        expected = {
            sid: _expected(first, step, NOW - timedelta(days=1), NOW + timedelta(days=7))
            for sid, (first, step) in stepping.items()
        }
        total = sum(len(fires) for fires in expected.values())
        assert total > 10_000

        outcomes = _run_at_once(url, processes)
        assert [code for code, _ in outcomes] == [0] * processes, outcomes
        assert sum(_created(out) for _, out in outcomes) == total

        app = create_app({"DATABASE_URL": url})
        with database(app).open(WRITE) as session:
            got = _holds_by_schedule(session)
            assert sum(len(starts) for starts in got.values()) == total
            assert got == {sid: fires for sid, fires in expected.items() if fires}
            assert _last_fires(session) == {sid: fires[-1] for sid, fires in expected.items()}

        # (No transaction of this process may stay open: on SQLite it would block the writers.)
        again = _run_at_once(url, 2)
        assert [(code, _created(out)) for code, out in again] == [(0, 0)] * 2
        with database(app).open(WRITE) as session:
            assert session.scalar(select(func.count()).select_from(MachineHold)) == total
        database(app).engine.dispose()


def _forbid_cursor_moving_back(url: str) -> None:
    """A trigger that fails any update setting a schedule's ``last_fire`` below its stored value."""
    if on_postgresql():
        statements = [
            """CREATE FUNCTION forbid_cursor_moving_back() RETURNS trigger AS $$
            BEGIN
                IF OLD.last_fire IS NOT NULL
                        AND (NEW.last_fire IS NULL OR NEW.last_fire < OLD.last_fire) THEN
                    RAISE EXCEPTION 'cursor of schedule % moved back from % to %',
                        OLD.id, OLD.last_fire, NEW.last_fire;
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql""",
            """CREATE TRIGGER forbid_cursor_moving_back BEFORE UPDATE ON machine_hold_schedules
            FOR EACH ROW EXECUTE FUNCTION forbid_cursor_moving_back()""",
        ]
    else:  # SQLite stores instants as fixed-width UTC text, which compares in time order
        statements = [
            """CREATE TRIGGER forbid_cursor_moving_back BEFORE UPDATE ON machine_hold_schedules
            WHEN OLD.last_fire IS NOT NULL
                AND (NEW.last_fire IS NULL OR NEW.last_fire < OLD.last_fire)
            BEGIN SELECT RAISE(ABORT, 'a schedule cursor moved back'); END""",
        ]
    engine = make_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.mark.slow
def test_overlapping_runs_with_different_nows(tmp_path):
    """Cron runs an hour apart overlap (a slow one still busy when the next starts).

    Half the processes run at NOW, slowly, half at NOW + 1 h, and one at NOW + 2 h. Whichever
    run reaches a schedule first decides where its holds begin (its now - catch-up); from there
    on each schedule has every fire up to the latest run's now + horizon, exactly once, and its
    cursor at the last of them: a run with an earlier now never takes a cursor back.
    """
    half = 4 if on_postgresql() else 2
    nows = [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2)]
    latest = nows[-1]
    runs = [(nows[0], 0.005)] * half + [(nows[1], 0.0)] * half + [(latest, 0.0)]
    with migrated_database(tmp_path) as url:
        stepping = _fill(url, daily=150, hourly=50)
        _forbid_cursor_moving_back(url)
        until = latest + timedelta(days=7)
        # Per schedule, the holds that each run's catch-up window would start it with.
        choices = {
            sid: [_expected(first, step, now - timedelta(days=1), until) for now in nows]
            for sid, (first, step) in stepping.items()
        }

        outcomes = _run_together(url, runs)
        assert [code for code, _ in outcomes] == [0] * len(runs), outcomes

        app = create_app({"DATABASE_URL": url})
        with database(app).open(WRITE) as session:
            got = _holds_by_schedule(session)
            assert sum(_created(out) for _, out in outcomes) == sum(map(len, got.values()))
            assert set(got) == set(stepping)
            for sid, starts in got.items():
                first, step = stepping[sid]
                assert starts in choices[sid], (sid, starts[0], starts[-1])
                # By hand: hourly ones at their minute of every hour, daily ones at one time.
                assert all(s.second == s.microsecond == 0 for s in starts)
                assert {s.minute for s in starts} == {first.minute}
                if step == timedelta(days=1):
                    assert {(s.hour, s.minute) for s in starts} == {(first.hour, first.minute)}
                assert starts[-1] <= until < starts[-1] + step
            assert _last_fires(session) == {sid: starts[-1] for sid, starts in got.items()}

        # All ran to the end: a last run at the latest now has nothing left to do.
        final = _run_together(url, [(latest, 0.0)])
        assert [(code, _created(out)) for code, out in final] == [(0, 0)], final
        assert "schedules=0 " in final[0][1]
        with database(app).open(WRITE) as session:
            assert _holds_by_schedule(session) == got
        database(app).engine.dispose()
