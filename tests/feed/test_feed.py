"""``/api/me``, feed URLs and the calendar feed (docs/FEED.md), read with the icalendar package."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import icalendar
import pytest
from sqlalchemy import select

from pytm4srv.feed import queries
from pytm4srv.feed.models import FeedSecret
from pytm4srv.models import MachineHold
from pytm4srv.users.tokens import hash_token

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
NOW = datetime.now(UTC)
WINDOW = queries.window_at(NOW)


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def feed_path(staff) -> str:
    response = staff.post("/api/me/feed")
    assert response.status_code == 201, response.json
    return path_of(response.json["url"])


def fetch(client, path: str, **kwargs: Any):
    return client.get(path, **kwargs)


def events_of(response) -> dict[str, icalendar.Event]:
    assert response.status_code == 200, response.get_data(as_text=True)
    calendar = icalendar.Calendar.from_ical(response.get_data())
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def make_hold(session, machine, start: datetime, end: datetime | None, **fields) -> MachineHold:
    hold = MachineHold(machine_id=machine.id, reason="oil change", start=start, end=end, **fields)
    session.add(hold)
    session.commit()
    return hold


# -- /api/me and feed URLs ------------------------------------------------------------------


def test_me_answers_the_caller(planner, client):
    response = planner.get("/api/me")
    assert response.status_code == 200
    assert response.json == {"id": planner.user.id, "name": planner.user.name, "role": "planner"}
    assert client.get("/api/me").status_code == 401


def test_a_feed_url_is_absolute_and_its_secret_is_kept_only_as_a_hash(staff, session):
    url = staff.post("/api/me/feed").json["url"]
    assert url.startswith("http://localhost/api/feed/") and url.endswith(".ics")
    secret = path_of(url).removeprefix("/api/feed/").removesuffix(".ics")
    assert len(secret) >= 22  # at least 128 random bits, URL-safe base64
    stored = session.scalars(select(FeedSecret)).one()
    assert stored.user_id == staff.user.id
    assert stored.secret_hash == hash_token(secret)
    assert secret not in stored.secret_hash


def test_the_public_url_setting_makes_the_feed_url(staff, app):
    app.config["PUBLIC_URL"] = "https://holds.example.com/"
    url = staff.post("/api/me/feed", headers={"Host": "evil.example"}).json["url"]
    assert url.startswith("https://holds.example.com/api/feed/")


def test_a_new_feed_url_retires_the_old_one(staff, client):
    first = path_of(staff.post("/api/me/feed").json["url"])
    second = path_of(staff.post("/api/me/feed").json["url"])
    assert first != second
    assert client.get(second).status_code == 200
    gone = client.get(first)
    assert gone.status_code == 404
    assert gone.json["code"] == 404


def test_deleting_the_user_stops_the_feed(staff, client, runner, feed_path):
    assert client.get(feed_path).status_code == 200
    assert runner.invoke(args=["users", "delete", staff.user.name]).exit_code == 0
    assert client.get(feed_path).status_code == 404


def test_secrets_and_tokens_do_not_stand_in_for_each_other(staff, client, feed_path):
    secret = feed_path.removeprefix("/api/feed/").removesuffix(".ics")
    as_token = client.get(HOLDS, headers={"Authorization": f"Bearer {secret}"})
    assert as_token.status_code == 401
    as_secret = client.get(f"/api/feed/{staff.token}.ics")
    assert as_secret.status_code == 404
    assert as_secret.json["code"] == 404


def test_the_cli_prints_a_working_feed_url(staff, runner, client):
    result = runner.invoke(
        args=["feed", "new-url", staff.user.name, "--base-url", "https://h.example"]
    )
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("https://h.example/api/feed/")
    assert client.get(path_of(url)).status_code == 200
    unknown = runner.invoke(args=["feed", "new-url", "nobody", "--base-url", "https://h"])
    assert unknown.exit_code != 0 and "no user named" in unknown.output


# -- the calendar ----------------------------------------------------------------------------


def test_the_feed_is_a_calendar_with_a_name_and_refresh_interval(client, feed_path):
    response = client.get(feed_path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    body = response.get_data()
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in body.split(b"\r\n"))
    assert b"\n" not in body.replace(b"\r\n", b"")
    calendar = icalendar.Calendar.from_ical(body)
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    assert calendar["NAME"] == calendar["X-WR-CALNAME"]
    assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in body
    assert b"X-PUBLISHED-TTL:PT1H\r\n" in body


def test_holds_in_the_window_are_confirmed_events(client, session, machine, feed_path):
    start = NOW + timedelta(days=1)
    shown = make_hold(session, machine, start, start + timedelta(hours=2), notes="bring oil")
    started_before = make_hold(session, machine, WINDOW.start - timedelta(days=3), None)
    ended_before = make_hold(
        session, machine, WINDOW.start - timedelta(days=2), WINDOW.start - timedelta(days=1)
    )
    after = make_hold(session, machine, WINDOW.end, None)
    events = events_of(client.get(feed_path))
    assert set(events) == {queries.hold_uid(shown.id), queries.hold_uid(started_before.id)}
    assert ended_before.id and after.id

    event = events[queries.hold_uid(shown.id)]
    assert event["STATUS"] == "CONFIRMED"
    assert event.DTSTART == start.replace(microsecond=0) or event.DTSTART == start
    assert event.DTEND - event.DTSTART == timedelta(hours=2)
    assert "lathe" in event["SUMMARY"] and "oil change" in event["SUMMARY"]
    assert "bring oil" in event["DESCRIPTION"]
    assert b"DTSTART:" in event.to_ical() and event.to_ical().count(b"Z\r\n") >= 3

    indefinite = events[queries.hold_uid(started_before.id)]
    assert indefinite.DTEND == WINDOW.end
    assert "indefinite" in indefinite["DESCRIPTION"].lower()


def test_coming_fires_are_tentative_and_keep_their_uid_as_holds(
    client, session, machine, make_schedule, runner, feed_path, planner
):
    created = NOW - timedelta(hours=1)
    schedule = make_schedule(
        machine, time_of_day=time(6), created=created, duration=timedelta(hours=3)
    )
    before = events_of(client.get(feed_path))
    fires = sorted((e.DTSTART, uid) for uid, e in before.items() if e["STATUS"] == "TENTATIVE")
    assert 89 <= len(fires) <= 91  # every day's 06:00 from now to the window's end
    assert all(NOW - timedelta(hours=1) < start < WINDOW.end for start, _ in fires)
    first_start, first_uid = fires[0]
    assert first_uid == queries.fire_uid(schedule.id, first_start)
    assert before[first_uid].DTEND - first_start == timedelta(hours=3)

    now = int(NOW.timestamp())
    result = runner.invoke(args=["holds", "materialize", "--now", str(now), "--horizon", "4320"])
    assert result.exit_code == 0, result.output
    after = events_of(client.get(feed_path))
    assert set(after) == set(before)  # each fire shown once, as the hold it became
    assert after[first_uid]["STATUS"] == "CONFIRMED"
    assert int(after[first_uid]["SEQUENCE"]) >= int(before[first_uid]["SEQUENCE"])
    made = session.scalars(select(MachineHold).where(MachineHold.schedule_id == schedule.id))
    made = list(made)
    assert made and all(queries.fire_uid(schedule.id, h.start) in after for h in made)

    # A hold moved to another time keeps its fire's UID, and that fire is not shown again.
    moved, uid = made[0], queries.fire_uid(schedule.id, made[0].start)
    later = int((moved.start + timedelta(hours=2)).timestamp())
    assert planner.patch(f"{HOLDS}{moved.id}", json={"start": later}).status_code == 200
    shown = events_of(client.get(feed_path))
    assert set(shown) == set(before)
    assert int(shown[uid].DTSTART.timestamp()) == later
    assert shown[uid]["STATUS"] == "CONFIRMED"

    # A hold the materializer made and somebody deleted is not shown again as a fire.
    session.delete(made[0])
    session.commit()
    assert uid not in events_of(client.get(feed_path))


def test_the_machine_filter_limits_holds_and_fires(
    client, session, make_machine, make_schedule, feed_path
):
    lathe, press = make_machine("lathe"), make_machine("press")
    make_hold(session, lathe, NOW, None)
    pressed = make_hold(session, press, NOW, None)
    make_schedule(lathe, created=NOW)
    events = events_of(client.get(f"{feed_path}?machine={press.id}"))
    assert list(events) == [queries.hold_uid(pressed.id)]
    both = events_of(client.get(f"{feed_path}?machine={press.id}&machine={lathe.id}"))
    assert len(both) > 2
    bad = client.get(f"{feed_path}?machines=1")
    assert bad.status_code == 422 and "machines" in bad.json["errors"]["query"]


# -- revalidation ----------------------------------------------------------------------------


def test_an_unchanged_feed_answers_304_with_no_body(client, session, machine, feed_path):
    make_hold(session, machine, NOW, None)
    first = client.get(feed_path)
    etag = first.headers["ETag"]
    again = client.get(feed_path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert client.get(feed_path).get_data() == first.get_data()  # the same on every fetch


def test_a_change_to_a_shown_hold_gives_a_new_etag_and_a_higher_sequence(
    client, staff, session, machine, feed_path
):
    hold = make_hold(session, machine, NOW, None)
    first = client.get(feed_path)
    uid = queries.hold_uid(hold.id)
    assert staff.patch(f"{HOLDS}{hold.id}", json={"notes": "n"}).status_code == 200
    second = client.get(feed_path, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert second.headers["ETag"] != first.headers["ETag"]
    assert int(events_of(second)[uid]["SEQUENCE"]) > int(events_of(first)[uid]["SEQUENCE"])
    assert staff.patch(f"{HOLDS}{hold.id}", json={"notes": "m"}).status_code == 200
    third = client.get(feed_path)
    assert int(events_of(third)[uid]["SEQUENCE"]) > int(events_of(second)[uid]["SEQUENCE"])


def test_changes_to_what_is_not_shown_keep_the_etag(client, session, make_machine, feed_path):
    lathe, press = make_machine("lathe"), make_machine("press")
    make_hold(session, lathe, NOW, None)
    path = f"{feed_path}?machine={lathe.id}"
    etag = client.get(path).headers["ETag"]
    make_hold(session, press, NOW, None)
    make_hold(session, lathe, WINDOW.end + timedelta(days=1), None)
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304


def test_a_deleted_hold_changes_the_etag_and_last_modified_never_goes_back(
    client, planner, session, machine, feed_path
):
    older = make_hold(session, machine, NOW, None)
    newest = make_hold(session, machine, NOW + timedelta(hours=1), None)
    assert planner.patch(f"{HOLDS}{newest.id}", json={"notes": "x"}).status_code == 200
    first = client.get(feed_path)
    assert planner.delete(f"{HOLDS}{newest.id}").status_code == 204
    second = client.get(feed_path, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert list(events_of(second)) == [queries.hold_uid(older.id)]
    assert second.last_modified >= first.last_modified
    since = client.get(feed_path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 200


def test_a_moved_window_gives_a_new_etag(client, feed_path, monkeypatch):
    first = client.get(feed_path).headers["ETag"]
    later = NOW + timedelta(hours=1)
    monkeypatch.setattr("pytm4srv.feed.views.now", lambda: later)
    assert client.get(feed_path, headers={"If-None-Match": first}).status_code == 200


# -- a second parser: ical.js, as web and Node calendar clients read it ----------------------

ICAL_JS = "ical.js@2.2.1"


@pytest.fixture(scope="session")
def icaljs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ical.js installed with npm into a folder of the test session's."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("Node.js and npm are needed to read the feed with ical.js")
    folder = tmp_path_factory.mktemp("icaljs")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder), ICAL_JS],
        check=True,
        timeout=300,
    )
    return folder


def read_with_icaljs(icaljs: Path, body: bytes, tmp_path: Path) -> dict[str, Any]:
    feed = tmp_path / "feed.ics"
    feed.write_bytes(body)
    script = Path(__file__).with_name("read_with_icaljs.mjs")
    result = subprocess.run(
        ["node", str(script), str(icaljs), str(feed)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_ical_js_reads_the_same_events_as_icalendar(
    icaljs, tmp_path, client, session, machine, make_schedule, feed_path
):
    make_hold(session, machine, NOW, NOW + timedelta(minutes=45), notes="ü, commas, ; and \\")
    make_hold(session, machine, NOW - timedelta(days=40), None)
    make_schedule(machine, created=NOW - timedelta(hours=1), duration=timedelta(hours=2))
    response = client.get(feed_path)
    theirs = read_with_icaljs(icaljs, response.get_data(), tmp_path)
    ours = events_of(response)

    assert theirs["name"] == theirs["wrName"] == "Machine holds (pytm4srv)"
    assert theirs["refresh"] == "PT1H"
    assert [event["uid"] for event in theirs["events"]] == list(ours)
    for event in theirs["events"]:
        mine = ours[event["uid"]]
        assert event["startIsUtc"]
        assert event["start"] == int(mine.DTSTART.timestamp() * 1000)
        assert event["end"] == int(mine.DTEND.timestamp() * 1000)
        assert event["status"] == str(mine["STATUS"])
        assert event["sequence"] == int(mine["SEQUENCE"])
        assert event["summary"] == str(mine["SUMMARY"])
        assert event["description"] == str(mine["DESCRIPTION"])
    statuses = {event["status"] for event in theirs["events"]}
    assert statuses == {"CONFIRMED", "TENTATIVE"}
    assert any("ü, commas, ; and \\" in event["description"] for event in theirs["events"])


def test_the_feed_shows_each_time_of_a_day_and_no_fire_after_until(
    client, machine, make_schedule, feed_path
):
    created = NOW - timedelta(hours=1)
    until = datetime.combine((NOW + timedelta(days=10)).date(), time(12), UTC)
    make_schedule(
        machine, time_of_day=time(6), times_of_day=(time(6), time(18)), until=until,
        created=created, duration=timedelta(hours=1),
    )  # fmt: skip
    events = events_of(client.get(feed_path))
    starts = sorted(e.DTSTART for e in events.values() if e["STATUS"] == "TENTATIVE")
    assert starts and max(starts) <= until
    assert {(s.hour, s.minute) for s in starts} == {(6, 0), (18, 0)}
    # Every day from tomorrow to the day before until's shows both times.
    days = {s.date() for s in starts}
    for day in days - {min(days), max(days)}:
        assert sum(s.date() == day for s in starts) == 2
    assert until.date() in days and sum(s.date() == until.date() for s in starts) == 1
