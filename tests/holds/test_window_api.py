"""``GET /api/machines/?at=T`` (held, until, paging) and ``GET /api/machines/holds/window``:
what the board and the down-now list show, one request each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytm4srv.holds.models import MachineHold

T = datetime(2027, 2, 1, 12, tzinfo=UTC)


def add_hold(session, machine, start, end, reason="r", **more):
    hold = MachineHold(machine_id=machine.id, reason=reason, notes="", start=start, end=end, **more)
    session.add(hold)
    session.commit()
    return hold


def test_machines_at_an_instant_say_held_and_until(staff, make_machine, session):
    lathe, mill, press, saw = (make_machine(name) for name in ("lathe", "mill", "press", "saw"))
    add_hold(session, lathe, T - timedelta(hours=1), T + timedelta(hours=1))
    add_hold(session, lathe, T - timedelta(hours=1), T + timedelta(hours=3))
    add_hold(session, mill, T - timedelta(hours=1), None)
    add_hold(session, mill, T, T + timedelta(hours=5))
    add_hold(session, press, T + timedelta(seconds=1), None)  # later
    add_hold(session, saw, T - timedelta(hours=2), T)  # over at T (half-open)
    answer = staff.get(f"/api/machines/?at={int(T.timestamp())}")
    assert answer.status_code == 200
    by_name = {machine["name"]: machine for machine in answer.json}
    assert by_name["lathe"] == {
        "id": lathe.id,
        "name": "lathe",
        "held": True,
        "until": (T + timedelta(hours=3)).timestamp(),
    }
    assert (by_name["mill"]["held"], by_name["mill"]["until"]) == (True, None)
    assert (by_name["press"]["held"], by_name["press"]["until"]) == (False, None)
    assert by_name["saw"]["held"] is False
    assert "held" not in staff.get("/api/machines/").json[0]


def test_machine_list_pages_by_id(staff, make_machine):
    machines = [make_machine(f"m{i}") for i in range(5)]
    first = staff.get("/api/machines/?limit=2&at=0")
    assert [m["id"] for m in first.json] == [m.id for m in machines[:2]]
    assert first.headers["Link"] == '</api/machines/?limit=2&at=0&offset=2>; rel="next"'
    last = staff.get("/api/machines/?limit=2&offset=4")
    assert [m["id"] for m in last.json] == [machines[4].id] and "Link" not in last.headers
    assert staff.get("/api/machines/?limt=2").status_code == 422


def test_the_window_answers_holds_planned_fires_and_held(
    staff, make_machine, make_schedule, session
):
    lathe, mill = make_machine("lathe"), make_machine("mill")
    since, until = datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 1, 11, tzinfo=UTC)
    inside = add_hold(session, lathe, since + timedelta(days=1), since + timedelta(days=2))
    add_hold(session, lathe, until, None)  # starts as the window ends: not in it
    schedule = make_schedule(machine=mill, created=since, duration=timedelta(minutes=30))
    made = add_hold(
        session,
        mill,
        datetime(2027, 1, 5, 8, tzinfo=UTC),
        None,
        schedule_id=schedule.id,
        fire=datetime(2027, 1, 5, 8, tzinfo=UTC),
    )
    query = f"from={int(since.timestamp())}&until={int(until.timestamp())}"
    at = int((since + timedelta(days=1, hours=1)).timestamp())
    answer = staff.get(f"/api/machines/holds/window?{query}&at={at}")
    assert answer.status_code == 200
    body = answer.json
    assert [hold["id"] for hold in body["holds"]] == [inside.id, made.id]
    starts = [fire["start"] for fire in body["planned"]]
    # The daily 08:00 fires of the week, less the one made into a hold.
    expected = [datetime(2027, 1, day, 8, tzinfo=UTC).timestamp() for day in (4, 6, 7, 8, 9, 10)]
    assert starts == expected
    assert body["planned"][0] == {
        "schedule_id": schedule.id,
        "machine_id": mill.id,
        "name": "nightly",
        "reason": "maintenance",
        "start": expected[0],
        "end": expected[0] + 1800,
    }
    assert body["held"] == [{"machine_id": lathe.id, "until": inside.end.timestamp()}]
    only_lathe = staff.get(f"/api/machines/holds/window?{query}&machine={lathe.id}").json
    assert only_lathe["planned"] == [] and len(only_lathe["holds"]) == 1


def test_the_window_must_be_forward_and_at_most_120_days(staff):
    answer = staff.get("/api/machines/holds/window?from=100&until=100")
    assert answer.status_code == 422 and "until" in answer.json["errors"]["query"]
    answer = staff.get(f"/api/machines/holds/window?from=0&until={121 * 86400}")
    assert answer.status_code == 422
    assert staff.get("/api/machines/holds/window?until=100").status_code == 422  # before now
    assert staff.get("/api/machines/holds/window").status_code == 200  # the coming 7 days
