"""Hostile input on every endpoint that takes input: always a 4xx envelope, never a write.

A table of nasty bodies (each applied to every write endpoint, built from a valid body of that
endpoint), nasty query strings and nasty path ids. Every answer must be the JSON error envelope
with the expected status, and the database must be exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from pytm4srv.feed.secrets import new_feed_secret
from pytm4srv.models import MachineHold, MachineHoldSchedule
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = f"{SCHEDULES}previewSchedule"
MARK = "@@"  # stands in a JSON text for a raw literal that json.dumps cannot write


@pytest.fixture
def world(session, admin, machine, make_machine, make_schedule):
    """A hold and a schedule, to change, and a machine nothing names; the ids the paths need."""
    hold = MachineHold(machine_id=machine.id, reason="r", start=datetime(2027, 1, 1, tzinfo=UTC))
    session.add(hold)
    session.commit()
    schedule = make_schedule(machine)
    spare = make_machine("spare")
    secret = new_feed_secret(session, admin.user.id)
    session.commit()
    return {
        "machine": machine.id,
        "hold": hold.id,
        "schedule": schedule.id,
        "spare": spare.id,
        "feed": f"/api/feed/{secret}.ics",
    }


def snapshot(session) -> list[Any]:
    """Every row of the tables the API writes, as plain tuples."""
    session.expire_all()
    rows = []
    for model in (MachineHold, MachineHoldSchedule):
        for obj in session.scalars(select(model).order_by(model.id)):
            rows.append({c.key: getattr(obj, c.key) for c in model.__table__.columns})
    return rows


SCHEDULE_BODY = {"name": "n", "reason": "r", "frequency": "D", "time_of_day": "08:00"}

#: endpoint: method, path template, valid body, its timestamp field, whether it is a schedule
ENDPOINTS = {
    "create hold": ("put", HOLDS, {"reason": "r"}, "start", False),
    "patch hold": ("patch", HOLDS + "{hold}", {"reason": "r"}, "start", False),
    "create schedule": ("put", SCHEDULES, SCHEDULE_BODY, "anchor", True),
    "patch schedule": ("patch", SCHEDULES + "{schedule}", SCHEDULE_BODY, "anchor", True),
    "preview schedule": ("post", PREVIEW, SCHEDULE_BODY, "anchor", True),
}


def field(name: str, value: Any, *, timestamp: bool = False) -> Callable[..., dict | str]:
    """A body: the valid one with ``name`` (or the endpoint's timestamp field) set to ``value``.

    A ``value`` that is a string starting with MARK is spliced in as raw JSON text.
    """

    def make(valid: dict, timestamp_field: str) -> dict | str:
        key = timestamp_field if timestamp else name
        if isinstance(value, str) and value.startswith(MARK):
            return json.dumps(valid | {key: MARK}).replace(f'"{MARK}"', value[len(MARK) :])
        return valid | {key: value}

    return make


def raw(text: str | bytes) -> Callable[..., str | bytes]:
    return lambda valid, timestamp_field: text


def timestamp(value: Any) -> Callable[..., dict | str]:
    return field("", value, timestamp=True)


# (case id, body maker, content type, expected status, only for schedule endpoints)
BODIES: list[tuple[str, Callable[..., Any], str | None, int, bool]] = [
    # integers: too big for the database, floats, strings, booleans
    ("id 2**31", field("machine_id", 2**31), "application/json", 422, False),
    ("id 10**30", field("machine_id", 10**30), "application/json", 422, False),
    ("id -1", field("machine_id", -1), "application/json", 422, False),
    ("id 0", field("machine_id", 0), "application/json", 422, False),
    ("id 1.0", field("machine_id", 1.0), "application/json", 422, False),
    ("id 1.5", field("machine_id", 1.5), "application/json", 422, False),
    ("id string", field("machine_id", "1"), "application/json", 422, False),
    ("id boolean", field("machine_id", True), "application/json", 422, False),
    ("id 1e400", field("machine_id", MARK + "1e400"), "application/json", 422, False),
    ("id 5000 digits", field("machine_id", MARK + "9" * 5000), "application/json", 400, False),
    ("interval 2**31", field("interval", 2**31), "application/json", 422, True),
    ("interval 2.0", field("interval", 2.0), "application/json", 422, True),
    ("duration 2**31", field("duration", 2**31), "application/json", 422, True),
    ("duration 1.5", field("duration", 1.5), "application/json", 422, True),
    ("indices 10**20", field("indices", [10**20]), "application/json", 422, True),
    ("indices 0", field("indices", [0]), "application/json", 422, True),
    ("indices 733 items", field("indices", [1] * 733), "application/json", 422, True),
    ("months 4096", field("months", 4096), "application/json", 422, True),
    ("weekdays -1", field("weekdays", -1), "application/json", 422, True),
    # timestamps: not finite, out of the years 1-9999, naive, wrong types
    ("ts NaN", timestamp(MARK + "NaN"), "application/json", 422, False),
    ("ts Infinity", timestamp(MARK + "Infinity"), "application/json", 422, False),
    ("ts -Infinity", timestamp(MARK + "-Infinity"), "application/json", 422, False),
    ("ts 1e400", timestamp(MARK + "1e400"), "application/json", 422, False),
    ("ts max float", timestamp(1.7976931348623157e308), "application/json", 422, False),
    ("ts 10**400", timestamp(MARK + "1" + "0" * 400), "application/json", 422, False),
    ("ts 'NaN'", timestamp("NaN"), "application/json", 422, False),
    ("ts 'inf'", timestamp("inf"), "application/json", 422, False),
    ("ts '1e400'", timestamp("1e400"), "application/json", 422, False),
    ("ts year 0", timestamp("0000-01-01T00:00:00Z"), "application/json", 422, False),
    ("ts year 10000", timestamp("10000-01-01T00:00:00Z"), "application/json", 422, False),
    ("ts 0001-01-01", timestamp(-62135596800), "application/json", 422, False),
    ("ts 10000-01-01", timestamp(253402300800), "application/json", 422, False),
    (
        "ts overflowing offset",
        timestamp("9999-12-31T23:59:59-23:59"),
        "application/json",
        422,
        False,
    ),
    ("ts naive", timestamp("2027-01-01T08:00:00"), "application/json", 422, False),
    ("ts padded", timestamp(" 1800000000"), "application/json", 422, False),
    ("ts empty", timestamp(""), "application/json", 422, False),
    ("ts boolean", timestamp(True), "application/json", 422, False),
    ("ts object", timestamp({}), "application/json", 422, False),
    # strings: NUL, lone surrogates, too long, wrong type
    ("NUL", field("reason", "a\x00b"), "application/json", 422, False),
    ("lone surrogate", field("reason", MARK + '"\\ud800"'), "application/json", 422, False),
    ("low surrogate", field("reason", MARK + '"x\\udfff"'), "application/json", 422, False),
    ("reason 501", field("reason", "x" * 501), "application/json", 422, False),
    ("reason 500 emoji", field("reason", "\U0001f600" * 501), "application/json", 422, False),
    ("reason number", field("reason", 5), "application/json", 422, False),
    ("name 201", field("name", "x" * 201), "application/json", 422, True),
    ("time 24:00", field("time_of_day", "24:00"), "application/json", 422, True),
    ("time 08:00:60", field("time_of_day", "08:00:60"), "application/json", 422, True),
    ("time arabic digits", field("time_of_day", "٠٨:٠٠"), "application/json", 422, True),
    ("time 8:00", field("time_of_day", "8:00"), "application/json", 422, True),
    ("time newline", field("time_of_day", "08:00\n"), "application/json", 422, True),
    ("frequency surrogate", field("frequency", MARK + '"\\ud800"'), "application/json", 422, True),
    # keys: unknown, read-only, NUL, surrogate
    ("unknown key", field("bogus", 1), "application/json", 422, False),
    ("read-only schedule_id", field("schedule_id", 1), "application/json", 422, False),
    ("read-only created", field("created", 1), "application/json", 422, True),
    ("NUL key", field("a\x00", 1), "application/json", 422, False),
    ("surrogate key", raw('{"\\ud800": 1}'), "application/json", 422, False),
    # bodies that are not a JSON object, or not JSON at all
    ("array", raw("[]"), "application/json", 422, False),
    ("number", raw("1"), "application/json", 422, False),
    ("string", raw('"x"'), "application/json", 422, False),
    ("null", raw("null"), "application/json", 422, False),
    ("true", raw("true"), "application/json", 422, False),
    ("empty", raw(""), "application/json", 400, False),
    ("blank", raw(" \n"), "application/json", 400, False),
    ("truncated", raw('{"reason": '), "application/json", 400, False),
    ("trailing garbage", raw("{}x"), "application/json", 400, False),
    ("invalid UTF-8", raw(b'{"reason": "\xff"}'), "application/json", 400, False),
    ("deep arrays", raw("[" * 30_000 + "]" * 30_000), "application/json", 400, False),
    ("deep objects", raw('{"a":' * 10_000 + "1" + "}" * 10_000), "application/json", 400, False),
    # wrong content types
    ("text/plain", raw('{"reason": "r"}'), "text/plain", 400, False),
    ("form", raw("reason=r"), "application/x-www-form-urlencoded", 400, False),
    ("multipart", raw("--b\r\n\r\nx\r\n--b--"), "multipart/form-data; boundary=b", 400, False),
    ("xml", raw("<reason>r</reason>"), "application/xml", 400, False),
    ("no content type", raw('{"reason": "r"}'), None, 400, False),
    # size
    ("10 MB", raw('{"reason": "' + "x" * 10_000_000 + '"}'), "application/json", 413, False),
    ("64 KiB + 1", raw(" " * (64 * 1024 - 1) + "{}"), "application/json", 413, False),
]


@pytest.mark.parametrize(
    ("endpoint", "make", "content_type", "status"),
    [
        pytest.param(endpoint, *case[1:4], id=f"{case[0]}-{endpoint}")
        for case in BODIES
        for endpoint, (*_, is_schedule) in ENDPOINTS.items()
        if is_schedule or not case[4]
    ],
)
def test_hostile_body_is_refused_and_writes_nothing(
    admin, world, session, endpoint, make, content_type, status
):
    method, path, valid, timestamp_field, _ = ENDPOINTS[endpoint]
    valid = {"machine_id": world["machine"]} | valid
    body = make(valid, timestamp_field)
    data = json.dumps(body) if isinstance(body, dict) else body
    headers = {} if content_type is None else {"Content-Type": content_type}
    before = snapshot(session)
    r = getattr(admin, method)(path.format(**world), data=data, headers=headers)
    assert_envelope(r, status)
    assert r.headers["Cache-Control"] == "no-store"
    assert snapshot(session) == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_valid_bodies_of_the_table_are_accepted(admin, world, endpoint):
    """The table's bodies differ from these in one thing only, so the refusals mean something."""
    method, path, valid, _, _ = ENDPOINTS[endpoint]
    r = getattr(admin, method)(path.format(**world), json={"machine_id": world["machine"]} | valid)
    assert r.status_code in (200, 201), r.json


QUERIES = [
    (HOLDS, "limit=1&limit=2", 422),
    (HOLDS, "limit=1001", 422),
    (HOLDS, f"limit={10**30}", 422),
    (HOLDS, "limit=-1", 422),
    (HOLDS, "limit=1.0", 422),
    (HOLDS, "limit=%201", 422),
    (HOLDS, "limit=1_0", 422),
    (HOLDS, "limit=%D9%A1", 422),  # ARABIC-INDIC DIGIT ONE
    (HOLDS, f"offset={2**63}", 422),
    (HOLDS, f"machine={2**31}", 422),
    (HOLDS, "machine=1.5", 422),
    (HOLDS, "&".join(["machine=1"] * 101), 422),
    (HOLDS, f"user={-1}", 422),
    (HOLDS, "end=2", 422),
    (HOLDS, "end=1&end=0", 422),
    (HOLDS, "start_after=nan", 422),
    (HOLDS, "start_after=1e400", 422),
    (HOLDS, "start_after=0000-01-01T00:00:00Z", 422),
    (HOLDS, "end_before=2027-01-01T00:00:00", 422),
    (HOLDS, "start_after=%00", 422),
    (HOLDS, "machines=1", 422),
    (HOLDS, "machine=" + "1" * 5000, 414),
    (PREVIEW, "count=1&count=2", 422),
    (PREVIEW, "count=0", 422),
    (PREVIEW, "count=1001", 422),
    (PREVIEW, "count=1e3", 422),
    (PREVIEW, f"count={'9' * 5000}", 414),
    (PREVIEW, f"count={'9' * 4000}", 422),
    (PREVIEW, "start=inf", 422),
    (PREVIEW, "start=%ED%A0%80", 422),  # a lone surrogate, UTF-8 encoded
    (PREVIEW, "bogus=1", 422),
]


@pytest.mark.parametrize(("path", "query", "status"), QUERIES)
def test_hostile_query_is_refused(admin, world, session, path, query, status):
    method = "post" if path == PREVIEW else "get"
    kwargs = {"json": {"frequency": "D", "time_of_day": "08:00"}} if method == "post" else {}
    before = snapshot(session)
    r = getattr(admin, method)(f"{path}?{query}", **kwargs)
    assert_envelope(r, status)
    assert snapshot(session) == before


BAD_IDS = ["0", "2147483648", "99999999999999999999999", "-1", "1.0", "0x10", "%D9%A1", "%00"]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("prefix", [HOLDS, SCHEDULES])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_out_of_range_path_id_is_404(admin, world, session, prefix, method, bad_id):
    before = snapshot(session)
    r = getattr(admin, method)(f"{prefix}{bad_id}", json={"reason": "r"})
    assert_envelope(r, 404)
    assert snapshot(session) == before


def test_largest_path_id_reaches_the_database_as_a_plain_404(admin):
    assert_envelope(admin.get(f"{HOLDS}2147483647"), 404)
    assert_envelope(admin.patch(f"{SCHEDULES}2147483647", json={"name": "n"}), 404)


def test_limit_0_answers_no_link_to_itself(admin, world):
    r = admin.get(f"{HOLDS}?limit=0")
    assert r.status_code == 200
    assert r.json == []
    assert "Link" not in r.headers


def test_url_length_counts_percent_encoded_characters(admin, app):
    app.config["MAX_URL_LENGTH"] = 100
    assert admin.get(f"{HOLDS}?start_after={'1' * 60}").status_code == 422
    assert_envelope(admin.get(f"{HOLDS}?start_after={'%31' * 60}"), 414)
    assert_envelope(admin.get(f"{HOLDS}{'%31' * 40}"), 414)


def every_operation(world) -> list[tuple[str, str, dict]]:
    """(method, path, kwargs) of every operation of the API, each with a valid request."""
    hold, schedule = f"{HOLDS}{world['hold']}", f"{SCHEDULES}{world['schedule']}"
    body = {"machine_id": world["machine"], "reason": "r"}
    spare = f"/api/machines/{world['spare']}"
    return [
        ("get", "/api/health", {}),
        ("get", "/api/machines/", {}),
        ("put", "/api/machines/", {"json": {"name": "new machine"}}),
        ("patch", spare, {"json": {"name": "renamed"}}),
        ("delete", spare, {}),
        ("get", f"{hold}/history", {}),
        ("get", f"{schedule}/history", {}),
        ("get", "/api/me", {}),
        ("post", "/api/me/feed", {}),
        ("get", world["feed"], {}),
        ("get", f"/api/machines/{world['machine']}", {}),
        ("get", HOLDS, {}),
        ("put", HOLDS, {"json": body}),
        ("get", hold, {}),
        ("patch", hold, {"json": {"notes": "n"}}),
        ("delete", hold, {}),
        ("get", SCHEDULES, {}),
        ("put", SCHEDULES, {"json": body | SCHEDULE_BODY}),
        ("get", schedule, {}),
        ("patch", schedule, {"json": {"name": "m"}}),
        ("delete", schedule, {}),
        ("post", PREVIEW, {"json": SCHEDULE_BODY}),
    ]


#: How many operations the API has (``every_operation``).
OPERATIONS = 22


@pytest.mark.parametrize("index", range(OPERATIONS))
@pytest.mark.parametrize("query", ["bogus=1", "machines=3&limit=1", "x", "id=1"])
def test_every_operation_refuses_an_unknown_query_parameter(
    admin, world, session, app, index, query
):
    method, path, kwargs = every_operation(world)[index]
    before = snapshot(session)
    r = getattr(admin, method)(f"{path}?{query}", **kwargs)
    assert_envelope(r, 422)
    unknown = {part.split("=")[0] for part in query.split("&")} - {"limit"}
    assert unknown <= set(r.json["errors"]["query"]), r.json
    assert snapshot(session) == before
    # The same request without the parameter is served: it was refused for the parameter alone.
    assert getattr(admin, method)(path, **kwargs).status_code in (200, 201, 204)


def test_every_operation_is_in_the_table(app, world):
    served = {
        (method.lower(), rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        and not rule.rule.startswith("/api/docs")
        and rule.rule != "/api/openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert len(every_operation(world)) == len(served) == OPERATIONS


def test_roles_are_checked_before_the_query_string(staff, world):
    r = staff.delete(f"{HOLDS}{world['hold']}?bogus=1")
    assert_envelope(r, 403)
