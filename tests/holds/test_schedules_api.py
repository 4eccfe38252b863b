"""Schedule endpoints and previewSchedule (docs/API.md, Endpoints; docs/RECURRENCE.md, Rules)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from pytm4srv.models import MachineHold, MachineHoldSchedule

SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = "/api/machines/holds/schedules/previewSchedule"


def unix(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def schedule_count(session) -> int:
    return session.scalar(select(func.count()).select_from(MachineHoldSchedule))


@pytest.fixture
def body(machine):
    return {
        "machine_id": machine.id,
        "name": "monthly calibration",
        "reason": "calibration",
        "frequency": "M",
        "time_of_day": "07:00",
    }


def test_create_fills_defaults(planner, body, session):
    before = datetime.now(UTC).timestamp()
    r = planner.put(SCHEDULES, json=body)
    assert r.status_code == 201, r.json
    s = r.json
    assert s["interval"] == 1
    assert s["indices"] == []
    assert s["months"] == 4095
    assert s["weekdays"] == 127
    assert s["duration"] is None
    assert s["time_of_day"] == "07:00:00"
    assert s["last_fire"] is None
    assert before - 0.001 <= s["created"] <= datetime.now(UTC).timestamp() + 0.001
    assert s["anchor"] == s["created"]
    assert session.get(MachineHoldSchedule, s["id"]).name == "monthly calibration"


def test_create_keeps_every_field_given(admin, body):
    body |= {
        "frequency": "W",
        "interval": 2,
        "indices": [1, -1],
        "months": 585,
        "weekdays": 21,
        "time_of_day": "23:59:30",
        "duration": 180,
        "anchor": "2027-01-04T00:00:00Z",
    }
    s = admin.put(SCHEDULES, json=body).json
    for name in ("frequency", "interval", "indices", "months", "weekdays", "duration"):
        assert s[name] == body[name]
    assert s["time_of_day"] == "23:59:30"
    assert s["anchor"] == unix(2027, 1, 4)
    assert admin.get(f"{SCHEDULES}{s['id']}").json == s


@pytest.mark.parametrize("field, value", [("months", 0), ("weekdays", 0)])
def test_paused_schedule_is_valid(planner, body, field, value):
    r = planner.put(SCHEDULES, json=body | {field: value})
    assert r.status_code == 201
    assert r.json[field] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"frequency": "X"}, "frequency"),
        ({"frequency": "m"}, "frequency"),
        ({"frequency": None}, "frequency"),
        ({"interval": 0}, "interval"),
        ({"interval": 2**31}, "interval"),
        ({"interval": 1.5}, "interval"),
        ({"interval": "2"}, "interval"),
        ({"indices": [0]}, "indices"),
        ({"indices": [367]}, "indices"),
        ({"indices": [-367]}, "indices"),
        ({"indices": ["1"]}, "indices"),
        ({"indices": 1}, "indices"),
        ({"indices": [1] * 733}, "indices"),
        ({"months": 4096}, "months"),
        ({"months": -1}, "months"),
        ({"months": True}, "months"),
        ({"weekdays": 128}, "weekdays"),
        ({"weekdays": -1}, "weekdays"),
        ({"time_of_day": "24:00"}, "time_of_day"),
        ({"time_of_day": "7:00"}, "time_of_day"),
        ({"time_of_day": "07:00:00.5"}, "time_of_day"),
        ({"time_of_day": "07:60"}, "time_of_day"),
        ({"time_of_day": 700}, "time_of_day"),
        ({"duration": 0}, "duration"),
        ({"duration": 1.5}, "duration"),
        ({"duration": 2**31}, "duration"),
        ({"duration": "60"}, "duration"),
        ({"anchor": "2027-01-04T00:00:00"}, "anchor"),
        ({"anchor": None}, "anchor"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"reason": "r\u0000"}, "reason"),
        ({"machine_id": 424242}, "machine_id"),
        ({"id": 1}, "id"),
        ({"created": 0}, "created"),
        ({"last_fire": 0}, "last_fire"),
        ({"every": "day"}, "every"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(planner, body, session, change, field):
    r = planner.put(SCHEDULES, json=body | change)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]
    assert schedule_count(session) == 0


@pytest.mark.parametrize("field", ["machine_id", "name", "reason", "frequency", "time_of_day"])
def test_create_requires_the_contracts_fields(planner, body, session, field):
    del body[field]
    r = planner.put(SCHEDULES, json=body)
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]
    assert schedule_count(session) == 0


def test_list_is_an_object_keyed_by_id_strings(staff, planner, body):
    a = planner.put(SCHEDULES, json=body).json
    b = planner.put(SCHEDULES, json=body | {"name": "second"}).json
    r = staff.get(SCHEDULES)
    assert r.status_code == 200
    assert r.json == {str(a["id"]): a, str(b["id"]): b}


def test_list_of_no_schedules_is_an_empty_object(staff):
    assert staff.get(SCHEDULES).json == {}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "abc"),
        ("machine={m0}", "ab"),
        ("machine={m1}", "c"),
        ("machine={m0}&machine={m1}", "abc"),
        ("machine={m2}", ""),  # a machine without schedules
        ("machine=999999", ""),
    ],
)
def test_list_by_machine(staff, make_machine, make_schedule, query, expected):
    machines = [make_machine(name) for name in ("mill", "lathe", "press")]
    made = {
        "a": make_schedule(machines[0], name="a"),
        "b": make_schedule(machines[0], name="b"),
        "c": make_schedule(machines[1], name="c"),
    }
    r = staff.get(f"{SCHEDULES}?{query.format(**{f'm{i}': m.id for i, m in enumerate(machines)})}")
    assert r.status_code == 200, r.json
    assert list(r.json) == [str(made[name].id) for name in expected]
    assert all(r.json[str(made[name].id)]["name"] == name for name in expected)


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("machine=x", "machine"),
        ("machine=-1", "machine"),
        ("machine=2147483648", "machine"),
        ("&".join(["machine=1"] * 101), "machine"),
        ("machines=1", "machines"),
    ],
)
def test_list_rejects_malformed_machine_filters(staff, query, param):
    r = staff.get(f"{SCHEDULES}?{query}")
    assert r.status_code == 422, r.json
    assert param in r.json["errors"]["query"]


def test_patch_changes_only_the_fields_sent(planner, body):
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"indices": [-1], "weekdays": 31})
    assert r.status_code == 200
    # The summary and the next fire follow the new pattern.
    assert r.json == s | {
        "indices": [-1],
        "weekdays": 31,
        "summary": "Every month on the last weekday (Mon–Fri) at 07:00 (UTC), indefinitely",
        "next_fire": r.json["next_fire"],
        "rrule": r.json["rrule"],
    }
    assert "BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1" in r.json["rrule"]
    first = datetime.fromtimestamp(r.json["next_fire"], UTC)
    assert first.time() == time(7) and first.weekday() < 5  # 07:00 on a weekday,
    next_weekday = first + timedelta(days=1 if first.weekday() < 4 else 3)
    assert next_weekday.month != first.month  # the last of its month


@pytest.mark.parametrize(
    "change", [{"months": 5000}, {"last_fire": 5}, {"created": 5}, {"frequency": "Q"}]
)
def test_patch_rejects_bad_input_and_writes_nothing(planner, body, change):
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json=change)
    assert r.status_code == 422
    assert planner.get(f"{SCHEDULES}{s['id']}").json == s


def test_delete_keeps_the_holds_it_created_that_started_and_deletes_the_coming_ones(
    planner, body, session
):
    s = planner.put(SCHEDULES, json=body).json
    now = datetime.now(UTC)
    made = [
        MachineHold(
            machine_id=body["machine_id"],
            schedule_id=s["id"],
            reason="calibration",
            start=start,
            fire=start,
        )
        for start in (now - timedelta(days=1), now + timedelta(days=1))
    ]
    session.add_all(made)
    session.commit()
    past, coming = (hold.id for hold in made)
    assert planner.delete(f"{SCHEDULES}{s['id']}").status_code == 204
    assert planner.get(f"{SCHEDULES}{s['id']}").status_code == 404
    session.expire_all()
    kept = session.get(MachineHold, past)
    assert (kept.reason, kept.schedule_id) == ("calibration", None)
    assert session.get(MachineHold, coming) is None
    history = planner.get(f"/api/machines/holds/{coming}/history").json
    assert [entry["action"] for entry in history] == ["deleted"]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_unknown_schedule_is_404(admin, method):
    kwargs = {"json": {"name": "n"}} if method == "patch" else {}
    assert getattr(admin, method)(f"{SCHEDULES}987654", **kwargs).status_code == 404
    assert getattr(admin, method)(f"{SCHEDULES}98765432109876", **kwargs).status_code == 404


# --- previewSchedule ---------------------------------------------------------------------------

JAN_2027 = unix(2027, 1, 1)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # The examples of docs/RECURRENCE.md, Rules: UTC, 08:00.
        ({"frequency": "M", "indices": [1, 14]}, [(2027, 1, 1), (2027, 1, 14), (2027, 2, 1)]),
        ({"frequency": "M", "indices": [-2]}, [(2027, 1, 30), (2027, 2, 27), (2027, 3, 30)]),
        (
            {"frequency": "M", "weekdays": 31, "indices": [-1]},
            [(2027, 1, 29), (2027, 2, 26), (2027, 3, 31)],
        ),
        (
            {"frequency": "W", "weekdays": 21, "interval": 2, "anchor": unix(2027, 1, 4)},
            [(2027, 1, 4), (2027, 1, 6), (2027, 1, 8), (2027, 1, 18), (2027, 1, 20)],
        ),
        ({"frequency": "Y", "months": 1, "indices": [1]}, [(2027, 1, 1), (2028, 1, 1)]),
    ],
)
def test_preview_follows_the_contract_examples(staff, pattern, expected):
    pattern = {"time_of_day": "08:00"} | pattern
    r = staff.post(f"{PREVIEW}?count={len(expected)}&start={JAN_2027 + 1}", json=pattern)
    assert r.status_code == 200, r.json
    assert r.json == [unix(*day, 8) for day in expected]


def test_preview_start_is_strict(staff):
    r = staff.post(
        f"{PREVIEW}?count=2&start={unix(2027, 1, 1, 8)}",
        json={"frequency": "D", "time_of_day": "08:00"},
    )
    assert r.json == [unix(2027, 1, 2, 8), unix(2027, 1, 3, 8)]


def test_preview_defaults_to_one_instant_after_now(staff):
    now = datetime.now(UTC).timestamp()
    r = staff.post(PREVIEW, json={"frequency": "H", "time_of_day": "00:00"})
    assert len(r.json) == 1
    assert now < r.json[0] <= now + 3600


def test_preview_in_the_configured_zone_across_dst(make_caller, app):
    app.config["ZONE"] = __import__("zoneinfo").ZoneInfo("America/Chicago")
    staff = make_caller("staff")
    # 02:30 daily: on 2027-03-14 (spring forward) 02:30 does not exist and becomes 03:30 CDT.
    r = staff.post(
        f"{PREVIEW}?count=3&start={unix(2027, 3, 13)}",
        json={"frequency": "D", "time_of_day": "02:30"},
    )
    assert r.json == [unix(2027, 3, 13, 8, 30), unix(2027, 3, 14, 8, 30), unix(2027, 3, 15, 7, 30)]


def test_preview_never_firing_schedule_is_empty(staff):
    r = staff.post(
        f"{PREVIEW}?count=1000", json={"frequency": "D", "time_of_day": "08:00", "months": 0}
    )
    assert r.status_code == 200
    assert r.json == []


def test_preview_with_id_uses_stored_fields_cursor_and_anchor(planner, body, session):
    body |= {"frequency": "W", "weekdays": 1, "interval": 2, "anchor": unix(2027, 1, 4)}
    s = planner.put(SCHEDULES, json=body).json
    stored = session.get(MachineHoldSchedule, s["id"])
    stored.last_fire = datetime(2027, 1, 4, 7, tzinfo=UTC)
    session.commit()
    r = planner.post(f"{PREVIEW}?count=2", json={"id": s["id"]})
    assert r.json == [unix(2027, 1, 18, 7), unix(2027, 2, 1, 7)]
    # Fields sent override the stored ones; the stored anchor still fixes the phase.
    r = planner.post(f"{PREVIEW}?count=2", json={"id": s["id"], "time_of_day": "09:00"})
    assert r.json == [unix(2027, 1, 4, 9), unix(2027, 1, 18, 9)]
    # An anchor in the body wins over the stored one.
    r = planner.post(f"{PREVIEW}?count=1", json={"id": s["id"], "anchor": unix(2027, 1, 11)})
    assert r.json == [unix(2027, 1, 11, 7)]


def test_preview_without_id_anchors_at_the_start(staff):
    start = unix(2027, 1, 12)  # a Tuesday: its week is period 0
    r = staff.post(
        f"{PREVIEW}?count=3&start={start}",
        json={"frequency": "W", "interval": 2, "weekdays": 1, "time_of_day": "08:00"},
    )
    assert r.json == [unix(2027, 1, 25, 8), unix(2027, 2, 8, 8), unix(2027, 2, 22, 8)]


@pytest.mark.parametrize(
    ("query", "payload", "field", "where"),
    [
        ("count=0", {}, "count", "query"),
        ("count=1001", {}, "count", "query"),
        ("count=two", {}, "count", "query"),
        ("count=1&count=2", {}, "count", "query"),
        ("start=never", {}, "start", "query"),
        ("bogus=1", {}, "bogus", "query"),
        ("", {"frequency": None}, "frequency", "json"),
        ("", {"months": 4096}, "months", "json"),
        ("", {"id": "1"}, "id", "json"),
        ("", {"created": 1}, "created", "json"),
        ("", {"color": 1}, "color", "json"),
    ],
)
def test_preview_rejects_bad_input(staff, query, payload, field, where):
    payload = {"frequency": "D", "time_of_day": "08:00"} | payload
    r = staff.post(f"{PREVIEW}?{query}", json=payload)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"][where]


@pytest.mark.parametrize("missing", ["frequency", "time_of_day"])
def test_preview_without_id_requires_frequency_and_time(staff, missing):
    payload = {"frequency": "D", "time_of_day": "08:00"}
    del payload[missing]
    r = staff.post(PREVIEW, json=payload)
    assert r.status_code == 422
    assert missing in r.json["errors"]["json"]


def test_preview_of_unknown_id_is_404(staff):
    assert staff.post(PREVIEW, json={"id": 424242}).status_code == 404


def test_preview_writes_nothing(planner, body, session):
    s = planner.put(SCHEDULES, json=body).json
    planner.post(f"{PREVIEW}?count=5", json={"id": s["id"]})
    assert planner.get(f"{SCHEDULES}{s['id']}").json == s
    assert session.scalar(select(func.count()).select_from(MachineHold)) == 0


@pytest.mark.parametrize(
    ("field", "sent", "words"),
    [
        ("weekdays", ["Monday", "Thursday"], "Monday = 1"),
        ("weekdays", "Monday", "Monday and Thursday = 9"),
        ("months", "March", "March and June = 36"),
        ("months", ["March"], "December = 2048"),
    ],
)
def test_a_bitfield_in_another_form_says_how_the_bits_count(
    planner, body, session, field, sent, words
):
    answer = planner.put(SCHEDULES, json=body | {field: sent})
    assert answer.status_code == 422
    (message,) = answer.json["errors"]["json"][field]
    assert words in message
    assert session.scalar(select(func.count()).select_from(MachineHoldSchedule)) == 0


def test_an_empty_timezone_is_invalid_and_the_document_says_so(planner, body, client):
    answer = planner.put(SCHEDULES, json=body | {"timezone": ""})
    assert answer.status_code == 422 and list(answer.json["errors"]["json"]) == ["timezone"]
    document = client.get("/api/openapi.json").json
    assert document["components"]["schemas"]["Schedule"]["properties"]["timezone"]["minLength"] == 1
