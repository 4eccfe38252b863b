"""What is held when: the hold list's active_at, active_from, active_until and schedule filters
(docs/API.md, Hold list), alone, together, with the other filters and with paging."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from pytm4srv.holds.queries import HELD_AT, NEXT_HOLD, filtered_holds
from pytm4srv.models import MachineHold
from tests.conftest import on_postgresql

HOLDS = "/api/machines/holds/"
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
H = 3600


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def catalogue(session, make_machine, make_caller, make_schedule):
    """Holds named by letter, with known machines, users, schedules, starts and ends."""
    m1, m2, m3 = make_machine("m1"), make_machine("m2"), make_machine("m3")
    alice, bob = make_caller("staff").user, make_caller("planner").user
    s1, s2 = make_schedule(m1, name="s1"), make_schedule(m2, name="s2")
    rows = {
        # name: (machine, user, schedule, start offset h, end offset h or None)
        "a": (m1, alice, None, 0, 2),
        "b": (m1, None, s1, 2, 3),  # starts where a ends
        "c": (m1, bob, None, 1, None),  # indefinite
        "d": (m2, alice, None, -5, 1),
        "e": (m2, None, s2, 3, 4),
        "f": (m3, bob, None, 4, None),  # indefinite
        "g": (m3, None, None, 0, 1),  # a hold whose user was deleted; same start as a
    }
    ids = {}
    for name, (machine, user, schedule, start, end) in rows.items():
        hold = MachineHold(
            machine_id=machine.id,
            user_id=user.id if user else None,
            schedule_id=schedule.id if schedule else None,
            reason=name,
            start=ts(T0 + start * H),
            end=None if end is None else ts(T0 + end * H),
        )
        session.add(hold)
        session.flush()
        ids[name] = hold.id
    session.commit()
    return {"ids": ids, "m": [m1.id, m2.id, m3.id], "u": [alice.id, bob.id], "s": [s1.id, s2.id]}


# In list order: d(-5) a(0) g(0) c(1) b(2) e(3) f(4).
FILTERS = [
    ("", "dagcbef"),
    # in effect at an instant: half-open, [start, end)
    ("active_at={t0}", "dag"),
    ("active_at={t0_iso}", "dag"),
    ("active_at={t1}", "ac"),  # d and g end at t1, c starts at t1
    ("active_at={t2}", "cb"),  # a ends at t2, b starts at t2
    ("active_at={t1m}", "dag"),  # a microsecond before t1
    ("active_at={t10}", "cf"),  # only the indefinite holds
    ("active_at={tm10}", ""),
    # in effect at some instant of [active_from, active_until)
    ("active_from={t1}&active_until={t2}", "ac"),
    ("active_from={t0}&active_until={t1}", "dag"),  # c starts at t1: not in [t0, t1)
    ("active_from={t1}&active_until={t1p}", "ac"),  # one microsecond long
    ("active_from={t3}", "cef"),  # b ends at t3
    ("active_from={t10}", "cf"),
    ("active_until={t0}", "d"),  # a and g start at t0
    ("active_until={t1}", "dag"),
    ("active_until={tm10}", ""),
    ("active_from={tm10}&active_until={t10}", "dagcbef"),
    # made by which schedule
    ("schedule={s0}", "b"),
    ("schedule={s0}&schedule={s1}", "be"),
    ("schedule=0", "dagcf"),
    ("schedule=0&schedule={s1}", "dagcef"),
    ("schedule=999999", ""),
    # with each other and with the other filters
    ("active_at={t0}&active_from={t1}", "a"),  # in effect at t0 and still after t1
    ("active_at={t2}&active_until={t2}", "c"),  # b starts at t2: not before it
    ("active_at={t0}&machine={m0}", "a"),
    ("active_at={t1}&machine={m0}&machine={m1}", "ac"),
    ("active_at={t10}&end=0", "cf"),
    ("active_at={t0}&end=1", "dag"),
    ("active_at={t10}&end=1", ""),
    ("active_at={t1}&end_before={t2}", "a"),
    ("active_at={t1}&end_before={t1}", ""),  # ends after t1 and at or before t1
    ("active_at={t1}&end_before={t5}&end=0", ""),  # open, with an end
    ("active_from={t1}&end_before={t5}&end=0", ""),
    ("active_at={t2}&user=0", "b"),
    ("active_at={t0}&user={u0}", "da"),
    ("active_at={t0}&start_after={tm1}", "ag"),
    ("active_at={t0}&start_after={t0}", ""),
    ("active_at={t2}&schedule=0", "c"),
    ("active_from={t1}&active_until={t5}&schedule=0", "acf"),
    ("active_from={t1}&active_until={t5}&user={u1}&end=0", "cf"),
    ("active_from={t0}&machine={m1}", "de"),
    ("active_from={t3}&end=1", "e"),
    ("active_from={t3}&end_before={t5}", "e"),
    ("active_until={t2}&end=0", "c"),
    ("active_until={t2}&start_after={t0}", "c"),
    ("schedule={s0}&machine={m1}", ""),
    # paging: the filtered list in order, cut
    ("active_at={t0}&limit=2", "da"),
    ("active_at={t0}&limit=2&offset=1", "ag"),
    ("active_at={t0}&offset=3", ""),
    ("active_from={t0}&limit=2&offset=2", "gc"),
    ("active_from={t0}&limit=3&offset=4", "bef"),
    ("active_from={tm10}&active_until={t10}&limit=1&offset=6", "f"),
    ("active_at={t1}&limit=0", ""),
]


@pytest.mark.parametrize(("query", "expected"), FILTERS)
def test_list_filters_by_what_is_held_when(admin, catalogue, query, expected):
    m, u, s, ids = catalogue["m"], catalogue["u"], catalogue["s"], catalogue["ids"]
    query = query.format(
        m0=m[0], m1=m[1], m2=m[2], u0=u[0], u1=u[1], s0=s[0], s1=s[1],
        t0=T0, t1=T0 + H, t2=T0 + 2 * H, t3=T0 + 3 * H, t5=T0 + 5 * H, t10=T0 + 10 * H,
        tm1=T0 - H, tm10=T0 - 10 * H, t1m=T0 + H - 0.000001, t1p=T0 + H + 0.000001,
        t0_iso="2027-01-15T09:00:00%2B01:00",
    )  # fmt: skip
    r = admin.get(f"{HOLDS}?{query}")
    assert r.status_code == 200, r.json
    assert [hold["id"] for hold in r.json] == [ids[name] for name in expected]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("active_at=soon", "active_at"),
        ("active_at=2027-01-15T08:00:00", "active_at"),  # naive
        ("active_at=nan", "active_at"),
        ("active_at=1e20", "active_at"),
        ("active_at=1&active_at=2", "active_at"),
        ("active_from=", "active_from"),
        ("active_until=true", "active_until"),
        ("active_from=100&active_until=100", "active_until"),  # an empty window
        ("active_from=2027-01-15T09:00:00Z&active_until=2027-01-15T08:00:00Z", "active_until"),
        ("schedule=x", "schedule"),
        ("schedule=-1", "schedule"),
        ("schedule=2147483648", "schedule"),
        ("&".join(["schedule=1"] * 101), "schedule"),
        ("active=1", "active"),
        ("schedules=1", "schedules"),
    ],
)
def test_list_rejects_malformed_availability_filters(admin, query, param):
    r = admin.get(f"{HOLDS}?{query}")
    assert r.status_code == 422, r.json
    assert param in r.json["errors"]["query"]


def test_active_list_without_limit_links_the_next_page(admin, session, machine, app):
    """Open and ended holds in effect, merged: every page in order, each hold once."""
    app.config["MAX_PAGE_SIZE"] = 3
    for hour in range(8):
        end = None if hour % 2 else ts(T0 + 100 * H)  # open and ended holds alternate
        session.add(
            MachineHold(machine_id=machine.id, reason="r", start=ts(T0 + hour * H), end=end)
        )
    session.add(MachineHold(machine_id=machine.id, reason="ended", start=ts(T0), end=ts(T0 + H)))
    session.commit()
    url, starts = f"{HOLDS}?active_at={T0 + 50 * H}", []
    for _ in range(4):
        r = admin.get(url)
        assert r.status_code == 200, r.json
        starts += [hold["start"] for hold in r.json]
        if "Link" not in r.headers:
            break
        link = r.headers["Link"]
        assert link.endswith('>; rel="next"') and f"active_at={T0 + 50 * H}" in link
        url = link[1 : link.index(">")]
    assert starts == [T0 + hour * H for hour in range(8)]


def test_requests_with_the_same_availability_filters_share_one_statement():
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    one, values_one = filtered_holds({"active_at": t1, "schedule": [0, 4]}, 11)
    two, values_two = filtered_holds({"active_at": t2, "schedule": [0, 5, 6], "offset": 5}, 3)
    assert one is two
    assert (values_one["active_at"], values_one["schedule"], values_one["part_limit"]) == (
        t1,
        [4],
        11,
    )
    assert (values_two["active_at"], values_two["schedule"], values_two["part_limit"]) == (
        t2,
        [5, 6],
        8,
    )
    assert filtered_holds({"active_at": t1}, 11)[0] is not one
    window = {"active_from": t1, "active_until": t2}
    assert filtered_holds(window, 11)[0] is not filtered_holds({"active_from": t1}, 11)[0]


# -- against a brute-force reading of the rules -------------------------------------------------


def in_effect(hold, at=None, since=None, until=None) -> bool:
    """docs/API.md, Hold list, read literally on (start, end) pairs."""
    start, end = hold
    if at is not None and not (start <= at and (end is None or end > at)):
        return False
    if since is not None and not (end is None or end > since):
        return False
    return until is None or start < until


def test_active_filters_answer_as_the_rules_say(admin, session, make_machine):
    """Random holds (many open, many sharing starts and ends), every combination of the active
    filters with end, machine and paging, compared with the rules applied one hold at a time."""
    rng = random.Random(7)
    machines = [make_machine(f"m{i}").id for i in range(3)]
    grid = [T0 + k * 600 for k in range(40)]  # few distinct instants: many ties and edges
    holds = {}
    for _ in range(90):
        start = rng.choice(grid)
        end = None if rng.random() < 0.35 else start + rng.choice([600, 1200, 3000, 9000])
        hold = MachineHold(
            machine_id=rng.choice(machines),
            reason="r",
            start=ts(start),
            end=ts(end) if end else None,
        )
        session.add(hold)
        session.flush()
        holds[hold.id] = (hold.machine_id, start, end)
    session.commit()
    in_order = sorted(holds, key=lambda i: (holds[i][1], i))
    instants = [grid[5], grid[20] + 300, grid[39] + 9000]
    windows = [(None, None), (grid[10], None), (grid[10], grid[12]), (None, grid[15])]
    checked = 0
    for at, (since, until), end, machine, (limit, offset) in itertools.product(
        [None, *instants], windows, [None, 0, 1], [None, machines[0]], [(1000, 0), (7, 3), (5, 40)]
    ):
        if at is None and since is None:
            continue
        params = {"active_at": at, "active_from": since, "active_until": until, "end": end}
        params |= {"machine": machine, "limit": limit, "offset": offset}
        query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
        expected = [
            i
            for i in in_order
            if in_effect(holds[i][1:], at, since, until)
            and (end is None or (holds[i][2] is not None) == (end == 1))
            and (machine is None or holds[i][0] == machine)
        ][offset : offset + limit]
        r = admin.get(f"{HOLDS}?{query}")
        assert r.status_code == 200, (query, r.json)
        assert [hold["id"] for hold in r.json] == expected, query
        checked += bool(expected)
    assert checked > 100  # most combinations answer holds: the comparison says something


# -- SQLite answers from indexes ----------------------------------------------------------------


def sqlite_plan(connection, statement, params) -> list[str]:
    compiled = statement.compile(dialect=connection.dialect)
    expanded = compiled.construct_expanded_state(params)
    processors = compiled._bind_processors
    values = tuple(
        processors[key](expanded.parameters[key]) if key in processors else expanded.parameters[key]
        for key in expanded.positiontup
    )
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + expanded.statement, values)
    return [row[3] for row in rows]


def reads_every_hold_started_before(line: str) -> bool:
    """A plan line that looks holds up by an upper bound of start alone (``start<?``), through an
    index without end: every hold that started before the instant."""
    condition = line.partition("(")[2]
    return "start<?" in condition and "start>?" not in condition and "end" not in condition


@pytest.mark.skipif(on_postgresql(), reason="SQLite's planner (PostgreSQL: bench/bench_list.py)")
def test_sqlite_answers_what_is_held_when_from_indexes(connection, session, make_machine):
    """The three questions of docs/PERFORMANCE.md (what is held now, a machine's week, a
    machine's status), on a table analyzed as a ten-year history: no scan of machine_holds, and
    the holds in effect are not looked for through the start index (every hold that started
    before now)."""
    rng = random.Random(3)
    machines = [make_machine(f"m{i}").id for i in range(50)]
    now = T0
    rows = []
    for _ in range(5000):
        start = now - rng.randrange(0, 3650 * 24) * H + rng.randrange(0, 60 * 24 * H)
        end = None if rng.random() < 0.02 else start + rng.randrange(1, 48) * H
        rows.append(
            {"machine_id": rng.choice(machines), "reason": "r", "notes": "", "start": ts(start)}
            | {"end": None if end is None else ts(end)}
        )
    session.execute(MachineHold.__table__.insert(), rows)
    session.commit()
    connection.execute(text("ANALYZE"))
    at, week = ts(now), ts(now + 7 * 24 * H)
    questions = [
        filtered_holds({"active_at": at}, 1001),
        filtered_holds({"machine": [machines[0]], "active_from": at, "active_until": week}, 1001),
        (HELD_AT, {"machine_id": machines[0], "active_at": at}),
    ]
    for statement, params in questions:
        plan = sqlite_plan(connection, statement, params)
        reads = [line for line in plan if " machine_holds" in line]
        assert reads and all(line.startswith("SEARCH machine_holds USING") for line in reads), plan
        assert not any(reads_every_hold_started_before(line) for line in reads), plan
    (line,) = sqlite_plan(connection, NEXT_HOLD, {"machine_id": machines[0], "active_at": at})
    assert line.startswith("SEARCH machine_holds USING") and "start>?" in line
