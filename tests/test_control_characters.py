"""Control characters: refused in names and text (tab, CR and LF allowed in reasons and notes),
and never written into the calendar feed, not even from rows stored before."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from pytm4srv.models import Machine, MachineHold, MachineHoldSchedule, User
from tests.feed.test_feed import events_of, path_of

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
CONTROLS = ["\x01", "\x07", "\x1b", "\x1f", "\x7f", "\x0b", "\x0c"]


@pytest.fixture
def feed_path(staff) -> str:
    return path_of(staff.post("/api/me/feed").json["url"])


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("char", CONTROLS)
@pytest.mark.parametrize("name", ["reason", "notes"])
def test_a_hold_with_a_control_character_is_invalid_naming_the_field(
    staff, machine, session, name, char
):
    body = {"machine_id": machine.id, "reason": "r"} | {name: f"a{char}b"}
    answer = staff.put(HOLDS, json=body)
    assert answer.status_code == 422
    assert list(answer.json["errors"]["json"]) == [name]
    assert "control characters" in answer.json["errors"]["json"][name][0]
    assert count(session, MachineHold) == 0


@pytest.mark.parametrize("name", ["reason", "notes"])
def test_tab_cr_and_lf_are_allowed_in_reasons_and_notes(staff, machine, name):
    text = "line one\r\nline two\n\tindented"
    answer = staff.put(HOLDS, json={"machine_id": machine.id, "reason": "r"} | {name: text})
    assert answer.status_code == 201, answer.json
    assert answer.json[name] == text


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\x01", "\x7f"])
def test_a_schedule_name_refuses_every_control_character(planner, machine, session, char):
    body = {
        "machine_id": machine.id,
        "name": f"weekly{char}",
        "reason": "r",
        "frequency": "W",
        "time_of_day": "07:00",
    }
    answer = planner.put(SCHEDULES, json=body)
    assert answer.status_code == 422
    assert list(answer.json["errors"]["json"]) == ["name"]
    assert count(session, MachineHoldSchedule) == 0


def test_a_schedule_reason_takes_lines_but_not_other_controls(planner, machine):
    body = {"machine_id": machine.id, "name": "n", "frequency": "W", "time_of_day": "07:00"}
    assert planner.put(SCHEDULES, json=body | {"reason": "a\nb"}).status_code == 201
    answer = planner.put(SCHEDULES, json=body | {"reason": "a\x02b"})
    assert answer.status_code == 422 and list(answer.json["errors"]["json"]) == ["reason"]


@pytest.mark.parametrize("char", ["\n", "\x00", "\x7f"])
def test_a_machine_name_refuses_control_characters(admin, session, char):
    before = count(session, Machine)
    answer = admin.put("/api/machines/", json={"name": f"mill{char}3"})
    assert answer.status_code == 422 and list(answer.json["errors"]["json"]) == ["name"]
    assert count(session, Machine) == before


@pytest.mark.parametrize("group", ["users", "machines"])
def test_the_commands_refuse_names_with_control_characters(runner, session, group):
    model = User if group == "users" else Machine
    before = count(session, model)
    options = ["--role", "staff"] if group == "users" else []
    result = runner.invoke(args=[group, "create", "bad\x1bname", *options])
    assert result.exit_code != 0
    assert "control characters" in result.output
    assert count(session, model) == before


def test_the_feed_writes_no_control_character_of_rows_stored_before(
    session,
    machine,
    client,
    feed_path,
):
    now = datetime.now(UTC)
    session.add(
        MachineHold(
            machine_id=machine.id,
            reason="spindle\x01\x1b[31m",
            notes="bell\x07 tab\there\r\nnext line\x7f",
            start=now,
            end=now + timedelta(hours=1),
        )
    )
    session.commit()
    answer = client.get(feed_path)
    raw = answer.get_data()
    # Unfolded, the only control characters left are the CRLF line ends.
    assert not re.search(rb"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f]", raw)
    assert not re.search(rb"[^\r]\n", raw)
    (event,) = events_of(answer).values()
    assert str(event["SUMMARY"]).endswith("spindle[31m")
    assert str(event["DESCRIPTION"]) == "bell tab here\nnext line"


def test_a_hold_made_by_a_schedule_keeps_the_description_of_its_fire(
    staff,
    make_schedule,
    runner,
    client,
    feed_path,
    session,
):
    now = datetime.now(UTC).replace(microsecond=0)
    schedule = make_schedule(
        created=now - timedelta(days=1), time_of_day=now.time(), duration=timedelta(hours=1)
    )
    before = events_of(client.get(feed_path))
    (fire_uid,) = [uid for uid in before if uid.startswith(f"fire-{schedule.id}-")][:1]
    assert str(before[fire_uid]["DESCRIPTION"]) == "Planned by the schedule 'nightly'."
    result = runner.invoke(args=["holds", "materialize", "--now", str(int(now.timestamp()))])
    assert result.exit_code == 0, result.output
    after = events_of(client.get(feed_path))
    assert after[fire_uid]["STATUS"] == "CONFIRMED"
    assert str(after[fire_uid]["DESCRIPTION"]) == "Planned by the schedule 'nightly'."
    hold = session.scalars(
        select(MachineHold).where(MachineHold.fire == after[fire_uid].decoded("DTSTART"))
    ).one()
    assert staff.patch(f"{HOLDS}{hold.id}", json={"notes": "belt worn"}).status_code == 200
    noted = events_of(client.get(feed_path))[fire_uid]
    assert str(noted["DESCRIPTION"]) == "Planned by the schedule 'nightly'.\n\nbelt worn"
