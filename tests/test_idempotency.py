"""``Idempotency-Key`` on the PUTs that create (docs/API.md, Idempotency keys)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from pytm4srv import create_app
from pytm4srv.db import WRITE, Database, database, make_engine
from pytm4srv.idempotency import DOCUMENTED_KEY, LIFETIME, IdempotencyKey, request_fingerprint
from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import migrated_database
from tests.live import call, gunicorn, seed
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
SCHEDULE = {"name": "n", "reason": "r", "frequency": "D", "time_of_day": "08:00"}


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def bodies(machine) -> dict[str, tuple[str, dict[str, Any], type]]:
    return {
        "hold": (HOLDS, {"machine_id": machine.id, "reason": "spindle"}, MachineHold),
        "schedule": (SCHEDULES, SCHEDULE | {"machine_id": machine.id}, MachineHoldSchedule),
    }


@pytest.mark.parametrize("kind", ["hold", "schedule"])
def test_a_repeat_answers_the_first_answer_and_writes_nothing(planner, session, bodies, kind):
    path, body, model = bodies[kind]
    first = planner.put(path, json=body, headers=key("k-1"))
    assert first.status_code == 201
    for _ in range(2):
        again = planner.put(path, json=body, headers=key("k-1"))
        assert again.status_code == 201
        assert again.json == first.json
    assert count(session, model) == 1
    assert count(session, IdempotencyKey) == 1


def test_the_repeat_answers_what_the_first_answered_even_after_a_change(planner, bodies):
    path, body, _ = bodies["hold"]
    first = planner.put(path, json=body, headers=key("k"))
    assert planner.patch(f"{HOLDS}{first.json['id']}", json={"notes": "later"}).status_code == 200
    assert planner.put(path, json=body, headers=key("k")).json == first.json


@pytest.mark.parametrize("kind", ["hold", "schedule"])
def test_the_same_key_with_another_body_is_invalid_and_writes_nothing(
    planner, session, bodies, kind
):
    path, body, model = bodies[kind]
    assert planner.put(path, json=body, headers=key("k")).status_code == 201
    r = planner.put(path, json=body | {"reason": "other"}, headers=key("k"))
    assert_envelope(r, 422)
    assert list(r.json["errors"]["headers"]) == ["Idempotency-Key"]
    # Another query string is another request too (and this one would be invalid anyway).
    r = planner.put(f"{path}?x=1", json=body, headers=key("k"))
    assert_envelope(r, 422)
    assert count(session, model) == 1


def test_the_same_key_on_the_other_endpoint_is_invalid(planner, bodies, session):
    assert planner.put(HOLDS, json=bodies["hold"][1], headers=key("k")).status_code == 201
    r = planner.put(SCHEDULES, json=bodies["schedule"][1], headers=key("k"))
    assert_envelope(r, 422)
    assert "Idempotency-Key" in r.json["errors"]["headers"]
    assert count(session, MachineHoldSchedule) == 0


def test_keys_are_per_user(make_caller, bodies, session):
    path, body, _ = bodies["hold"]
    ann, bob = make_caller("staff"), make_caller("staff")
    first = ann.put(path, json=body, headers=key("shared"))
    other = bob.put(path, json=body | {"reason": "bob's"}, headers=key("shared"))
    assert (first.status_code, other.status_code) == (201, 201)
    assert other.json["id"] != first.json["id"]
    assert other.json["user_id"] == bob.user.id
    assert bob.put(path, json=body | {"reason": "bob's"}, headers=key("shared")).json == other.json
    assert count(session, MachineHold) == 2


def test_a_request_that_failed_records_nothing(staff, bodies, session):
    path, body, _ = bodies["hold"]
    assert staff.put(path, json=body | {"end": 1}, headers=key("k")).status_code == 422
    assert count(session, IdempotencyKey) == 0
    assert staff.put(path, json=body, headers=key("k")).status_code == 201
    assert count(session, MachineHold) == 1


def test_a_forbidden_request_records_nothing(staff, bodies, session):
    path, body, _ = bodies["schedule"]
    assert staff.put(path, json=body, headers=key("k")).status_code == 403
    assert count(session, IdempotencyKey) == 0


def test_an_expired_key_is_a_new_key(staff, bodies, session):
    path, body, _ = bodies["hold"]
    first = staff.put(path, json=body, headers=key("k"))
    session.execute(update(IdempotencyKey).values(created=datetime.now(UTC) - LIFETIME))
    session.commit()
    # Expired: even another body is a new request, and the key now stands for it.
    second = staff.put(path, json=body | {"reason": "new"}, headers=key("k"))
    assert second.status_code == 201 and second.json["id"] != first.json["id"]
    assert staff.put(path, json=body | {"reason": "new"}, headers=key("k")).json == second.json
    assert count(session, MachineHold) == 2
    assert count(session, IdempotencyKey) == 1


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "x" * 256,
        "tab\there",
        "caf\u00e9",
        '"unterminated\\"',
        '"a"b"',
        '"\\n"',
        '""',
        '"abc',
        'abc"',
        '"',
    ],
)
def test_a_malformed_key_is_invalid_naming_the_header(staff, bodies, session, value):
    path, body, _ = bodies["hold"]
    r = staff.put(path, json=body, headers={"Idempotency-Key": value})
    assert_envelope(r, 422)
    assert list(r.json["errors"]["headers"]) == ["Idempotency-Key"]
    assert count(session, MachineHold) == 0


@pytest.mark.parametrize("value", ["x" * 255, "a b", "~!@#$%^&*()", "8e03978e-40d5-43e8"])
def test_keys_up_to_255_printable_characters_are_taken(staff, bodies, value):
    path, body, _ = bodies["hold"]
    first = staff.put(path, json=body, headers=key(value))
    assert first.status_code == 201
    assert staff.put(path, json=body, headers=key(value)).json == first.json


def test_a_quoted_key_is_the_key_inside_the_quotes(staff, bodies, session):
    path, body, _ = bodies["hold"]
    first = staff.put(path, json=body, headers=key('"8e03-\\"q\\"-\\\\"'))
    assert staff.put(path, json=body, headers=key('8e03-"q"-\\')).json == first.json
    assert count(session, MachineHold) == 1


def test_without_a_key_every_put_creates(staff, bodies, session):
    path, body, _ = bodies["hold"]
    ids = {staff.put(path, json=body).json["id"] for _ in range(2)}
    assert len(ids) == 2
    assert count(session, IdempotencyKey) == 0


def test_expire_keys_deletes_the_keys_older_than_a_day(staff, bodies, session, runner):
    path, body, _ = bodies["hold"]
    for n in range(3):
        staff.put(path, json=body | {"reason": f"{n}"}, headers=key(f"k{n}"))
    old = datetime.now(UTC) - LIFETIME - timedelta(seconds=1)
    session.execute(update(IdempotencyKey).where(IdempotencyKey.key != "k2").values(created=old))
    session.commit()
    result = runner.invoke(args=["holds", "expire-keys"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "expire-keys: deleted=2"
    session.expire_all()
    assert session.scalars(select(IdempotencyKey.key)).all() == ["k2"]
    assert count(session, MachineHold) == 3


def test_the_header_is_documented_on_the_two_puts_only(client):
    spec = client.get("/api/openapi.json").json
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
        and any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert documented == {("put", HOLDS), ("put", SCHEDULES)}
    (parameter,) = spec["paths"][HOLDS]["put"]["parameters"]
    assert parameter["in"] == "header" and parameter["required"] is False


# --- concurrent repeats, on a database of their own -----------------------------------------------


@pytest.fixture
def real(tmp_path):
    with migrated_database(tmp_path) as url:
        app = create_app({"TESTING": True, "DATABASE_URL": url, "DB_TIMEOUT": 5})
        token = new_token()
        with database(app).open(WRITE) as session:
            session.add(
                User(name="u", role=Role.ADMIN, token_hash=hash_token(token), created=now())
            )
            session.add(Machine(name="m"))
            session.commit()
        yield app, url, {"Authorization": f"Bearer {token}"}
        database(app).engine.dispose()


def now() -> datetime:
    return datetime.now(UTC)


def test_a_repeat_sent_while_the_first_is_in_flight_waits_and_answers_the_same(real):
    """The first request's transaction is open (another connection, holding the key's row
    uncommitted): the repeat waits for it, then answers what it answered, creating nothing."""
    app, url, headers = real
    body = {"machine_id": 1, "reason": "in flight"}
    engine = make_engine(url)
    try:
        with Database(engine).open(WRITE) as first:
            hold = MachineHold(machine_id=1, user_id=1, reason="in flight", start=now())
            first.add(hold)
            first.flush()
            answer = {"id": hold.id, "stands": "for the first answer"}
            with app.test_request_context(HOLDS, method="PUT", json=body, headers=headers):
                fingerprint = request_fingerprint()
            first.add(
                IdempotencyKey(
                    user_id=1,
                    key="k",
                    fingerprint=fingerprint,
                    status=201,
                    response=answer,
                    created=now(),
                )
            )
            first.flush()
            pool = ThreadPoolExecutor(1)
            repeat = pool.submit(
                app.test_client().put, HOLDS, json=body, headers=headers | key("k")
            )
            time.sleep(0.5)  # the repeat is waiting on the first's transaction
            assert not repeat.done()
            first.commit()
            r = repeat.result(timeout=10)
            pool.shutdown()
    finally:
        engine.dispose()
    assert r.status_code == 201
    assert r.json == answer
    with database(app).open(WRITE) as session:
        assert count(session, MachineHold) == 1


@pytest.mark.slow
def test_concurrent_repeats_over_a_live_server_make_one_object(tmp_path):
    with migrated_database(tmp_path) as url:
        token = seed(url)
        with gunicorn(url, tmp_path / "gunicorn.log") as live:
            gate = threading.Barrier(8)
            body = {"machine_id": 1, "reason": "once"}

            def send(path: str, payload: dict) -> Any:
                gate.wait(timeout=10)
                return call(live.base, "PUT", path, token, payload, key("same"), timeout=20)

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: send(HOLDS, body), range(8)))
        assert [a.status for a in answers] == [201] * 8
        assert all(a.body == answers[0].body for a in answers)
        engine = make_engine(url)
        try:
            with Database(engine).open(WRITE) as session:
                assert count(session, MachineHold) == 1
                assert count(session, IdempotencyKey) == 1
        finally:
            engine.dispose()


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.from_regex(DOCUMENTED_KEY, fullmatch=True))
def test_every_key_the_openapi_document_allows_is_taken(staff, bodies, value):
    """What the document allows is never refused (schemathesis's positive-data check)."""
    path, body, _ = bodies["hold"]
    r = staff.put(path, json=body | {"reason": "documented"}, headers={"Idempotency-Key": value})
    assert r.status_code == 201, (value, r.json)
