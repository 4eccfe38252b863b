"""Ids are never given twice, on SQLite too: a deleted object's id never names another one, so a
client that kept "hold 4" cannot change someone else's hold with it (migration 0010)."""

from __future__ import annotations

from sqlalchemy import func, select

from pytm4srv.models import User

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
MACHINES = "/api/machines/"
SCHEDULE = {"name": "n", "reason": "r", "frequency": "D", "time_of_day": "08:00", "duration": 60}


def test_the_newest_hold_schedule_and_machine_ids_are_not_reused_after_deletion(admin, machine):
    bodies = {
        HOLDS: {"machine_id": machine.id, "reason": "r", "start": 1_900_000_000},
        SCHEDULES: SCHEDULE | {"machine_id": machine.id},
        MACHINES: {"name": "lathe"},
    }
    for path, body in bodies.items():
        if path == MACHINES:
            body = body | {"name": "another"}
        first = admin.put(path, json=body)
        assert first.status_code == 201, (path, first.json)
        # The newest row is the one an id-reusing table would give out again.
        assert admin.delete(f"{path}{first.json['id']}").status_code == 204
        if path == MACHINES:
            body = body | {"name": "yet another"}
        second = admin.put(path, json=body)
        assert second.status_code == 201, (path, second.json)
        assert second.json["id"] > first.json["id"], path
        assert admin.get(f"{path}{first.json['id']}").status_code == 404


def test_a_deleted_users_id_is_not_reused(runner, session):
    assert runner.invoke(args=["users", "create", "ann", "--role", "staff"]).exit_code == 0
    first = session.scalar(select(func.max(User.id)))
    assert runner.invoke(args=["users", "delete", "ann"]).exit_code == 0
    assert runner.invoke(args=["users", "create", "bob", "--role", "staff"]).exit_code == 0
    session.expire_all()
    assert session.scalar(select(User.id).where(User.name == "bob")) > first
