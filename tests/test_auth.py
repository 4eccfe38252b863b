"""Tokens and roles (docs/API.md, Roles): who may call what."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, User
from pytm4srv.users.tokens import hash_token

HOLDS = "/api/machines/holds/"


SCHEDULES = "/api/machines/holds/schedules/"


@pytest.fixture
def hold_id(session, machine, make_schedule):
    hold = MachineHold(machine_id=machine.id, reason="r", start=datetime(2027, 1, 1, tzinfo=UTC))
    session.add(hold)
    session.commit()
    make_schedule(machine, id=HOLD_SCHEDULE_ID, name="s")
    session.add(Machine(id=SPARE_MACHINE_ID, name="spare"))
    session.commit()
    return hold.id


#: Set ids, far above what the suite's rows get from the sequences (on PostgreSQL these only grow,
#: as rolled-back tests do not give their values back).
HOLD_SCHEDULE_ID = 2_000_000_777
#: A machine that no hold or schedule names, so that it can be deleted.
SPARE_MACHINE_ID = 2_000_000_778
SCHEDULE = {"name": "n", "reason": "r", "frequency": "D", "time_of_day": "08:00"}


def request_for(endpoint: str, machine_id: int, hold_id: int) -> tuple[str, str, dict]:
    sid = HOLD_SCHEDULE_ID
    return {
        "list machines": ("get", "/api/machines/", {}),
        "create machine": ("put", "/api/machines/", {"json": {"name": "new"}}),
        "rename machine": ("patch", f"/api/machines/{SPARE_MACHINE_ID}", {"json": {"name": "x"}}),
        "delete machine": ("delete", f"/api/machines/{SPARE_MACHINE_ID}", {}),
        "machine status": ("get", f"/api/machines/{machine_id}", {}),
        "list holds": ("get", HOLDS, {}),
        "create hold": ("put", HOLDS, {"json": {"machine_id": machine_id, "reason": "r"}}),
        "get hold": ("get", f"{HOLDS}{hold_id}", {}),
        "patch hold": ("patch", f"{HOLDS}{hold_id}", {"json": {"notes": "n"}}),
        "delete hold": ("delete", f"{HOLDS}{hold_id}", {}),
        "list schedules": ("get", SCHEDULES, {}),
        "create schedule": ("put", SCHEDULES, {"json": SCHEDULE | {"machine_id": machine_id}}),
        "get schedule": ("get", f"{SCHEDULES}{sid}", {}),
        "patch schedule": ("patch", f"{SCHEDULES}{sid}", {"json": {"name": "m"}}),
        "delete schedule": ("delete", f"{SCHEDULES}{sid}", {}),
        "preview schedule": ("post", f"{SCHEDULES}previewSchedule", {"json": {"id": sid}}),
        "hold history": ("get", f"{HOLDS}{hold_id}/history", {}),
        "schedule history": ("get", f"{SCHEDULES}{sid}/history", {}),
    }[endpoint]


ROLE_MATRIX = [
    # endpoint, status for admin, planner, staff
    ("list machines", 200, 200, 200),
    ("create machine", 201, 403, 403),
    ("rename machine", 200, 403, 403),
    ("delete machine", 204, 403, 403),
    ("machine status", 200, 200, 200),
    ("list holds", 200, 200, 200),
    ("create hold", 201, 201, 201),
    ("get hold", 200, 200, 200),
    ("patch hold", 200, 200, 200),
    ("delete hold", 204, 204, 403),
    ("list schedules", 200, 200, 200),
    ("create schedule", 201, 201, 403),
    ("get schedule", 200, 200, 200),
    ("patch schedule", 200, 200, 403),
    ("delete schedule", 204, 204, 403),
    ("preview schedule", 200, 200, 200),
    ("hold history", 200, 200, 200),
    ("schedule history", 200, 200, 200),
]


@pytest.mark.parametrize("role_index, role", [(1, "admin"), (2, "planner"), (3, "staff")])
@pytest.mark.parametrize("row", ROLE_MATRIX, ids=[row[0] for row in ROLE_MATRIX])
def test_role_matrix(make_caller, machine, hold_id, session, row, role_index, role):
    method, path, kwargs = request_for(row[0], machine.id, hold_id)
    caller = make_caller(role)
    r = getattr(caller, method)(path, **kwargs)
    assert r.status_code == row[role_index], r.json
    if r.status_code == 403:
        assert r.json["code"] == 403
        session.expire_all()
        assert session.get(MachineHold, hold_id) is not None
        assert session.get(MachineHoldSchedule, HOLD_SCHEDULE_ID).name == "s"
        assert len(session.scalars(select(MachineHoldSchedule)).all()) == 1
        assert session.get(Machine, SPARE_MACHINE_ID).name == "spare"
        assert len(session.scalars(select(Machine)).all()) == 2


@pytest.mark.parametrize("row", ROLE_MATRIX, ids=[row[0] for row in ROLE_MATRIX])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "token abc"],
)
def test_missing_or_unknown_token_is_401(client, machine, hold_id, session, row, authorization):
    method, path, kwargs = request_for(row[0], machine.id, hold_id)
    headers = {} if authorization is None else {"Authorization": authorization}
    r = getattr(client, method)(path, headers=headers, **kwargs)
    assert r.status_code == 401
    assert r.json["code"] == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(session.scalars(select(MachineHold)).all()) == 1
    assert len(session.scalars(select(MachineHoldSchedule)).all()) == 1


def test_bad_input_without_token_is_401_not_422(client):
    r = client.put(HOLDS, json={"bogus": True})
    assert r.status_code == 401


def test_staff_cannot_delete_even_with_bad_id(staff):
    assert staff.delete(f"{HOLDS}12345").status_code == 403


def test_deleted_users_token_stops_working(staff, session):
    assert staff.get(HOLDS).status_code == 200
    session.delete(session.get(User, staff.user.id))
    session.commit()
    assert staff.get(HOLDS).status_code == 401


def test_tokens_are_stored_only_as_hashes(staff, session):
    stored = session.get(User, staff.user.id)
    assert stored.token_hash == hash_token(staff.token)
    assert staff.token not in stored.token_hash


def test_authenticated_answers_are_not_cached(staff):
    assert staff.get(HOLDS).headers["Cache-Control"] == "no-store"
