"""``/api/machines/``: creating, renaming and deleting machines (admins only; docs/API.md,
Machines)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from pytm4srv.models import Machine, MachineHold
from tests.test_errors import assert_envelope

MACHINES = "/api/machines/"


def names(session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Machine.name).order_by(Machine.id)))


def test_admin_creates_a_machine(admin, session):
    r = admin.put(MACHINES, json={"name": "CNC mill 3"})
    assert r.status_code == 201
    assert r.json == {"id": r.json["id"], "name": "CNC mill 3"}
    assert session.get(Machine, r.json["id"]).name == "CNC mill 3"
    assert {"id": r.json["id"], "name": "CNC mill 3"} in admin.get(MACHINES).json


def test_a_duplicate_name_is_409_and_nothing_is_written(admin, session, make_machine):
    lathe = make_machine("lathe")
    r = admin.put(MACHINES, json={"name": "lathe"})
    assert_envelope(r, 409)
    assert str(lathe.id) in r.json["message"]
    assert names(session) == ["lathe"]
    # Names are compared exactly: another case or spacing is another name.
    assert admin.put(MACHINES, json={"name": "Lathe"}).status_code == 201
    assert admin.put(MACHINES, json={"name": "lathe "}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"name": 5}, {"name": "a\x00b"}],
    ids=["missing", "empty", "blank", "too long", "not a string", "NUL"],
)
def test_bad_names_are_422_naming_the_field(admin, session, body):
    r = admin.put(MACHINES, json=body)
    assert_envelope(r, 422)
    assert "name" in r.json["errors"]["json"]
    assert names(session) == []


def test_the_longest_name_fits(admin):
    r = admin.put(MACHINES, json={"name": "x" * 200})
    assert r.status_code == 201
    assert r.json["name"] == "x" * 200


def test_read_only_id_is_refused(admin, session):
    assert_envelope(admin.put(MACHINES, json={"id": 9, "name": "m"}), 422)
    assert names(session) == []


def test_admin_renames_a_machine(admin, session, machine):
    r = admin.patch(f"{MACHINES}{machine.id}", json={"name": "lathe 2"})
    assert r.status_code == 200
    assert r.json == {"id": machine.id, "name": "lathe 2"}
    assert names(session) == ["lathe 2"]


def test_renaming_to_its_own_name_or_sending_nothing_is_fine(admin, session, machine):
    assert admin.patch(f"{MACHINES}{machine.id}", json={"name": "lathe"}).status_code == 200
    assert admin.patch(f"{MACHINES}{machine.id}", json={}).json == {
        "id": machine.id,
        "name": "lathe",
    }


def test_renaming_onto_another_machines_name_is_409(admin, session, make_machine):
    lathe, mill = make_machine("lathe"), make_machine("mill")
    r = admin.patch(f"{MACHINES}{mill.id}", json={"name": "lathe"})
    assert_envelope(r, 409)
    assert r.json["message"] == f"Machine {lathe.id} has the name 'lathe' already."
    assert names(session) == ["lathe", "mill"]


def test_renaming_or_deleting_an_unknown_machine_is_404(admin):
    assert_envelope(admin.patch(f"{MACHINES}999", json={"name": "x"}), 404)
    assert_envelope(admin.delete(f"{MACHINES}999"), 404)
    assert_envelope(admin.delete(f"{MACHINES}99999999999"), 404)


def test_admin_deletes_an_unused_machine(admin, session, machine):
    machine_id = machine.id
    r = admin.delete(f"{MACHINES}{machine_id}")
    assert r.status_code == 204
    assert r.data == b""
    assert names(session) == []
    assert_envelope(admin.delete(f"{MACHINES}{machine_id}"), 404)


def test_a_machine_in_use_is_not_deleted_and_the_409_counts_the_uses(
    admin, session, machine, make_schedule
):
    for day in range(1, 13):
        start = datetime(2027, 1, day, tzinfo=UTC)
        session.add(MachineHold(machine_id=machine.id, reason="r", start=start))
    session.commit()
    make_schedule(machine)
    make_schedule(machine)
    r = admin.delete(f"{MACHINES}{machine.id}")
    assert_envelope(r, 409)
    assert r.json["message"] == f"Machine {machine.id} is still used by 12 holds and 2 schedules."
    assert names(session) == ["lathe"]


def test_one_hold_is_counted_in_the_singular(admin, session, machine):
    session.add(MachineHold(machine_id=machine.id, reason="r", start=datetime.now(UTC)))
    session.commit()
    r = admin.delete(f"{MACHINES}{machine.id}")
    assert r.json["message"] == f"Machine {machine.id} is still used by 1 hold and 0 schedules."


def test_once_its_holds_are_gone_the_machine_can_be_deleted(admin, session, machine):
    hold = admin.put("/api/machines/holds/", json={"machine_id": machine.id, "reason": "r"}).json
    assert admin.delete(f"{MACHINES}{machine.id}").status_code == 409
    assert admin.delete(f"/api/machines/holds/{hold['id']}").status_code == 204
    machine_id = machine.id
    assert admin.delete(f"{MACHINES}{machine_id}").status_code == 204
    assert session.scalar(select(func.count()).select_from(Machine)) == 0


@pytest.mark.parametrize("role", ["planner", "staff"])
def test_only_admins_manage_machines(make_caller, session, machine, role):
    caller = make_caller(role)
    assert_envelope(caller.put(MACHINES, json={"name": "x"}), 403)
    assert_envelope(caller.patch(f"{MACHINES}{machine.id}", json={"name": "x"}), 403)
    assert_envelope(caller.delete(f"{MACHINES}{machine.id}"), 403)
    assert names(session) == ["lathe"]
