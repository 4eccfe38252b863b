"""``GET /api/machines/<id>``: is the machine held at an instant, by which holds, and when is its
next hold (docs/API.md, Machine status)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pytm4srv.models import MachineHold

MACHINES = "/api/machines/"
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
H = 3600


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def holds(session, make_machine, make_schedule):
    """Two machines' holds by letter; the other machine's holds never show."""
    lathe, mill, idle = make_machine("lathe"), make_machine("mill"), make_machine("idle")
    schedule = make_schedule(lathe)
    rows = {
        # name: (machine, start offset h, end offset h or None, made by the schedule)
        "a": (lathe, 0, 2, False),
        "b": (lathe, 2, 3, True),  # starts where a ends
        "c": (lathe, 1, None, False),  # indefinite
        "d": (lathe, 5, 6, True),
        "e": (lathe, 5, 7, False),  # same start as d: after it by id
        "x": (mill, -1, None, False),
    }
    ids = {}
    for name, (machine, start, end, scheduled) in rows.items():
        hold = MachineHold(
            machine_id=machine.id,
            schedule_id=schedule.id if scheduled else None,
            reason=name,
            start=ts(T0 + start * H),
            end=None if end is None else ts(T0 + end * H),
        )
        session.add(hold)
        session.flush()
        ids[name] = hold.id
    session.commit()
    return {"ids": ids, "lathe": lathe, "mill": mill, "idle": idle}


@pytest.mark.parametrize(
    ("machine", "at", "held", "active", "following"),
    [
        ("lathe", T0 - H, False, "", "a"),
        ("lathe", T0, True, "a", "c"),
        ("lathe", T0 + H, True, "ac", "b"),  # c starts at T: in effect
        ("lathe", T0 + 2 * H, True, "cb", "d"),  # a ends at T: no longer
        ("lathe", T0 + 2 * H - 0.5, True, "ac", "b"),
        ("lathe", T0 + 5 * H, True, "cde", None),  # d and e start at T: none starts after
        ("lathe", T0 + 100 * H, True, "c", None),  # only the indefinite hold
        ("mill", T0, True, "x", None),
        ("idle", T0, False, "", None),
    ],
)
def test_status_at_an_instant(staff, holds, machine, at, held, active, following):
    ids, machine = holds["ids"], holds[machine]
    r = staff.get(f"{MACHINES}{machine.id}?at={at}")
    assert r.status_code == 200, r.json
    body = r.json
    assert list(body) == ["id", "name", "held", "active_holds", "next_hold"]
    assert (body["id"], body["name"], body["held"]) == (machine.id, machine.name, held)
    assert [hold["id"] for hold in body["active_holds"]] == [ids[name] for name in active]
    if following is None:
        assert body["next_hold"] is None
    else:
        assert body["next_hold"]["id"] == ids[following]


def test_status_shows_holds_as_the_hold_endpoint_does(staff, holds):
    lathe, ids = holds["lathe"], holds["ids"]
    body = staff.get(f"{MACHINES}{lathe.id}?at=2027-01-15T10:00:00%2B01:00").json  # T0 + H
    for hold in [*body["active_holds"], body["next_hold"]]:
        assert staff.get(f"/api/machines/holds/{hold['id']}").json == hold
    assert body["next_hold"]["id"] == ids["b"] and body["next_hold"]["schedule_id"] is not None


def test_status_defaults_to_now(staff, session, machine):
    now = datetime.now(UTC).timestamp()
    for name, start, end in [("past", -7200, -3600), ("now", -60, None), ("soon", 3600, 7200)]:
        hold = MachineHold(
            machine_id=machine.id,
            reason=name,
            start=ts(now + start),
            end=None if end is None else ts(now + end),
        )
        session.add(hold)
    session.commit()
    body = staff.get(f"{MACHINES}{machine.id}").json
    assert body["held"] is True
    assert [hold["reason"] for hold in body["active_holds"]] == ["now"]
    assert body["next_hold"]["reason"] == "soon"


@pytest.mark.parametrize("machine_id", ["424242", "2147483648", "99999999999999999999", "-1", "x"])
def test_unknown_machine_is_404(staff, machine_id):
    r = staff.get(f"{MACHINES}{machine_id}")
    assert r.status_code == 404
    assert r.json["code"] == 404


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("at=soon", "at"),
        ("at=2027-01-15T08:00:00", "at"),  # naive
        ("at=nan", "at"),
        ("at=inf", "at"),
        ("at=1e20", "at"),
        ("at=", "at"),
        ("at=true", "at"),
        ("at=1&at=2", "at"),
        ("when=1", "when"),
    ],
)
def test_status_rejects_malformed_instants(staff, machine, query, param):
    r = staff.get(f"{MACHINES}{machine.id}?{query}")
    assert r.status_code == 422, r.json
    assert param in r.json["errors"]["query"]


def test_status_needs_a_token(client, machine):
    r = client.get(f"{MACHINES}{machine.id}")
    assert r.status_code == 401
    assert r.json["code"] == 401


@pytest.mark.parametrize(
    ("machine", "start", "until", "held", "active", "following"),
    [
        # lathe: a [0, 2), b [2, 3), c [1, ...), d [5, 6), e [5, 7)
        ("lathe", -3, -1, False, "", "a"),
        ("lathe", -1, 0, False, "", "a"),  # a starts at until: not in the span, but next
        ("lathe", -1, 0.5, True, "a", "c"),
        ("lathe", 0.5, 2, True, "ac", "b"),  # b starts at until: next, not held in it
        ("lathe", 2, 5, True, "cb", "d"),  # a ends at from: not in the span
        ("lathe", 3, 6, True, "cde", None),
        ("mill", -5, -2, False, "", "x"),
        ("idle", 0, 10, False, "", None),
    ],
)
def test_status_in_a_span(staff, holds, machine, start, until, held, active, following):
    ids, machine = holds["ids"], holds[machine]
    query = f"from={T0 + start * H:.0f}&until={T0 + until * H:.0f}"
    body = staff.get(f"{MACHINES}{machine.id}?{query}").json
    assert body["held"] is held
    assert [hold["id"] for hold in body["active_holds"]] == [ids[name] for name in active]
    assert (body["next_hold"] or {}).get("id") == (ids[following] if following else None)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (f"at={T0}&from={T0}&until={T0 + H}", "at"),
        (f"from={T0}", "until"),
        (f"until={T0}", "from"),
        (f"from={T0}&until={T0}", "until"),
        (f"from={T0 + H}&until={T0}", "until"),
    ],
)
def test_a_span_that_is_not_one_is_invalid_naming_the_parameter(staff, holds, query, named):
    answer = staff.get(f"{MACHINES}{holds['lathe'].id}?{query}")
    assert answer.status_code == 422
    assert named in answer.json["errors"]["query"]
