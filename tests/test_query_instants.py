"""Instants in query strings: the word ``now``, and an offset whose '+' arrived as a space."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pytm4srv.models import MachineHold

HOLDS = "/api/machines/holds/"


@pytest.fixture
def holds_now(session, machine, staff):
    """A hold in effect now and one that starts in two hours."""
    now = datetime.now(UTC)
    made = [
        MachineHold(
            machine_id=machine.id,
            reason="now",
            start=now - timedelta(hours=1),
            end=now + timedelta(hours=1),
        ),
        MachineHold(machine_id=machine.id, reason="later", start=now + timedelta(hours=2)),
    ]
    session.add_all(made)
    session.commit()
    return made


def test_active_at_now_lists_the_holds_in_effect_now(staff, holds_now):
    answer = staff.get(f"{HOLDS}?active_at=now")
    assert answer.status_code == 200, answer.json
    assert [hold["reason"] for hold in answer.json] == ["now"]


def test_start_after_now_lists_the_coming_holds(staff, holds_now):
    answer = staff.get(f"{HOLDS}?start_after=now")
    assert [hold["reason"] for hold in answer.json] == ["later"]


def test_a_machine_is_held_at_now(staff, holds_now, machine):
    answer = staff.get(f"/api/machines/{machine.id}?at=now")
    assert answer.status_code == 200, answer.json
    assert answer.json["held"] is True
    assert answer.json["next_hold"]["reason"] == "later"


@pytest.mark.parametrize("sent", ["2027-03-01T00:00:00+01:00", "2027-03-01T08:30+0100"])
def test_an_offset_whose_plus_arrived_as_a_space_is_named(staff, sent):
    answer = staff.get(f"{HOLDS}?active_at={sent}")  # '+' unescaped: the server reads a space
    assert answer.status_code == 422
    (message,) = answer.json["errors"]["query"]["active_at"]
    assert "%2B" in message


def test_the_same_offset_sent_as_percent_2b_is_read(staff, holds_now):
    answer = staff.get(f"{HOLDS}?active_at=2027-03-01T00:00:00%2B01:00")
    assert answer.status_code == 200


@pytest.mark.parametrize("sent", ["Now", "now ", "today"])
def test_other_words_are_not_instants(staff, sent):
    answer = staff.get(f"{HOLDS}?active_at={sent}")
    assert answer.status_code == 422
    assert "active_at" in answer.json["errors"]["query"]


def test_the_openapi_document_names_now_for_query_instants(client):
    document = client.get("/api/openapi.json").json
    (parameter,) = [
        p
        for p in document["paths"]["/api/machines/holds/"]["get"]["parameters"]
        if p["name"] == "active_at"
    ]
    assert {"type": "string", "enum": ["now"], "description": "the instant of the request"} in (
        parameter["schema"]["oneOf"]
    )
