"""Schedule rows the API would not have stored, changed in the database by hand: the materializer
processes every other schedule and names the bad one; the API answers them without a 500
(docs/MATERIALIZER.md, Bad rows and locks; docs/API.md, Schedule fields)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

import icalendar
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from pytm4srv.db import WRITE, database
from pytm4srv.holds import schedules as schedules_module
from pytm4srv.holds.materialize import materialize
from pytm4srv.holds.schedules import PATTERN_FIELDS
from pytm4srv.models import MachineHold, MachineHoldSchedule
from pytm4srv.recurrence import Pattern
from tests.conftest import stderr_lines

SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = "/api/machines/holds/schedules/previewSchedule"
NOW = datetime(2027, 1, 4, tzinfo=UTC)  # make_schedule's schedules fire daily at 08:00 from here
FIRST_FIRE = datetime(2027, 1, 4, 8, tzinfo=UTC)
HEALTHY = 20

#: A bad stored value of each kind, written past the API: (column, value, words of its reason,
#: a PATCH body that repairs it). ``skip`` and ``times_of_day`` are raw JSON text: their column
#: types would not write it.
BAD = {
    "indices [0]": ("indices", [0], "indices must be non-zero", {"indices": []}),
    "indices [400]": ("indices", [400], "within -366..366", {"indices": [1]}),
    "indices 'abc'": ("indices", "abc", "indices cannot be read", {"indices": []}),
    "indices null": ("indices", None, "indices cannot be read", {"indices": []}),
    "time_of_day 08:00:00.5": (
        "time_of_day",
        time(8, 0, 0, 500_000),
        "08:00:00.500000",
        {"time_of_day": "08:00"},
    ),
    "duration 0": ("duration", timedelta(0), "duration must be longer than 0", {"duration": 60}),
    "duration -5 min": ("duration", timedelta(minutes=-5), "-5 minutes", {"duration": None}),
    "skip garbage": ("skip", '"soon"', "skip cannot be read", {"skip": []}),
    "skip naive": ("skip", '["2027-01-05T08:00:00"]', "skip cannot be read", {"skip": []}),
    "times_of_day garbage": (
        "times_of_day",
        '"soon"',
        "times_of_day cannot be read",
        {"times_of_day": ["08:00"]},
    ),
    "times_of_day without time_of_day": (
        "times_of_day",
        '["09:00:00"]',
        "is not the earliest of times_of_day",
        {"times_of_day": ["08:00"]},
    ),
    "timezone unknown": (
        "timezone",
        "Mars/Olympus_Mons",
        "'Mars/Olympus_Mons' is unknown",
        {"timezone": "Europe/Berlin"},
    ),
}
VARIANTS = pytest.mark.parametrize("variant", list(BAD))


def spoil(session, schedule_id: int, variant: str) -> None:
    """Store the variant's bad value in the schedule's row, as SQL by hand would."""
    column, value, _, _ = BAD[variant]
    if column in ("skip", "times_of_day"):  # raw JSON text
        statement = text(f"UPDATE machine_hold_schedules SET {column} = :value WHERE id = :id")
        session.execute(statement, {"value": value, "id": schedule_id})
    else:
        where = MachineHoldSchedule.id == schedule_id
        session.execute(update(MachineHoldSchedule).where(where).values({column: value}))
    session.commit()
    session.expire_all()


def repair(session, schedule_id: int, variant: str) -> None:
    """Put the column back to a value the API would store."""
    column = BAD[variant][0]
    value = {"indices": [], "time_of_day": time(8), "duration": None, "timezone": None,
             "times_of_day": (time(8),)}.get(column)  # fmt: skip
    if column == "skip":
        value = ()
    where = MachineHoldSchedule.id == schedule_id
    session.execute(update(MachineHoldSchedule).where(where).values({column: value}))
    session.commit()
    session.expire_all()


@pytest.fixture
def schedules(make_schedule) -> tuple[list[int], int]:
    """HEALTHY daily schedules and one more in the middle of them (the one to spoil), all due
    at NOW; their ids."""
    ids = [make_schedule(name=f"healthy {i}").id for i in range(HEALTHY // 2)]
    bad = make_schedule(name="bad").id
    ids += [make_schedule(name=f"healthy {i}").id for i in range(HEALTHY // 2, HEALTHY)]
    return ids, bad


def holds_by_schedule(session) -> dict[int, list[datetime]]:
    session.expire_all()
    got: dict[int, list[datetime]] = {}
    for hold in session.query(MachineHold).order_by(MachineHold.start):
        got.setdefault(hold.schedule_id, []).append(hold.start)
    return got


def cursor(session, schedule_id: int) -> datetime | None:
    session.expire_all()
    return session.get(MachineHoldSchedule, schedule_id).last_fire


@pytest.fixture(autouse=True)
def bounded() -> Iterator[None]:
    """A run that loops on a bad row fails the test instead of hanging it."""

    def give_up(signum, frame):
        raise TimeoutError("the run did not finish")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def run_materialize(app, **options):
    with database(app).open(WRITE) as run_session:
        return materialize(run_session, NOW, timedelta(hours=12), timedelta(0), UTC, **options)


def invoke(runner, *options: str):
    now = str(int(NOW.timestamp()))
    return runner.invoke(args=["holds", "materialize", "--now", now, "--horizon", "720", *options])


# -- the materializer ------------------------------------------------------------------------------


@VARIANTS
def test_materialize_does_every_other_schedule_and_names_the_bad_one(
    app, session, schedules, variant
):
    healthy, bad = schedules
    spoil(session, bad, variant)
    # Batches of 3: the bad row stays due, and every later batch must still get past it.
    summary = run_materialize(app, batch_size=3)
    assert list(summary.failed) == [bad]
    assert BAD[variant][2] in summary.failed[bad]
    assert (summary.schedules, summary.created) == (HEALTHY, HEALTHY)
    assert holds_by_schedule(session) == {sid: [FIRST_FIRE] for sid in healthy}
    assert cursor(session, bad) is None
    assert all(cursor(session, sid) == FIRST_FIRE for sid in healthy)

    again = run_materialize(app)  # a later run retries it, and fails on it again
    assert (list(again.failed), again.schedules, again.created) == ([bad], 0, 0)

    repair(session, bad, variant)
    fixed = run_materialize(app)
    assert (fixed.failed, fixed.schedules, fixed.created) == ({}, 1, 1)
    assert holds_by_schedule(session)[bad] == [FIRST_FIRE]
    assert cursor(session, bad) == FIRST_FIRE


@VARIANTS
def test_the_command_names_the_bad_schedule_on_stderr_and_exits_1(
    runner, session, schedules, variant
):
    healthy, bad = schedules
    spoil(session, bad, variant)
    result = invoke(runner, "--batch-size", "7")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"materialize: schedules={HEALTHY} created={HEALTHY} ")
    (line,) = stderr_lines(result)
    assert line.startswith(f"schedule {bad}: ")
    assert BAD[variant][2] in line
    assert holds_by_schedule(session) == {sid: [FIRST_FIRE] for sid in healthy}
    assert cursor(session, bad) is None

    repair(session, bad, variant)
    result = invoke(runner)
    assert (result.exit_code, stderr_lines(result)) == (0, [])
    assert "schedules=1 created=1 " in result.stdout
    assert holds_by_schedule(session)[bad] == [FIRST_FIRE]


def test_a_dry_run_names_the_bad_schedule_too_and_writes_nothing(runner, session, schedules):
    _, bad = schedules
    spoil(session, bad, "duration 0")
    result = invoke(runner, "--dry-run")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"materialize: schedules={HEALTHY} created={HEALTHY} ")
    assert result.stdout.rstrip().endswith("dry_run=true")
    assert stderr_lines(result) == [
        f"schedule {bad}: duration must be longer than 0 (stored: 0 minutes)"
    ]
    assert holds_by_schedule(session) == {}


def test_several_bad_schedules_are_each_named_once(runner, session, make_schedule):
    good = make_schedule().id
    bad = [make_schedule().id for _ in BAD]
    for schedule_id, variant in zip(bad, BAD, strict=True):
        spoil(session, schedule_id, variant)
    result = invoke(runner, "--batch-size", "2")
    assert result.exit_code == 1
    assert "schedules=1 created=1 " in result.stdout
    lines = stderr_lines(result)
    assert [line.split(":")[0] for line in lines] == [f"schedule {sid}" for sid in bad]
    for line, variant in zip(lines, BAD, strict=True):
        assert BAD[variant][2] in line
    assert holds_by_schedule(session) == {good: [FIRST_FIRE]}


def test_a_batch_the_database_refuses_is_written_one_schedule_at_a_time(
    app, runner, session, schedules, monkeypatch
):
    """Past the plan's checks (switched off here), a duration of 0 reaches the INSERT, whose
    CHECK (end > start) refuses the batch: the run names the schedule, writes the others."""
    healthy, bad = schedules
    spoil(session, bad, "duration 0")
    unchecked = lambda row: Pattern(**{name: row[name] for name in PATTERN_FIELDS})  # noqa: E731
    monkeypatch.setattr(schedules_module, "pattern_of", unchecked)
    result = invoke(runner, "--batch-size", "50")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"materialize: schedules={HEALTHY} created={HEALTHY} ")
    (line,) = stderr_lines(result)
    assert line.startswith(f"schedule {bad}: its holds cannot be written: ")
    assert "end_after_start" in line
    assert holds_by_schedule(session) == {sid: [FIRST_FIRE] for sid in healthy}
    assert cursor(session, bad) is None


def test_a_schedule_the_database_refuses_counts_no_skipped_fires(
    app, session, make_schedule, monkeypatch
):
    """Its fires stay where they were, for the run that processes it once it is repaired."""
    make_schedule(created=NOW - timedelta(days=3))  # three fires too old for a catch-up of 0
    bad = make_schedule(created=NOW - timedelta(days=3)).id
    spoil(session, bad, "duration 0")
    unchecked = lambda row: Pattern(**{name: row[name] for name in PATTERN_FIELDS})  # noqa: E731
    monkeypatch.setattr(schedules_module, "pattern_of", unchecked)
    summary = run_materialize(app)
    assert list(summary.failed) == [bad]
    assert (summary.schedules, summary.created, summary.skipped) == (1, 1, 3)
    assert cursor(session, bad) is None


@pytest.mark.parametrize(
    "column, value",
    [("frequency", "X"), ("interval", 0), ("months", 4096), ("weekdays", -1)],
)
def test_the_database_itself_refuses_other_bad_pattern_values(
    session, make_schedule, column, value
):
    """The rest of the pattern cannot go bad: CHECK constraints keep it in range."""
    schedule = make_schedule()
    where = MachineHoldSchedule.id == schedule.id
    with pytest.raises(IntegrityError):
        session.execute(update(MachineHoldSchedule).where(where).values({column: value}))
        session.flush()
    session.rollback()


# -- the API ---------------------------------------------------------------------------------------


@VARIANTS
def test_reads_of_a_bad_schedule_answer_without_failing(make_schedule, session, staff, variant):
    good = make_schedule(name="good")
    schedule = make_schedule()
    spoil(session, schedule.id, variant)
    column = BAD[variant][0]
    r = staff.get(f"{SCHEDULES}{schedule.id}")
    assert r.status_code == 200, r.json
    assert r.json["next_fire"] is None  # no run takes it as it is
    if variant != "timezone unknown":  # a zone unknown here is still named in the summary
        assert r.json["summary"] is None
    shown = {
        "indices 'abc'": None,
        "indices null": None,
        "time_of_day 08:00:00.5": None,  # "HH:MM:SS" cannot say it
        "duration 0": 0,
        "duration -5 min": -5,
        "skip garbage": None,
        "skip naive": None,
        "times_of_day garbage": None,
        "times_of_day without time_of_day": ["09:00:00"],
    }.get(variant, BAD[variant][1])
    assert r.json[column] == shown
    listed = staff.get(SCHEDULES)
    assert listed.status_code == 200
    assert listed.json == {
        str(good.id): staff.get(f"{SCHEDULES}{good.id}").json,
        str(schedule.id): r.json,
    }
    assert staff.get(f"{SCHEDULES}?machine={schedule.machine_id}").status_code == 200


@VARIANTS
def test_a_preview_of_a_bad_schedule_names_it_unless_the_body_replaces_the_field(
    make_schedule, session, staff, variant
):
    schedule = make_schedule()
    spoil(session, schedule.id, variant)
    column, _, words, repaired = BAD[variant]
    # The plain preview does not read the duration; the detailed one gives each fire its end.
    path = f"{PREVIEW}?detail=1&count=2"
    r = staff.post(path, json={"id": schedule.id})
    assert r.status_code == 422
    assert list(r.json["errors"]["json"]) == ["id"]
    assert words in r.json["errors"]["json"]["id"][0]
    r = staff.post(path, json={"id": schedule.id} | repaired)
    assert r.status_code == 200, r.json
    assert len(r.json) == 2
    plain = staff.post(PREVIEW, json={"id": schedule.id})
    assert plain.status_code == (200 if column == "duration" else 422)


@VARIANTS
def test_a_patch_must_repair_the_bad_field(make_schedule, session, planner, staff, variant):
    schedule = make_schedule()
    spoil(session, schedule.id, variant)
    column, _, words, repaired = BAD[variant]
    path = f"{SCHEDULES}{schedule.id}"
    before = staff.get(path).json
    r = planner.patch(path, json={"name": "renamed"})
    assert r.status_code == 422
    assert list(r.json["errors"]["json"]) == [column]
    assert words in r.json["errors"]["json"][column][0]
    assert staff.get(path).json == before  # nothing written
    r = planner.patch(path, json=repaired)
    assert r.status_code == 200, r.json
    assert r.json["summary"] is not None
    assert r.json["next_fire"] is not None
    assert planner.patch(path, json={"name": "renamed"}).status_code == 200


@VARIANTS
def test_a_bad_schedule_can_be_deleted(make_schedule, session, planner, variant):
    schedule = make_schedule()
    spoil(session, schedule.id, variant)
    assert planner.delete(f"{SCHEDULES}{schedule.id}").status_code == 204
    assert planner.get(f"{SCHEDULES}{schedule.id}").status_code == 404


@VARIANTS
def test_the_feed_leaves_a_bad_schedules_fires_out_and_still_answers(
    make_schedule, session, staff, variant
):
    created = datetime.now(UTC).replace(microsecond=0)  # the feed's window is around now
    good = make_schedule(name="good", created=created)
    bad = make_schedule(created=created)
    spoil(session, bad.id, variant)
    url = staff.post("/api/me/feed").json["url"]
    r = staff.client.get(urlsplit(url).path)
    assert r.status_code == 200, r.get_data(as_text=True)
    uids = [str(e["UID"]) for e in icalendar.Calendar.from_ical(r.get_data()).walk("VEVENT")]
    assert any(uid.startswith(f"fire-{good.id}-") for uid in uids)
    assert not any(uid.startswith(f"fire-{bad.id}-") for uid in uids)


@VARIANTS
def test_machine_status_answers_beside_a_bad_schedule(app, make_schedule, session, staff, variant):
    schedule = make_schedule()
    make_schedule(name="good")
    spoil(session, schedule.id, variant)
    run_materialize(app)  # the good one's hold, the bad one named
    r = staff.get(f"/api/machines/{schedule.machine_id}?at={int(FIRST_FIRE.timestamp())}")
    assert r.status_code == 200, r.json
    assert r.json["held"] is True
    assert len(r.json["active_holds"]) == 1
