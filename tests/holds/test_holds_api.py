"""The hold endpoints: creation, reading, changing, deleting, and the list's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pytm4srv.holds.views import filtered_holds
from pytm4srv.models import MachineHold

HOLDS = "/api/machines/holds/"
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def hold_count(session) -> int:
    return session.scalar(select(func.count()).select_from(MachineHold))


# --- creation ----------------------------------------------------------------------------------


def test_create_fills_defaults_and_caller(staff, machine, session):
    before = datetime.now(UTC)
    r = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "calibration"})
    after = datetime.now(UTC)
    assert r.status_code == 201, r.json
    body = r.json
    assert body["user_id"] == staff.user.id
    assert body["schedule_id"] is None
    assert body["end"] is None
    assert body["notes"] == ""
    assert before.timestamp() - 0.001 <= body["start"] <= after.timestamp() + 0.001
    stored = session.get(MachineHold, body["id"])
    assert stored.reason == "calibration"
    assert stored.start.tzinfo is not None


def test_create_with_iso_timestamps_answers_unix_seconds(staff, machine):
    r = staff.put(
        HOLDS,
        json={
            "machine_id": machine.id,
            "reason": "r",
            "start": "2027-01-15T09:00:00+01:00",
            "end": "2027-01-15T10:30:00.5Z",
        },
    )
    assert r.status_code == 201, r.json
    assert r.json["start"] == T0
    assert isinstance(r.json["start"], int)
    assert r.json["end"] == T0 + 9000.5


def test_get_answers_the_stored_hold(staff, machine):
    created = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r", "start": T0}).json
    r = staff.get(f"{HOLDS}{created['id']}")
    assert r.status_code == 200
    assert r.json == created


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"reason": "r"}, "machine_id"),
        ({"machine_id": "MACHINE"}, "reason"),
        ({"machine_id": 999_999, "reason": "r"}, "machine_id"),
        ({"machine_id": "1", "reason": "r"}, "machine_id"),
        ({"machine_id": 1.5, "reason": "r"}, "machine_id"),
        ({"machine_id": True, "reason": "r"}, "machine_id"),
        ({"machine_id": 2**31, "reason": "r"}, "machine_id"),
        ({"machine_id": -1, "reason": "r"}, "machine_id"),
        ({"machine_id": "MACHINE", "reason": ""}, "reason"),
        ({"machine_id": "MACHINE", "reason": 5}, "reason"),
        ({"machine_id": "MACHINE", "reason": "x" * 501}, "reason"),
        ({"machine_id": "MACHINE", "reason": "a\u0000b"}, "reason"),
        ({"machine_id": "MACHINE", "reason": "r", "notes": "x" * 10_001}, "notes"),
        ({"machine_id": "MACHINE", "reason": "r", "notes": None}, "notes"),
        ({"machine_id": "MACHINE", "reason": "r", "start": "2027-01-15T08:00:00"}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": "yesterday"}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": True}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": None}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": 1e300}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": -62_200_000_000}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": "10000-01-01T00:00:00Z"}, "start"),
        ({"machine_id": "MACHINE", "reason": "r", "start": T0, "end": T0}, "end"),
        ({"machine_id": "MACHINE", "reason": "r", "start": T0, "end": T0 - 60}, "end"),
        ({"machine_id": "MACHINE", "reason": "r", "end": 1000}, "end"),
        ({"machine_id": "MACHINE", "reason": "r", "id": 7}, "id"),
        ({"machine_id": "MACHINE", "reason": "r", "user_id": 7}, "user_id"),
        ({"machine_id": "MACHINE", "reason": "r", "schedule_id": 7}, "schedule_id"),
        ({"machine_id": "MACHINE", "reason": "r", "colour": "red"}, "colour"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(staff, machine, session, payload, field):
    payload = {k: machine.id if v == "MACHINE" else v for k, v in payload.items()}
    r = staff.put(HOLDS, json=payload)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]
    assert hold_count(session) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_create_rejects_non_finite_timestamps(staff, machine, session, literal):
    body = f'{{"machine_id": {machine.id}, "reason": "r", "start": {literal}}}'
    r = staff.put(HOLDS, data=body, content_type="application/json")
    assert r.status_code == 422
    assert "start" in r.json["errors"]["json"]
    assert hold_count(session) == 0


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("machine_id=1&reason=r", "application/x-www-form-urlencoded"),
        ('{"machine_id": 1, "reason": "r"}', "text/plain"),
        ("{not json", "application/json"),
        ("", "application/json"),
    ],
)
def test_create_rejects_a_body_that_is_not_json_with_400(staff, session, data, content_type):
    r = staff.put(HOLDS, data=data, content_type=content_type)
    assert r.status_code == 400
    assert r.json["code"] == 400
    assert hold_count(session) == 0


@pytest.mark.parametrize("body", ["[]", "null", "42", '"text"'])
def test_create_rejects_json_that_is_not_an_object(staff, session, body):
    r = staff.put(HOLDS, data=body, content_type="application/json")
    assert r.status_code == 422
    assert hold_count(session) == 0


# --- change and delete --------------------------------------------------------------------------


@pytest.fixture
def hold(staff, machine):
    return staff.put(
        HOLDS, json={"machine_id": machine.id, "reason": "r", "start": T0, "end": T0 + 3600}
    ).json


def test_patch_changes_only_the_fields_sent(staff, hold):
    r = staff.patch(f"{HOLDS}{hold['id']}", json={"notes": "spindle replaced"})
    assert r.status_code == 200
    assert r.json == {**hold, "notes": "spindle replaced"}


def test_patch_end_null_makes_hold_indefinite(staff, hold):
    r = staff.patch(f"{HOLDS}{hold['id']}", json={"end": None})
    assert r.status_code == 200
    assert r.json["end"] is None


def test_patch_moves_hold_to_another_machine(staff, hold, make_machine):
    other = make_machine("mill")
    r = staff.patch(f"{HOLDS}{hold['id']}", json={"machine_id": other.id})
    assert r.json["machine_id"] == other.id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"end": T0 - 1}, "end"),  # before the stored start
        ({"start": T0 + 3600}, "end"),  # the stored end would no longer be later
        ({"id": 5}, "id"),
        ({"user_id": None}, "user_id"),
        ({"schedule_id": 1}, "schedule_id"),
        ({"machine_id": 999_999}, "machine_id"),
        ({"reason": ""}, "reason"),
        ({"start": None}, "start"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_patch_rejects_bad_input_and_writes_nothing(staff, hold, payload, field):
    r = staff.patch(f"{HOLDS}{hold['id']}", json=payload)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]
    assert staff.get(f"{HOLDS}{hold['id']}").json == hold


def test_delete_by_planner_removes_the_hold(planner, hold, session):
    r = planner.delete(f"{HOLDS}{hold['id']}")
    assert r.status_code == 204
    assert r.data == b""
    assert planner.get(f"{HOLDS}{hold['id']}").status_code == 404
    assert hold_count(session) == 0


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("hold_id", ["424242", "2147483648", "99999999999999999999", "-1", "x"])
def test_unknown_hold_ids_answer_404(admin, method, hold_id):
    kwargs = {"json": {"notes": "n"}} if method == "patch" else {}
    r = getattr(admin, method)(f"{HOLDS}{hold_id}", **kwargs)
    assert r.status_code == 404
    assert r.json["code"] == 404


def test_deleting_a_user_keeps_their_holds_without_user(staff, hold, session):
    session.delete(session.get(type(staff.user), staff.user.id))
    session.commit()
    stored = session.get(MachineHold, hold["id"])
    session.refresh(stored)
    assert stored.user_id is None


# --- the list and its filters -----------------------------------------------------------------


@pytest.fixture
def catalogue(session, make_machine, make_caller, make_schedule):
    """Holds named by letter, with known machines, users, starts and ends."""
    m1, m2, m3 = make_machine("m1"), make_machine("m2"), make_machine("m3")
    alice, bob = make_caller("staff").user, make_caller("planner").user
    schedule = make_schedule(m1, created=ts(T0))
    rows = {
        # name: (machine, user, schedule, start offset h, end offset h or None)
        "a": (m1, alice, None, 0, 2),
        "b": (m1, bob, None, 1, None),
        "c": (m2, alice, None, 2, 5),
        "d": (m2, None, schedule, 3, 4),
        "e": (m3, None, None, 4, None),  # a hold whose user was deleted
        "f": (m1, bob, None, 5, 6),
        "g": (m3, alice, None, 0, 1),  # same start as a: ordered by id after it
    }
    ids = {}
    for name, (machine, user, sched, start, end) in rows.items():
        hold = MachineHold(
            machine_id=machine.id,
            user_id=user.id if user else None,
            schedule_id=sched.id if sched else None,
            reason=name,
            start=ts(T0 + start * 3600),
            end=ts(T0 + end * 3600) if end is not None else None,
        )
        session.add(hold)
        session.flush()
        ids[name] = hold.id
    session.commit()
    return {"ids": ids, "m": [m1.id, m2.id, m3.id], "u": [alice.id, bob.id]}


FILTERS = [
    ("", "agbcdef"),
    ("machine={m0}", "abf"),
    ("machine={m0}&machine={m2}", "agbef"),
    ("machine=999999", ""),
    ("user={u0}", "agc"),
    ("user={u1}", "bf"),
    ("user=0", "de"),
    ("user=0&user={u1}", "bdef"),
    ("end=1", "agcdf"),
    ("end=0", "be"),
    ("start_after={t0}", "bcdef"),  # strict: a and g start exactly at t0
    ("start_after={t0_iso}", "bcdef"),
    ("start_after={t3}", "ef"),
    ("end_before={t4}", "agd"),  # end <= t: d ends exactly at t4
    ("end_before={t4}&end=0", ""),
    ("start_after={t4}&end_before={t4}", ""),  # an end is after its start: nothing can match
    ("start_after={t3}&end_before={t0}", ""),
    ("end_before={t5}&machine={m1}", "cd"),
    ("machine={m0}&user={u1}&end=1", "f"),
    ("limit=2", "ag"),
    ("limit=0", ""),
    ("offset=5", "ef"),
    ("limit=2&offset=1", "gb"),
    ("offset=100", ""),
    ("machine={m0}&start_after={t0}&limit=1", "b"),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_list_filters_and_order(admin, catalogue, query, expected):
    m, u, ids = catalogue["m"], catalogue["u"], catalogue["ids"]
    query = query.format(
        m0=m[0], m1=m[1], m2=m[2], u0=u[0], u1=u[1],
        t0=T0, t3=T0 + 3 * 3600, t4=T0 + 4 * 3600, t5=T0 + 5 * 3600,
        t0_iso="2027-01-15T08:00:00Z",
    )  # fmt: skip
    r = admin.get(f"{HOLDS}?{query}")
    assert r.status_code == 200, r.json
    assert [hold["id"] for hold in r.json] == [ids[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("machines=1", "machines"),
        ("machine=abc", "machine"),
        ("machine=1.5", "machine"),
        ("machine=-1", "machine"),
        ("machine=2147483648", "machine"),
        ("user=x", "user"),
        ("end=2", "end"),
        ("end=yes", "end"),
        ("end=1&end=0", "end"),
        ("start_after=soon", "start_after"),
        ("start_after=nan", "start_after"),
        ("start_after=inf", "start_after"),
        ("start_after=2027-01-15T08:00:00", "start_after"),
        ("end_before=1e20", "end_before"),
        ("limit=-1", "limit"),
        ("limit=1.0", "limit"),
        ("limit=100000", "limit"),
        ("limit=1&limit=2", "limit"),
        ("offset=-3", "offset"),
        ("offset=", "offset"),
        ("start_after=1&start_after=2", "start_after"),
    ],
)
def test_list_rejects_malformed_parameters(admin, query, param):
    r = admin.get(f"{HOLDS}?{query}")
    assert r.status_code == 422, r.json
    assert param in r.json["errors"]["query"]


def test_list_without_limit_stops_at_page_size_and_links_the_next_page(
    admin, session, machine, app
):
    app.config["MAX_PAGE_SIZE"] = 3
    for hour in range(5):
        session.add(MachineHold(machine_id=machine.id, reason="r", start=ts(T0 + hour * 3600)))
    session.commit()
    first = admin.get(HOLDS)
    assert len(first.json) == 3
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"')
    next_url = link[1 : link.index(">")]
    assert "offset=3" in next_url and "limit=3" in next_url
    second = admin.get(next_url)
    assert [h["start"] for h in second.json] == [T0 + 3 * 3600, T0 + 4 * 3600]
    assert "Link" not in second.headers


def test_next_page_link_is_relative_whatever_the_host_header(admin, session, machine, app):
    app.config["MAX_PAGE_SIZE"] = 1
    for hour in range(2):
        session.add(MachineHold(machine_id=machine.id, reason="r", start=ts(T0 + hour * 3600)))
    session.commit()
    r = admin.get(f"{HOLDS}?machine={machine.id}", headers={"Host": "evil.example"})
    link = r.headers["Link"]
    assert "evil.example" not in link
    assert link == f'</api/machines/holds/?machine={machine.id}&offset=1&limit=1>; rel="next"'
    # Behind a proxy that mounts the app under a prefix, the path keeps the prefix.
    r = admin.get(HOLDS, environ_overrides={"SCRIPT_NAME": "/holds-service"})
    assert r.headers["Link"].startswith("</holds-service/api/machines/holds/?")


def test_list_answers_instants_as_utc_whatever_the_input_offset(admin, machine):
    admin.put(
        HOLDS, json={"machine_id": machine.id, "reason": "r", "start": "2027-01-15T02:00:00-06:00"}
    )
    assert [h["start"] for h in admin.get(HOLDS).json] == [T0]


def test_hold_written_with_offset_round_trips_through_database(session, machine):
    start = datetime(2027, 3, 28, 1, 30, tzinfo=UTC) + timedelta(microseconds=250)
    session.add(MachineHold(machine_id=machine.id, reason="r", start=start))
    session.commit()
    session.expire_all()
    stored = session.scalars(select(MachineHold)).one()
    assert stored.start == start
    assert stored.start.utcoffset() == timedelta(0)


def test_requests_with_the_same_filters_share_one_statement():
    """Values are parameters: SQLAlchemy compiles the list's statement once per filter set."""
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    one, values_one = filtered_holds({"machine": [1], "start_after": t1}, 11)
    two, values_two = filtered_holds({"machine": [2, 3], "start_after": t2, "offset": 5}, 3)
    assert one is two
    assert (values_one["machine"], values_one["start_after"], values_one["limit"]) == ([1], t1, 11)
    assert (values_two["machine"], values_two["offset"], values_two["limit"]) == ([2, 3], 5, 3)
    assert filtered_holds({"machine": [1]}, 11)[0] is not one
