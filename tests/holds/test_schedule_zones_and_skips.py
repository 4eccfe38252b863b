"""A schedule's own zone, skipped fires, next fire, summary and the detailed preview
(docs/API.md, Schedule fields and Preview).

Expected instants are written out by hand, never taken from the recurrence engine.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import marshmallow as ma
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text

from pytm4srv.holds.schedules import DetailedPreview
from pytm4srv.holds.schemas import PreviewFireSchema, dump_preview_fires
from pytm4srv.models import MachineHold, MachineHoldSchedule
from pytm4srv.recurrence import Fire

SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = "/api/machines/holds/schedules/previewSchedule"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def unix(*args: int) -> int:
    return int(at(*args).timestamp())


def set_zone(app, name: str) -> None:
    app.config.update(TIMEZONE=name, ZONE=ZoneInfo(name))


@pytest.fixture
def body(machine):
    return {
        "machine_id": machine.id,
        "name": "daily check",
        "reason": "check",
        "frequency": "D",
        "time_of_day": "08:00",
        "anchor": unix(2027, 1, 4),
    }


def schedule_count(session) -> int:
    return session.scalar(select(func.count()).select_from(MachineHoldSchedule))


# -- timezone --------------------------------------------------------------------------------------


def test_timezone_defaults_to_null_and_is_kept_when_given(planner, body):
    assert planner.put(SCHEDULES, json=body).json["timezone"] is None
    s = planner.put(SCHEDULES, json=body | {"timezone": "Asia/Kolkata"}).json
    assert s["timezone"] == "Asia/Kolkata"
    assert planner.get(f"{SCHEDULES}{s['id']}").json["timezone"] == "Asia/Kolkata"


def test_time_of_day_is_read_in_the_schedules_own_zone(planner, body, app):
    set_zone(app, "America/Chicago")  # the service's zone does not apply to it
    r = planner.put(SCHEDULES, json=body | {"timezone": "Asia/Kolkata"})
    next_fire = datetime.fromtimestamp(r.json["next_fire"], UTC)
    assert next_fire.time() == time(2, 30)  # 08:00 IST
    r = planner.patch(f"{SCHEDULES}{r.json['id']}", json={"timezone": None})
    next_fire = datetime.fromtimestamp(r.json["next_fire"], UTC)
    assert next_fire.time() in (time(13), time(14))  # 08:00 CDT or CST


@pytest.mark.parametrize(
    "zone",
    # "localtime": the host's own zone file, which another host reads as another zone.
    [
        *("Mars/Olympus_Mons", "utc", "", "Europe/Berlin ", "../Europe/Berlin", "x" * 101, 5),
        "localtime",
    ],
)
def test_unknown_timezone_is_invalid_input_naming_it(planner, body, session, zone):
    r = planner.put(SCHEDULES, json=body | {"timezone": zone})
    assert r.status_code == 422, r.json
    assert "timezone" in r.json["errors"]["json"]
    assert schedule_count(session) == 0
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"timezone": zone})
    assert r.status_code == 422
    assert "timezone" in r.json["errors"]["json"]
    assert planner.get(f"{SCHEDULES}{s['id']}").json == s
    r = planner.post(PREVIEW, json={"frequency": "D", "time_of_day": "08:00", "timezone": zone})
    assert r.status_code == 422
    assert "timezone" in r.json["errors"]["json"]


# -- skip ------------------------------------------------------------------------------------------


def test_skip_is_answered_ascending_each_once(planner, body):
    sent = [unix(2027, 1, 9, 8), unix(2027, 1, 5, 8), "2027-01-05T09:00:00+01:00", 1799000000.5]
    s = planner.put(SCHEDULES, json=body | {"skip": sent}).json
    assert s["skip"] == [1799000000.5, unix(2027, 1, 5, 8), unix(2027, 1, 9, 8)]
    assert planner.get(f"{SCHEDULES}{s['id']}").json["skip"] == s["skip"]
    assert planner.put(SCHEDULES, json=body).json["skip"] == []


def test_skip_holds_up_to_1000_instants(planner, body, session):
    instants = [unix(2027, 1, 5, 8) + 86400 * i for i in range(1001)]
    r = planner.put(SCHEDULES, json=body | {"skip": instants[:1000]})
    assert r.status_code == 201
    assert r.json["skip"] == instants[:1000]
    r = planner.put(SCHEDULES, json=body | {"skip": instants})
    assert r.status_code == 422
    assert "skip" in r.json["errors"]["json"]
    assert schedule_count(session) == 1


@pytest.mark.parametrize(
    "skip",
    [None, 1800000000, "2027-01-05T08:00:00Z", ["2027-01-05T08:00:00"], ["soon"], [True], [[1]]],
)
def test_skip_rejects_what_is_not_a_list_of_instants(planner, body, session, skip):
    r = planner.put(SCHEDULES, json=body | {"skip": skip})
    assert r.status_code == 422, r.json
    assert "skip" in r.json["errors"]["json"]
    assert schedule_count(session) == 0


# -- read-only fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("next_fire", 1800000000), ("summary", "Never")])
def test_next_fire_and_summary_cannot_be_sent(planner, body, session, field, value):
    r = planner.put(SCHEDULES, json=body | {field: value})
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]
    assert schedule_count(session) == 0
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={field: value})
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]
    r = planner.post(PREVIEW, json={"id": s["id"], field: value})
    assert r.status_code == 422


# -- summary ---------------------------------------------------------------------------------------


def test_every_schedule_answer_carries_its_summary(planner, staff, body, app):
    monthly = body | {"frequency": "M", "weekdays": 31, "indices": [-1], "duration": 180}
    created = planner.put(SCHEDULES, json=monthly | {"timezone": "Europe/Berlin"}).json
    sentence = "Every month on the last weekday (Mon–Fri) at 08:00 (Europe/Berlin), for 3 hours"
    assert created["summary"] == sentence
    path = f"{SCHEDULES}{created['id']}"
    assert staff.get(path).json["summary"] == sentence
    assert staff.get(SCHEDULES).json[str(created["id"])]["summary"] == sentence
    changed = planner.patch(path, json={"timezone": None, "time_of_day": "07:00"}).json
    assert changed["summary"] == (
        "Every month on the last weekday (Mon–Fri) at 07:00 (UTC), for 3 hours"
    )
    # Without a zone of its own, the sentence names the service's zone.
    set_zone(app, "America/Chicago")
    assert staff.get(path).json["summary"].endswith("at 07:00 (America/Chicago), for 3 hours")
    paused = planner.patch(path, json={"months": 0}).json
    assert paused["summary"].startswith("Never fires: every month")


# -- next_fire -------------------------------------------------------------------------------------


def test_next_fire_is_the_first_fire_after_the_cursor_that_is_not_skipped(
    planner, make_schedule, staff, session
):
    schedule = make_schedule()  # daily 08:00 UTC, created 2027-01-04 00:00
    path = f"{SCHEDULES}{schedule.id}"
    assert staff.get(path).json["next_fire"] == unix(2027, 1, 4, 8)
    r = planner.patch(path, json={"skip": [unix(2027, 1, 4, 8), unix(2027, 1, 5, 8)]})
    assert r.json["next_fire"] == unix(2027, 1, 6, 8)
    r = planner.patch(path, json={"skip": [unix(2027, 1, 4, 9)]})  # no fire: no effect
    assert r.json["next_fire"] == unix(2027, 1, 4, 8)
    # The first instant of a preview with id and no start.
    assert staff.post(PREVIEW, json={"id": schedule.id}).json == [unix(2027, 1, 4, 8)]


def test_next_fire_moves_with_the_materializers_runs(runner, make_schedule, staff, planner):
    schedule = make_schedule(skip=(at(2027, 1, 6, 8),))
    path = f"{SCHEDULES}{schedule.id}"
    assert staff.get(path).json["next_fire"] == unix(2027, 1, 4, 8)

    def run(now: datetime, horizon_minutes: int) -> None:
        args = ["holds", "materialize", "--now", str(int(now.timestamp()))]
        result = runner.invoke(args=[*args, "--horizon", str(horizon_minutes)])
        assert result.exit_code == 0, result.output

    run(at(2027, 1, 4), 24 * 60)  # takes Jan 4 08:00
    answer = staff.get(path).json
    assert (answer["last_fire"], answer["next_fire"]) == (unix(2027, 1, 4, 8), unix(2027, 1, 5, 8))
    run(at(2027, 1, 5), 24 * 60)  # takes Jan 5; Jan 6 is skipped, so next is Jan 7
    answer = staff.get(path).json
    assert (answer["last_fire"], answer["next_fire"]) == (unix(2027, 1, 5, 8), unix(2027, 1, 7, 8))
    assert staff.post(PREVIEW, json={"id": schedule.id}).json == [unix(2027, 1, 7, 8)]


def test_next_fire_follows_a_new_service_zone_before_any_run(make_schedule, staff, app):
    own = make_schedule(timezone="Asia/Kolkata")
    default = make_schedule()
    set_zone(app, "Asia/Tokyo")
    answers = staff.get(SCHEDULES).json
    assert answers[str(own.id)]["next_fire"] == unix(2027, 1, 4, 2, 30)  # as stored
    assert answers[str(default.id)]["next_fire"] == unix(2027, 1, 4, 23)  # 08:00 JST, computed
    assert staff.get(f"{SCHEDULES}{default.id}").json["next_fire"] == unix(2027, 1, 4, 23)


# -- preview ---------------------------------------------------------------------------------------


def test_preview_reads_the_bodys_timezone(staff):
    r = staff.post(
        f"{PREVIEW}?count=2&start={unix(2027, 1, 4)}",
        json={"frequency": "D", "time_of_day": "08:00", "timezone": "Asia/Kolkata"},
    )
    assert r.json == [unix(2027, 1, 4, 2, 30), unix(2027, 1, 5, 2, 30)]


def test_preview_with_id_uses_the_stored_zone_unless_the_body_gives_one(make_schedule, staff):
    schedule = make_schedule(timezone="Asia/Kolkata")
    start = f"{PREVIEW}?start={unix(2027, 1, 4)}"
    assert staff.post(start, json={"id": schedule.id}).json == [unix(2027, 1, 4, 2, 30)]
    r = staff.post(start, json={"id": schedule.id, "timezone": "America/Chicago"})
    assert r.json == [unix(2027, 1, 4, 14)]
    r = staff.post(start, json={"id": schedule.id, "timezone": None})  # the service's: UTC
    assert r.json == [unix(2027, 1, 4, 8)]


def test_preview_leaves_skipped_fires_out_and_still_answers_count(make_schedule, staff):
    skip = (at(2027, 1, 5, 8), at(2027, 1, 6, 8), at(2027, 1, 6, 9))
    schedule = make_schedule(skip=skip)
    r = staff.post(f"{PREVIEW}?count=3", json={"id": schedule.id})
    assert r.json == [unix(2027, 1, 4, 8), unix(2027, 1, 7, 8), unix(2027, 1, 8, 8)]
    # A skip in the body replaces the stored one.
    r = staff.post(f"{PREVIEW}?count=3", json={"id": schedule.id, "skip": [unix(2027, 1, 4, 8)]})
    assert r.json == [unix(2027, 1, 5, 8), unix(2027, 1, 6, 8), unix(2027, 1, 7, 8)]


# -- detail=1 --------------------------------------------------------------------------------------


def test_detailed_preview_across_a_dst_gap(staff):
    r = staff.post(
        f"{PREVIEW}?count=3&detail=1&start={unix(2027, 3, 13)}",
        json={
            "frequency": "D",
            "time_of_day": "02:30",
            "timezone": "America/Chicago",
            "duration": 60,
        },
    )
    assert r.status_code == 200, r.json
    # 2027-03-14: clocks jump from 02:00 CST to 03:00 CDT; 02:30 does not exist that day.
    assert r.json == [
        {
            "start": unix(2027, 3, 13, 8, 30),
            "end": unix(2027, 3, 13, 9, 30),
            "local": "2027-03-13T02:30:00-06:00",
            "shifted": False,
            "conflicts": [],
        },
        {
            "start": unix(2027, 3, 14, 8, 30),
            "end": unix(2027, 3, 14, 9, 30),
            "local": "2027-03-14T03:30:00-05:00",
            "shifted": True,
            "conflicts": [],
        },
        {
            "start": unix(2027, 3, 15, 7, 30),
            "end": unix(2027, 3, 15, 8, 30),
            "local": "2027-03-15T02:30:00-05:00",
            "shifted": False,
            "conflicts": [],
        },
    ]


def add_hold(session, machine, start: datetime, end: datetime | None) -> int:
    hold = MachineHold(machine_id=machine.id, reason="r", start=start, end=end)
    session.add(hold)
    session.commit()
    return hold.id


@pytest.fixture
def holds(session, machine, make_machine):
    """Holds around the daily 08:00-09:00 fires of 2027-01-04 to 2027-01-06, by name."""
    other = make_machine("press")
    return {
        "across Jan 4 start": add_hold(session, machine, at(2027, 1, 4, 7), at(2027, 1, 4, 8, 1)),
        "ends at Jan 5 start": add_hold(session, machine, at(2027, 1, 5, 7), at(2027, 1, 5, 8)),
        "starts at Jan 5 end": add_hold(session, machine, at(2027, 1, 5, 9), at(2027, 1, 5, 10)),
        "inside Jan 6": add_hold(session, machine, at(2027, 1, 6, 8, 30), at(2027, 1, 6, 8, 40)),
        "open from Jan 6 08:59": add_hold(session, machine, at(2027, 1, 6, 8, 59), None),
        "long, Jan 3 to 7": add_hold(session, machine, at(2027, 1, 3), at(2027, 1, 7)),
        "another machine's": add_hold(session, other, at(2027, 1, 4, 8), at(2027, 1, 4, 9)),
        "after the last fire": add_hold(session, machine, at(2027, 1, 8), at(2027, 1, 9)),
    }


def test_detailed_preview_names_the_holds_each_fire_would_overlap(
    make_schedule, staff, holds, session
):
    schedule = make_schedule(duration=timedelta(minutes=60))
    r = staff.post(f"{PREVIEW}?count=3&detail=1", json={"id": schedule.id})
    assert r.status_code == 200, r.json
    h = holds
    assert [(fire["start"], fire["conflicts"]) for fire in r.json] == [
        (unix(2027, 1, 4, 8), sorted([h["across Jan 4 start"], h["long, Jan 3 to 7"]])),
        (unix(2027, 1, 5, 8), [h["long, Jan 3 to 7"]]),  # half-open: touching is no overlap
        (
            unix(2027, 1, 6, 8),
            sorted([h["inside Jan 6"], h["open from Jan 6 08:59"], h["long, Jan 3 to 7"]]),
        ),
    ]
    # Without a duration a fire lasts indefinitely: every hold from its start on conflicts.
    r = staff.post(f"{PREVIEW}?count=2&detail=1", json={"id": schedule.id, "duration": None})
    assert [fire["end"] for fire in r.json] == [None, None]
    assert r.json[1]["conflicts"] == sorted(
        h[name]
        for name in (
            "starts at Jan 5 end",
            "inside Jan 6",
            "open from Jan 6 08:59",
            "long, Jan 3 to 7",
            "after the last fire",
        )
    )


def test_detailed_preview_machine_comes_from_the_body_or_the_schedule(
    make_schedule, make_machine, staff, session, machine, holds
):
    other = make_machine("mill")
    clash = add_hold(session, other, at(2027, 1, 4, 8), at(2027, 1, 4, 8, 30))
    pattern = {"frequency": "D", "time_of_day": "08:00", "duration": 60}
    query = f"{PREVIEW}?count=1&detail=1&start={unix(2027, 1, 4)}"
    assert staff.post(query, json=pattern).json[0]["conflicts"] == []  # no machine known
    r = staff.post(query, json=pattern | {"machine_id": other.id})
    assert r.json[0]["conflicts"] == [clash]
    schedule = make_schedule(duration=timedelta(minutes=60))
    r = staff.post(query, json={"id": schedule.id, "machine_id": other.id})
    assert r.json[0]["conflicts"] == [clash]


def test_detailed_preview_reads_the_holds_once(connection, make_schedule, staff, holds):
    schedule = make_schedule(duration=timedelta(minutes=60))
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    # Every session of the app runs on the test's connection.
    event.listen(connection, "before_cursor_execute", record)
    try:
        r = staff.post(f"{PREVIEW}?count=1000&detail=1", json={"id": schedule.id})
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert len(r.json) == 1000
    assert sum("machine_holds" in statement for statement in statements) == 1


def test_preview_without_detail_answers_numbers(staff):
    pattern = {"frequency": "D", "time_of_day": "08:00"}
    r = staff.post(f"{PREVIEW}?detail=0&start={unix(2027, 1, 4)}", json=pattern)
    assert r.json == [unix(2027, 1, 4, 8)]


@pytest.mark.parametrize("value", ["2", "yes", "", "-1"])
def test_preview_detail_takes_0_or_1(staff, value):
    r = staff.post(f"{PREVIEW}?detail={value}", json={"frequency": "D", "time_of_day": "08:00"})
    assert r.status_code == 422
    assert "detail" in r.json["errors"]["query"]


def test_detailed_preview_of_a_never_firing_schedule_is_empty(staff, machine):
    body = {"frequency": "D", "time_of_day": "08:00", "months": 0, "machine_id": machine.id}
    assert staff.post(f"{PREVIEW}?count=1000&detail=1", json=body).json == []


# -- stored rows the API would not write -----------------------------------------------------------


@pytest.mark.parametrize(
    "column, value",
    [("skip", '"soon"'), ("skip", "[1800000000]"), ("skip", '["2027-01-05T08:00:00"]')],
)
def test_an_unreadable_stored_skip_answers_without_failing(
    make_schedule, planner, staff, session, column, value
):
    schedule = make_schedule()
    session.execute(
        text(f"UPDATE machine_hold_schedules SET {column} = :value WHERE id = :id"),
        {"value": value, "id": schedule.id},
    )
    session.commit()
    path = f"{SCHEDULES}{schedule.id}"
    r = staff.get(path)
    assert r.status_code == 200
    assert (r.json["skip"], r.json["summary"]) == (None, None)
    assert staff.get(SCHEDULES).json[str(schedule.id)] == r.json
    r = staff.post(PREVIEW, json={"id": schedule.id})
    assert r.status_code == 422
    assert "id" in r.json["errors"]["json"]
    assert staff.post(PREVIEW, json={"id": schedule.id, "skip": []}).status_code == 200
    r = planner.patch(path, json={"name": "renamed"})  # leaves the bad skip: refused, naming it
    assert r.status_code == 422
    assert list(r.json["errors"]["json"]) == ["skip"]
    assert staff.get(path).json["name"] == "nightly"
    fixed = planner.patch(path, json={"skip": []}).json
    assert fixed["next_fire"] == unix(2027, 1, 4, 8)
    assert fixed["summary"] == "Every day at 08:00 (UTC), indefinitely"


def test_a_zone_unknown_to_this_host_answers_without_failing(make_schedule, staff, session):
    schedule = make_schedule(timezone="Mars/Olympus_Mons")  # stored outside the API
    r = staff.get(f"{SCHEDULES}{schedule.id}")
    assert r.status_code == 200
    assert r.json["timezone"] == "Mars/Olympus_Mons"
    assert r.json["summary"] == "Every day at 08:00 (Mars/Olympus_Mons), indefinitely"
    assert r.json["next_fire"] is None
    r = staff.post(PREVIEW, json={"id": schedule.id})
    assert r.status_code == 422
    assert "Mars/Olympus_Mons" in r.json["errors"]["json"]["id"][0]


# -- the detailed answer as its schema states it ---------------------------------------------------

preview_fires = st.tuples(
    st.datetimes(
        min_value=datetime(1, 1, 3), max_value=datetime(9990, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(
        [UTC, ZoneInfo("America/Chicago"), ZoneInfo("Pacific/Apia"), timezone(timedelta(hours=5))]
    ),
    st.none() | st.integers(1, 10**6),
    st.booleans(),
    st.lists(st.integers(1, 2**31 - 1), max_size=3).map(sorted),
)


@given(rows=st.lists(preview_fires, max_size=5))
def test_the_detailed_answer_is_its_schemas_dump(rows):
    """dump_preview_fires writes out what PreviewFireSchema would answer, only sooner."""
    fires = [Fire(start, start.astimezone(zone), shifted) for start, zone, _, shifted, _ in rows]
    ends = [None if m is None else start + timedelta(minutes=m) for start, _, m, _, _ in rows]
    preview = DetailedPreview(fires, ends, [conflicts for *_, conflicts in rows])
    plain = [
        {"start": f.instant, "end": end, "local": f.local, "shifted": f.shifted, "conflicts": c}
        for f, end, c in zip(*preview, strict=True)
    ]
    schema = PreviewFireSchema(many=True)
    assert dump_preview_fires(preview) == ma.Schema._serialize(schema, plain, many=True)
    assert list(PreviewFireSchema().dump_fields) == [
        "start",
        "end",
        "local",
        "shifted",
        "conflicts",
    ]
