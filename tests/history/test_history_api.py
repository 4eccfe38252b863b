"""History of holds and schedules (docs/API.md, History): what changed through the API, by whom,
when; written with the change or not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from pytm4srv.models import HistoryEntry, MachineHold, User
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
START = 1_800_000_000
SCHEDULE = {
    "name": "nightly",
    "reason": "calibration",
    "frequency": "D",
    "time_of_day": "08:00",
    "duration": 60,
}


def entries(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(HistoryEntry))


def history(caller, path: str) -> list[dict]:
    r = caller.get(f"{path}/history")
    assert r.status_code == 200, r.json
    return r.json


def assert_recent(entry: dict, before: float) -> None:
    assert before - 1 <= entry["at"] <= datetime.now(UTC).timestamp() + 1


def test_hold_history_across_create_patch_and_delete_by_different_users(
    admin, staff, planner, machine, make_machine
):
    began = datetime.now(UTC).timestamp()
    mill = make_machine("mill")
    created = admin.put(HOLDS, json={"machine_id": machine.id, "reason": "r", "start": START})
    hold = created.json
    path = f"{HOLDS}{hold['id']}"
    patch = {"end": START + 3600, "notes": "bearing", "machine_id": mill.id}
    assert staff.patch(path, json=patch).status_code == 200
    assert planner.patch(path, json={"end": None, "notes": "bearing"}).status_code == 200
    assert planner.delete(path).status_code == 204

    first, second, third, last = history(staff, path)
    assert [e["action"] for e in (first, second, third, last)] == [
        "created",
        "changed",
        "changed",
        "deleted",
    ]
    assert [e["user_id"] for e in (first, second, third, last)] == [
        admin.user.id,
        staff.user.id,
        planner.user.id,
        planner.user.id,
    ]
    # Created: every field of the hold, as the API answered it, from null.
    assert first["changes"] == {name: [None, value] for name, value in hold.items()}
    assert first["changes"]["start"] == [None, START]
    assert first["changes"]["user_id"] == [None, admin.user.id]
    # Changed: only the fields whose value changed, [old, new] in the wire format.
    assert second["changes"] == {
        "machine_id": [machine.id, mill.id],
        "notes": ["", "bearing"],
        "end": [None, START + 3600],
    }
    assert third["changes"] == {"end": [START + 3600, None]}
    assert last["changes"] == {}
    for entry in (first, second, third, last):
        assert_recent(entry, began)
    assert first["at"] <= second["at"] <= third["at"] <= last["at"]


def test_a_patch_that_changes_nothing_records_nothing(staff, machine, session):
    hold = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r", "notes": "n"}).json
    path = f"{HOLDS}{hold['id']}"
    assert staff.patch(path, json={}).status_code == 200
    assert staff.patch(path, json={"notes": "n", "reason": "r"}).status_code == 200
    assert [e["action"] for e in history(staff, path)] == ["created"]


def test_schedule_history_across_create_patch_and_delete(admin, planner, staff, machine):
    created = planner.put(SCHEDULES, json=SCHEDULE | {"machine_id": machine.id})
    schedule = created.json
    path = f"{SCHEDULES}{schedule['id']}"
    assert admin.patch(path, json={"time_of_day": "09:30", "interval": 2}).status_code == 200
    assert planner.delete(path).status_code == 204

    first, second, last = history(staff, path)
    assert (first["action"], first["user_id"]) == ("created", planner.user.id)
    assert first["changes"] == {name: [None, value] for name, value in schedule.items()}
    assert first["changes"]["time_of_day"] == [None, "08:00:00"]
    assert first["changes"]["duration"] == [None, 60]
    assert (second["action"], second["user_id"]) == ("changed", admin.user.id)
    # time_of_day sent alone sets times_of_day to that one time: both changed.
    assert second["changes"] == {
        "time_of_day": ["08:00:00", "09:30:00"],
        "times_of_day": [["08:00:00"], ["09:30:00"]],
        "interval": [1, 2],
    }
    assert (last["action"], last["user_id"], last["changes"]) == ("deleted", planner.user.id, {})


def test_deleting_a_schedule_records_the_change_of_its_holds(
    planner, staff, machine, make_schedule, session, runner
):
    # Created ten days ago: the run makes holds from a day back to a week ahead.
    now = datetime.now(UTC).replace(microsecond=0)
    created = now - timedelta(days=10)
    schedule = make_schedule(machine, created=created, time_of_day=now.time())
    schedule_id = schedule.id
    run = runner.invoke(args=["holds", "materialize", "--now", str(int(now.timestamp()))])
    assert run.exit_code == 0, run.output
    made = session.execute(
        select(MachineHold.id, MachineHold.start).where(MachineHold.schedule_id == schedule_id)
    ).all()
    started = [hold_id for hold_id, start in made if start <= now]
    coming = [hold_id for hold_id, start in made if start > now]
    assert (len(started), len(coming)) == (2, 7)  # yesterday, now; the next seven days
    by_hand = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"}).json

    assert planner.delete(f"{SCHEDULES}{schedule_id}").status_code == 204
    for hold_id in started:
        (entry,) = history(staff, f"{HOLDS}{hold_id}")
        assert entry["action"] == "changed"
        assert entry["user_id"] == planner.user.id
        assert entry["changes"] == {"schedule_id": [schedule_id, None]}
        assert staff.get(f"{HOLDS}{hold_id}").json["schedule_id"] is None
    for hold_id in coming:
        (entry,) = history(staff, f"{HOLDS}{hold_id}")
        assert (entry["action"], entry["user_id"]) == ("deleted", planner.user.id)
        assert staff.get(f"{HOLDS}{hold_id}").status_code == 404
    assert [e["action"] for e in history(staff, f"{HOLDS}{by_hand['id']}")] == ["created"]


def test_holds_made_by_the_materializer_have_no_created_entry(
    staff, machine, make_schedule, session, runner
):
    make_schedule(machine)
    now = datetime(2027, 1, 4, 12, tzinfo=UTC)
    run = runner.invoke(args=["holds", "materialize", "--now", str(int(now.timestamp()))])
    assert "created=8" in run.output
    assert entries(session) == 0
    hold_id = session.scalars(select(MachineHold.id)).first()
    path = f"{HOLDS}{hold_id}"
    assert history(staff, path) == []  # it exists, and nothing happened to it over the API
    assert staff.patch(path, json={"notes": "moved"}).status_code == 200
    (entry,) = history(staff, path)
    assert (entry["action"], entry["changes"]) == ("changed", {"notes": ["", "moved"]})


def test_history_of_an_id_that_never_existed_is_404(staff, machine):
    assert_envelope(staff.get(f"{HOLDS}999/history"), 404)
    assert_envelope(staff.get(f"{SCHEDULES}999/history"), 404)
    # A hold's id is not a schedule's.
    hold = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"}).json
    assert len(history(staff, f"{HOLDS}{hold['id']}")) == 1
    assert_envelope(staff.get(f"{SCHEDULES}{hold['id']}/history"), 404)


def test_history_needs_a_token(client):
    assert_envelope(client.get(f"{HOLDS}1/history"), 401)


def test_failed_requests_record_nothing(staff, planner, machine, session):
    hold = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r", "start": START}).json
    path = f"{HOLDS}{hold['id']}"
    before = entries(session)
    assert_envelope(staff.patch(path, json={"end": START - 1}), 422)
    assert_envelope(staff.patch(path, json={"machine_id": 999}), 422)
    assert_envelope(staff.delete(path), 403)
    assert_envelope(staff.put(SCHEDULES, json=SCHEDULE | {"machine_id": machine.id}), 403)
    assert_envelope(planner.put(SCHEDULES, json=SCHEDULE | {"frequency": "X"}), 422)
    assert entries(session) == before


@pytest.mark.parametrize("step", ["create", "patch", "delete"])
def test_a_change_that_fails_at_commit_records_nothing(
    staff, planner, machine, session, monkeypatch, step
):
    """The entry is in the change's transaction: lost with it."""
    hold = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"}).json
    before = entries(session)
    path = f"{HOLDS}{hold['id']}"

    def lose_connection(self):
        self.flush()  # the statements reached the database; the COMMIT does not
        raise OperationalError("COMMIT", {}, Exception("lost"), connection_invalidated=True)

    monkeypatch.setattr(Session, "commit", lose_connection)
    if step == "create":
        r = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"})
    elif step == "patch":
        r = staff.patch(path, json={"notes": "n"})
    else:
        r = planner.delete(path)
    monkeypatch.undo()
    assert_envelope(r, 503)
    assert entries(session) == before
    assert [e["action"] for e in history(staff, path)] == ["created"]


def test_entries_stay_when_their_user_is_deleted(staff, machine, session):
    hold = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"}).json
    session.delete(session.get(User, staff.user.id))
    session.commit()
    session.expire_all()
    (entry,) = session.scalars(select(HistoryEntry).where(HistoryEntry.object_id == hold["id"]))
    assert (entry.action, entry.user_id) == ("created", None)


def test_values_are_in_the_wire_format(staff, machine):
    start = datetime(2027, 3, 1, 8, 0, 0, 500_000, tzinfo=UTC)
    hold = staff.put(
        HOLDS, json={"machine_id": machine.id, "reason": "r", "start": start.isoformat()}
    ).json
    path = f"{HOLDS}{hold['id']}"
    later = start + timedelta(hours=2)
    assert staff.patch(path, json={"end": later.isoformat()}).status_code == 200
    created, changed = history(staff, path)
    assert created["changes"]["start"] == [None, start.timestamp()]
    assert changed["changes"] == {"end": [None, later.timestamp()]}
