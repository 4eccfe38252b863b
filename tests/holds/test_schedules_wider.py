"""Schedules, wider: several times a day, an end, RRULE in and out, through the API, the
materializer and the migration (docs/RECURRENCE.md, "Several times a day, and an end" and
"RRULE"; docs/API.md).

Expected fires come from the brute-force oracle (tests/recurrence_oracle.py, no engine code) or
python-dateutil, or are written out by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from pytm4srv.db import UTCDateTime, make_engine
from pytm4srv.models import MachineHold, MachineHoldSchedule
from tests.conftest import alembic_config, fresh_database
from tests.recurrence_oracle import oracle_fires

SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = "/api/machines/holds/schedules/previewSchedule"
ZONES = ("UTC", "America/Chicago", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def unix(*args: int) -> int:
    return int(at(*args).timestamp())


def instants(numbers: list[int]) -> list[datetime]:
    return [datetime.fromtimestamp(n, UTC) for n in numbers]


@pytest.fixture
def body(machine):
    return {
        "machine_id": machine.id,
        "name": "shift check",
        "reason": "check",
        "frequency": "D",
        "times_of_day": ["18:00", "06:00"],
        "anchor": unix(2027, 1, 4),
        "duration": 30,
    }


def schedule_count(session) -> int:
    return session.scalar(select(func.count()).select_from(MachineHoldSchedule))


# -- times_of_day and time_of_day --------------------------------------------------------------


def test_times_of_day_are_answered_ascending_with_time_of_day_the_earliest(planner, body):
    s = planner.put(SCHEDULES, json=body)
    assert s.status_code == 201, s.json
    assert s.json["times_of_day"] == ["06:00:00", "18:00:00"]
    assert s.json["time_of_day"] == "06:00:00"
    assert s.json["summary"] == "Every day at 06:00 and 18:00 (UTC), for 30 minutes"
    assert s.json["until"] is None


def test_time_of_day_alone_sets_times_of_day_to_that_one_time(planner, body):
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"time_of_day": "07:30"})
    assert r.status_code == 200
    assert (r.json["time_of_day"], r.json["times_of_day"]) == ("07:30:00", ["07:30:00"])
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"times_of_day": ["22:00", "14:00"]})
    assert (r.json["time_of_day"], r.json["times_of_day"]) == ("14:00:00", ["14:00:00", "22:00:00"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_of_day": "07:00", "times_of_day": ["06:00", "18:00"]}, "time_of_day"),
        ({"times_of_day": ["06:00", "06:00:00"]}, "times_of_day"),
        ({"times_of_day": []}, "times_of_day"),
        (
            {"times_of_day": [f"{h:02d}:{m:02d}" for h in range(13) for m in (0, 30)]},
            "times_of_day",
        ),
        ({"times_of_day": ["25:00"]}, "times_of_day"),
        ({"until": "tomorrow"}, "until"),
    ],  # fmt: skip
)
def test_bad_times_and_until_are_invalid_naming_the_field_and_write_nothing(
    planner, body, session, change, field
):
    count = schedule_count(session)
    r = planner.put(SCHEDULES, json=body | change)
    assert r.status_code == 422
    assert field in r.json["errors"]["json"]
    assert schedule_count(session) == count


def test_a_creation_with_neither_time_field_is_invalid_naming_time_of_day(planner, body):
    del body["times_of_day"]
    r = planner.put(SCHEDULES, json=body)
    assert r.status_code == 422 and "time_of_day" in r.json["errors"]["json"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    zone=st.sampled_from(ZONES),
    frequency=st.sampled_from("MWDH"),
    hours=st.lists(
        st.sampled_from([0, 1, 2, 3, 6, 12, 18, 23]), min_size=1, max_size=4, unique=True
    ),  # fmt: skip
    minute=st.sampled_from([0, 30, 45]),
    weekdays=st.sampled_from([127, 31, 64]),
    indices=st.sampled_from([[], [1], [-1, 2]]),
    start=st.integers(0, 3 * 366 * 86400),
)
def test_the_preview_of_several_times_is_the_oracles(
    planner, machine, zone, frequency, hours, minute, weekdays, indices, start
):
    times = [time(h, minute) for h in hours]
    sent = {
        "frequency": frequency,
        "times_of_day": [t.isoformat() for t in times],
        "weekdays": weekdays,
        "indices": indices,
        "timezone": zone,
        "anchor": unix(2027, 1, 6, 12),
    }
    after = at(2027, 1, 1) + timedelta(seconds=start)
    r = planner.post(f"{PREVIEW}?count=40&start={int(after.timestamp())}", json=sent)
    assert r.status_code == 200, r.json
    window = {"M": 400, "W": 120, "D": 30, "H": 3}[frequency]
    expected = oracle_fires(
        frequency=frequency, time_of_day=min(times), times_of_day=times, interval=1,
        indices=indices, months=4095, weekdays=weekdays, anchor=at(2027, 1, 6, 12),
        zone=ZoneInfo(zone), after=after, until=after + timedelta(days=window),
    )  # fmt: skip
    got = instants(r.json)
    assert got[: len(expected)] == expected[:40]


# -- until --------------------------------------------------------------------------------------


def test_until_ends_the_preview_the_next_fire_and_the_summary(planner, body):
    body |= {"until": unix(2027, 1, 5, 6), "timezone": "Europe/Berlin"}
    s = planner.put(SCHEDULES, json=body).json
    assert s["until"] == unix(2027, 1, 5, 6)
    assert s["summary"].endswith(", until 2027-01-05 07:00")
    r = planner.post(f"{PREVIEW}?count=10&start={unix(2027, 1, 4)}", json={"id": s["id"]})
    # 06:00 and 18:00 in Berlin (UTC+1): 05:00 and 17:00 UTC; the last is 05:00 on the 5th.
    assert instants(r.json) == [at(2027, 1, 4, 5), at(2027, 1, 4, 17), at(2027, 1, 5, 5)]
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"until": unix(2027, 1, 3)})
    assert r.json["next_fire"] is None
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"until": None})
    assert r.json["until"] is None and r.json["next_fire"] is not None


def test_the_materializer_makes_a_hold_per_time_and_none_after_until(
    planner, body, runner, session
):
    body |= {"until": unix(2027, 1, 5, 6), "anchor": unix(2027, 1, 3)}
    s = planner.put(SCHEDULES, json=body).json
    session.execute(
        text("UPDATE machine_hold_schedules SET created = :c WHERE id = :id"),
        {"c": at(2027, 1, 3), "id": s["id"]},
    )
    now = unix(2027, 1, 3)
    result = runner.invoke(
        args=["holds", "materialize", "--now", str(now), "--horizon", str(7 * 24 * 60)]
    )
    assert result.exit_code == 0, result.output
    starts = session.scalars(
        select(MachineHold.start).where(MachineHold.schedule_id == s["id"]).order_by("start")
    ).all()
    assert [t.astimezone(UTC) for t in starts] == [
        at(2027, 1, 3, 6), at(2027, 1, 3, 18), at(2027, 1, 4, 6), at(2027, 1, 4, 18),
        at(2027, 1, 5, 6),
    ]  # fmt: skip


# -- rrule out ----------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    zone=st.sampled_from(ZONES),
    frequency=st.sampled_from("YMWDH"),
    hours=st.lists(st.sampled_from([0, 2, 7, 19]), min_size=1, max_size=3, unique=True),
    weekdays=st.sampled_from([127, 31, 5]),
    indices=st.sampled_from([[], [1], [-1]]),
    interval=st.sampled_from([1, 2, 3]),
)
def test_the_answered_rrule_expands_to_the_preview(
    planner, body, zone, frequency, hours, weekdays, indices, interval
):
    sent = body | {
        "frequency": frequency, "times_of_day": [f"{h:02d}:15" for h in hours],
        "weekdays": weekdays, "indices": indices, "interval": interval, "timezone": zone,
    }  # fmt: skip
    s = planner.put(SCHEDULES, json=sent).json
    text_ = s["rrule"]
    assert text_ is not None and text_.startswith(f"DTSTART;TZID={zone}:")
    first = rrulestr(text_, forceset=True)[0].astimezone(UTC)
    preview = planner.post(
        f"{PREVIEW}?count=30&start={int(first.timestamp()) - 1}", json={"id": s["id"]}
    ).json
    fires = instants(preview)
    expanded = rrulestr(text_, forceset=True).between(first, fires[-1], inc=True)
    assert sorted({d.astimezone(UTC) for d in expanded}) == fires


def test_a_schedule_no_rrule_states_answers_null(planner, body):
    # The first weekday of each week, January only: python-dateutil does not count a weekly
    # BYSETPOS over whole weeks, so no text expands exactly.
    sent = {"frequency": "W", "weekdays": 31, "indices": [1], "months": 1}
    s = planner.put(SCHEDULES, json=body | sent).json
    assert s["rrule"] is None and s["next_fire"] is not None


# -- rrule in -----------------------------------------------------------------------------------

RULE = (
    "DTSTART;TZID=America/Chicago:20270104T060000\r\n"
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;BYHOUR=6,18;BYMINUTE=0;BYSECOND=0;\r\n"
    " UNTIL=20270301T000000Z\r\n"
    "EXDATE:20270106T120000Z"
)


def test_a_schedule_created_from_an_rrule_has_its_fields_and_answers_it_back(planner, machine):
    sent = {"machine_id": machine.id, "name": "n", "reason": "r", "rrule": RULE}
    s = planner.put(SCHEDULES, json=sent)
    assert s.status_code == 201, s.json
    s = s.json
    assert (s["frequency"], s["interval"], s["weekdays"]) == ("W", 2, 0b10101)
    assert s["times_of_day"] == ["06:00:00", "18:00:00"]
    assert (s["timezone"], s["anchor"]) == ("America/Chicago", unix(2027, 1, 4, 12))
    assert (s["until"], s["skip"]) == (unix(2027, 3, 1), [unix(2027, 1, 6, 12)])
    # Read back: the same fires as the rule sent.
    expected = sorted(d.astimezone(UTC) for d in rrulestr(RULE.replace("\r\n ", ""), forceset=True))
    preview = planner.post(f"{PREVIEW}?count=100&start={unix(2027, 1, 1)}", json={"id": s["id"]})
    assert instants(preview.json) == expected
    again = sorted(d.astimezone(UTC) for d in rrulestr(s["rrule"], forceset=True))
    assert again == expected


def test_an_rrule_alone_keeps_the_anchor_and_zone_on_patch(planner, body):
    s = planner.put(SCHEDULES, json=body | {"timezone": "Europe/Berlin"}).json
    r = planner.patch(
        f"{SCHEDULES}{s['id']}", json={"rrule": "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0;COUNT=3"}
    )
    assert r.status_code == 200, r.json
    assert (r.json["anchor"], r.json["timezone"]) == (s["anchor"], "Europe/Berlin")
    assert r.json["times_of_day"] == ["09:00:00"]
    assert r.json["until"] == unix(2027, 1, 6, 8)  # the third 09:00 Berlin from the anchor


def test_a_preview_takes_an_rrule(planner):
    r = planner.post(f"{PREVIEW}?count=3&start={unix(2027, 1, 1)}", json={"rrule": RULE})
    assert r.status_code == 200, r.json
    # 06:00 and 18:00 Chicago (UTC-6); 06:00 on the 6th is skipped (EXDATE).
    assert instants(r.json) == [at(2027, 1, 4, 12), at(2027, 1, 5, 0), at(2027, 1, 7, 0)]


@pytest.mark.parametrize("other", ["frequency", "time_of_day", "until", "skip", "timezone",
                                   "anchor", "times_of_day"])  # fmt: skip
def test_an_rrule_sent_with_a_field_it_sets_is_invalid_naming_rrule(planner, body, session, other):
    values = {"frequency": "D", "time_of_day": "08:00", "until": None, "skip": [],
              "timezone": "UTC", "anchor": unix(2027, 1, 1), "times_of_day": ["08:00"]}  # fmt: skip
    count = schedule_count(session)
    sent = {k: v for k, v in body.items() if k in ("machine_id", "name", "reason")}
    r = planner.put(SCHEDULES, json=sent | {"rrule": RULE, other: values[other]})
    assert r.status_code == 422
    assert "rrule" in r.json["errors"]["json"]
    assert schedule_count(session) == count


@pytest.mark.parametrize(
    ("rule", "part"),
    [
        ("RRULE:FREQ=MINUTELY;INTERVAL=15", "FREQ=MINUTELY"),
        ("RRULE:FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", "BYWEEKNO"),
        ("RRULE:FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "BYMONTHDAY together with BYDAY"),
        ("RRULE:FREQ=MONTHLY;BYDAY=1MO,2TU", "ordinals that differ between weekdays"),
        ("RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU", "WKST=SU"),
    ],
)
def test_a_rule_the_schedule_cannot_state_is_invalid_naming_the_part(
    planner, body, session, rule, part
):
    s = planner.put(SCHEDULES, json=body).json
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"rrule": rule})
    assert r.status_code == 422
    (message,) = r.json["errors"]["json"]["rrule"]
    assert part in message
    unchanged = planner.get(f"{SCHEDULES}{s['id']}").json
    assert unchanged == s


# -- migration ----------------------------------------------------------------------------------


def test_migration_0012_keeps_every_schedules_fires(tmp_path):
    with fresh_database(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0011_replanning")
        engine = make_engine(url)
        try:
            schedules = sa.table(
                "machine_hold_schedules",
                *(sa.column(name) for name in ("id", "machine_id", "name", "reason",
                                               "frequency", "interval", "months", "weekdays")),
                sa.column("indices", sa.JSON), sa.column("skip", sa.JSON),
                sa.column("time_of_day", sa.Time),
                *(sa.column(name, UTCDateTime()) for name in ("anchor", "created", "modified")),
            )  # fmt: skip
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO machines (id, name) VALUES (1, 'm')"))
                conn.execute(
                    schedules.insert().values(
                        id=7, machine_id=1, name="n", reason="r", frequency="D", interval=1,
                        months=4095, weekdays=127, indices=[], skip=[],
                        time_of_day=time(6, 30, 15), anchor=at(2027, 1, 1),
                        created=at(2027, 1, 1), modified=at(2027, 1, 1),
                    )
                )  # fmt: skip
            command.upgrade(config, "head")
            with engine.connect() as conn:
                row = conn.execute(
                    text("SELECT times_of_day, until FROM machine_hold_schedules WHERE id = 7")
                ).one()
        finally:
            engine.dispose()
    times, until = row
    if isinstance(times, str):  # SQLite answers JSON as text
        import json

        times = json.loads(times)
    assert (times, until) == (["06:30:15"], None)


def test_the_detailed_preview_shows_each_time_and_shifts_per_fire(planner):
    # 2027-03-14 in Chicago: 02:30 does not exist (moved to 03:30 CDT, shifted); 07:00 is kept.
    sent = {"frequency": "D", "times_of_day": ["02:30", "07:00"], "timezone": "America/Chicago",
            "anchor": unix(2027, 3, 1), "duration": 60}  # fmt: skip
    r = planner.post(f"{PREVIEW}?count=4&detail=1&start={unix(2027, 3, 13, 12)}", json=sent)
    assert r.status_code == 200, r.json
    got = [(f["local"], f["shifted"]) for f in r.json]
    assert got == [
        ("2027-03-13T07:00:00-06:00", False),
        ("2027-03-14T03:30:00-05:00", True),
        ("2027-03-14T07:00:00-05:00", False),
        ("2027-03-15T02:30:00-05:00", False),
    ]
    assert [f["end"] - f["start"] for f in r.json] == [3600] * 4


def test_a_change_of_times_reaches_the_coming_holds(planner, body, runner, session):
    s = planner.put(SCHEDULES, json=body | {"anchor": unix(2027, 1, 3)}).json
    session.execute(
        text("UPDATE machine_hold_schedules SET created = :c WHERE id = :id"),
        {"c": at(2027, 1, 3), "id": s["id"]},
    )
    session.commit()
    result = runner.invoke(
        args=["holds", "materialize", "--now", str(unix(2027, 1, 3)), "--horizon", "4320"]
    )
    assert result.exit_code == 0, result.output
    r = planner.patch(f"{SCHEDULES}{s['id']}", json={"times_of_day": ["08:00", "20:00"]})
    assert r.status_code == 200, r.json
    starts = session.scalars(
        select(MachineHold.start).where(MachineHold.schedule_id == s["id"]).order_by("start")
    ).all()
    # Every hold is still to come (2027): none is left at the old times.
    assert {t.astimezone(UTC).hour for t in starts} == {8, 20}
