"""The web pages through Flask's test client: sessions, safety rules, and forms that go through
the API's own rules (docs/WEB.md)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.users.models import User
from pytm4srv.users.tokens import hash_token, new_token
from tests.web.conftest import csrf_of, next_spring_forward


def test_every_page_but_sign_in_needs_a_session(client):
    for path in ("/", "/down", "/holds/new", "/schedules", "/schedules/new", "/subscribe"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/signin")
    page = client.get("/signin")
    assert page.status_code == 200
    assert b'<label for="token">Token</label>' in page.data


def test_a_wrong_token_shows_an_error_on_the_sign_in_form(browser, staff):
    answer = browser.post("/signin", {"token": staff.token + "x"})
    assert answer.status_code == 401
    assert b"Unknown or revoked token." in answer.data
    assert browser.get("/").status_code == 302


def test_the_session_cookie_holds_no_token_and_has_its_flags(browser, staff):
    answer = browser.sign_in(staff)
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if "pytm4srv_session" in h)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here
    value = cookie.split(";")[0].split("=", 1)[1]
    assert staff.token not in value and hash_token(staff.token) not in value
    assert browser.get("/").status_code == 200


def test_the_cookie_is_secure_over_https(client, browser, staff):
    page = client.get("/signin", base_url="https://localhost")
    token = page.data.decode().split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(
        "/signin",
        data={"csrf_token": token, "token": staff.token},
        base_url="https://localhost",
        headers={"Origin": "https://localhost", "Referer": "https://localhost/signin"},
    )
    assert answer.status_code == 302
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if "pytm4srv_session" in h)
    assert "Secure" in cookie


def test_a_rotated_token_ends_the_session_on_the_next_page(signed_in, staff, session):
    browser = signed_in(staff)
    assert browser.get("/").status_code == 200
    session.get(User, staff.user.id).token_hash = hash_token(new_token())
    session.commit()
    answer = browser.get("/")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/signin")


def test_a_changed_role_counts_from_the_next_page(signed_in, planner, session):
    browser = signed_in(planner)
    assert b"New schedule" in browser.get("/schedules").data
    session.get(User, planner.user.id).role = "staff"
    session.commit()
    assert b"New schedule" not in browser.get("/schedules").data


def test_a_deleted_user_is_signed_out(signed_in, staff, session):
    browser = signed_in(staff)
    session.delete(session.get(User, staff.user.id))
    session.commit()
    assert browser.get("/down").status_code == 302


def test_pages_send_a_policy_without_inline_scripts(signed_in, staff):
    browser = signed_in(staff)
    for path in ("/signin", "/", "/down", "/schedules", "/schedules/new", "/holds/new"):
        policy = browser.get(path).headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        body = browser.get(path).data.decode()
        assert "<script>" not in body and " onclick=" not in body and "http://" not in body


def test_a_form_from_another_site_changes_nothing(signed_in, staff, machine, session):
    browser = signed_in(staff)
    form = {"machine_id": machine.id, "reason": "forged", "start": "", "end": "", "notes": ""}
    answer = browser.post("/holds/new", form, origin="https://evil.example")
    assert answer.status_code == 403
    answer = browser.post(
        "/holds/new", form, headers={"Sec-Fetch-Site": "cross-site", "Origin": "null"}
    )
    assert answer.status_code == 403
    answer = browser.client.post(
        "/holds/new", data=form, headers={"Origin": "http://localhost"}
    )  # no form token
    assert answer.status_code == 403
    assert session.query(MachineHold).filter_by(reason="forged").count() == 0


def test_a_new_hold_goes_through_the_api_rules(signed_in, staff, machine, session):
    browser = signed_in(staff)
    form = {"machine_id": machine.id, "reason": "", "start": "", "end": "", "notes": ""}
    answer = browser.post("/holds/new", form)
    assert answer.status_code == 422
    assert b'id="reason-error"' in answer.data
    assert session.query(MachineHold).count() == 0
    form = {"machine_id": machine.id, "reason": "belt", "start": "2027-03-01 08:00"}
    answer = browser.post("/holds/new", form | {"end": "2027-03-01 07:00"})
    assert answer.status_code == 422 and b'id="end-error"' in answer.data
    answer = browser.post("/holds/new", form | {"end": "2027-03-01 09:30", "notes": "x"})
    assert answer.status_code == 302
    hold = session.query(MachineHold).one()
    assert hold.user_id == staff.user.id
    assert hold.start == datetime(2027, 3, 1, 8, tzinfo=UTC)  # the page zone: the service's
    assert hold.end - hold.start == timedelta(minutes=90)


def test_times_are_read_in_the_zone_of_the_page(signed_in, staff, machine, session):
    browser = signed_in(staff)
    browser.client.set_cookie("tz", "Europe/Berlin")
    form = {"machine_id": machine.id, "reason": "belt", "start": "2027-07-01 08:00", "end": ""}
    assert browser.post("/holds/new", form).status_code == 302
    hold = session.query(MachineHold).one()
    assert hold.start == datetime(2027, 7, 1, 6, tzinfo=UTC) and hold.end is None
    page = browser.get(f"/holds/{hold.id}").data.decode()
    assert "2027-07-01 08:00" in page and "until released" in page and "Europe/Berlin" in page


def test_markup_from_users_is_shown_as_text(signed_in, staff, machine, session):
    browser = signed_in(staff)
    reason = '<img src=x id="injected">'
    form = {"machine_id": machine.id, "reason": reason, "start": "", "end": ""}
    assert browser.post("/holds/new", form).status_code == 302
    for path in ("/", "/down", f"/holds/{session.query(MachineHold).one().id}"):
        page = browser.get(path).data.decode()
        assert 'id="injected"' not in page
        assert "&lt;img src=x id=&#34;injected&#34;&gt;" in page


def test_staff_cannot_delete_a_hold(signed_in, staff, machine, session):
    hold = MachineHold(
        machine_id=machine.id, reason="r", notes="", start=datetime.now(UTC), end=None
    )
    session.add(hold)
    session.commit()
    browser = signed_in(staff)
    assert b">Delete</button>" not in browser.get(f"/holds/{hold.id}").data
    assert browser.post(f"/holds/{hold.id}/delete", {}).status_code == 403
    assert session.get(MachineHold, hold.id) is not None


def test_down_now_lists_held_machines_until_when(signed_in, staff, make_machine, session):
    lathe, mill, press = make_machine("lathe"), make_machine("mill"), make_machine("press")
    now = datetime.now(UTC)
    session.add_all(
        [
            MachineHold(machine_id=lathe.id, reason="belt", notes="", start=now, end=None),
            MachineHold(
                machine_id=mill.id, reason="oil", notes="", start=now, end=now + timedelta(hours=2)
            ),
            MachineHold(
                machine_id=press.id,
                reason="later",
                notes="",
                start=now + timedelta(hours=1),
                end=None,
            ),
        ]
    )
    session.commit()
    page = signed_in(staff).get("/down/list").data.decode()
    assert "lathe" in page and "until released" in page and "belt" in page
    assert "mill" in page and "oil" in page
    assert "press" not in page


def test_the_schedule_preview_shows_summary_shifts_and_conflicts(
    signed_in, planner, machine, session
):
    hold = MachineHold(
        machine_id=machine.id,
        reason="r",
        notes="",
        start=next_spring_forward(),
        end=next_spring_forward() + timedelta(days=1),
    )
    session.add(hold)
    session.commit()
    browser = signed_in(planner)
    form = {
        "name": "n",
        "machine_id": machine.id,
        "reason": "r",
        "frequency": "D",
        "interval": "1",
        "day": ["Sunday"],
        "month": ["March", "April"],
        "indices": "",
        "time_of_day": "02:30",
        "duration": "60",
        "timezone": "Europe/Berlin",
        "start": "",
    }
    page = browser.post("/schedules/preview", form).data.decode()
    assert "Every day on Sunday" in page or "Sunday" in page
    assert "Europe/Berlin" in page
    assert "shifted" in page  # 02:30 does not exist in Berlin that day
    assert f'href="/holds/{hold.id}"' in page and "conflict" in page
    bad = browser.post("/schedules/preview", form | {"time_of_day": "25:00"}).data.decode()
    assert "time_of_day" in bad


def test_a_schedule_saved_from_its_form_and_a_fire_skipped(signed_in, planner, machine, session):
    browser = signed_in(planner)
    form = {
        "name": "weekly oil",
        "machine_id": machine.id,
        "reason": "oil",
        "frequency": "W",
        "interval": "2",
        "day": ["Monday", "Thursday"],
        "month": ["January", "March"],
        "indices": "",
        "time_of_day": "07:00",
        "duration": "",
        "timezone": "",
    }
    answer = browser.post("/schedules/new", form | {"interval": "zero"})
    assert answer.status_code == 422 and b'id="interval-error"' in answer.data
    answer = browser.post("/schedules/new", form)
    assert answer.status_code == 302
    schedule = session.query(MachineHoldSchedule).one()
    assert (schedule.weekdays, schedule.months, schedule.interval) == (9, 5, 2)
    assert schedule.time_of_day == time(7) and schedule.duration is None
    page = browser.get(f"/schedules/{schedule.id}").data.decode()
    first = page.split('name="fire" value="')[1].split('"')[0]
    answer = browser.post(f"/schedules/{schedule.id}/skip", {"fire": first})
    assert answer.status_code == 302
    session.refresh(schedule)
    assert [int(instant.timestamp()) for instant in schedule.skip] == [int(float(first))]


def test_staff_see_schedules_but_cannot_change_them(signed_in, staff, make_schedule, session):
    schedule = make_schedule()
    browser = signed_in(staff)
    page = browser.get(f"/schedules/{schedule.id}").data.decode()
    assert "nightly" in page and "Edit" not in page and ">Skip<" not in page
    answer = browser.post(f"/schedules/{schedule.id}/delete", {})
    assert answer.status_code == 403
    assert session.get(MachineHoldSchedule, schedule.id) is not None


def test_the_board_shows_holds_planned_fires_and_held(
    signed_in, staff, make_machine, session, make_schedule
):
    lathe, mill = make_machine("lathe"), make_machine("mill")
    now = datetime.now(UTC)
    session.add(MachineHold(machine_id=lathe.id, reason="belt", notes="", start=now, end=None))
    session.commit()
    make_schedule(machine=mill, created=now - timedelta(days=1), reason="daily check")
    page = signed_in(staff).get("/").data.decode()
    assert "belt" in page and "daily check" in page and "planned" in page
    row = page.split("lathe")[0].rsplit("<tr>", 1)[1]
    assert "held" in row
    filtered = signed_in(staff).get("/?q=MIL").data.decode()
    assert "mill" in filtered and ">lathe<" not in filtered and "belt" not in filtered


def test_machines_page_for_admins_only(signed_in, admin, staff, machine, session):
    session.add(MachineHold(machine_id=machine.id, reason="r", notes="", start=datetime.now(UTC)))
    session.commit()
    assert signed_in(staff).get("/machines").status_code == 403
    browser = signed_in(admin)
    assert browser.post("/machines", {"name": "drill"}).status_code == 302
    answer = browser.post(f"/machines/{machine.id}/delete", {}, follow_redirects=True)
    assert "still used by 1 hold and 0 schedules" in answer.data.decode()
    assert "delete those first" in answer.data.decode()


def test_editing_a_hold_changes_only_what_was_changed(signed_in, staff, machine, session):
    start = datetime(2027, 5, 1, 8, 0, 30, tzinfo=UTC)  # seconds the form does not show
    hold = MachineHold(machine_id=machine.id, reason="belt", notes="", start=start, end=None)
    session.add(hold)
    session.commit()
    browser = signed_in(staff)
    form = {"machine_id": machine.id, "start": "2027-05-01 08:00", "end": "", "reason": "belt"}
    answer = browser.post(f"/holds/{hold.id}/edit", form | {"notes": "new belt ordered"})
    assert answer.status_code == 302
    session.refresh(hold)
    assert hold.notes == "new belt ordered" and hold.start == start
    history = browser.get(f"/holds/{hold.id}").data.decode()
    assert "notes: — → new belt ordered" in history or "new belt ordered" in history
    answer = browser.post(f"/holds/{hold.id}/edit", form | {"end": "2027-05-01 07:00"})
    assert answer.status_code == 422 and b'id="end-error"' in answer.data
    session.refresh(hold)
    assert hold.end is None


def test_admins_rename_machines_with_the_api_rules(signed_in, admin, make_machine):
    lathe, mill = make_machine("lathe"), make_machine("mill")
    browser = signed_in(admin)
    answer = browser.post(f"/machines/{lathe.id}/rename", {"name": "mill"}, follow_redirects=True)
    assert f"Machine {mill.id} has the name" in answer.data.decode()
    answer = browser.post(f"/machines/{lathe.id}/rename", {"name": "lathe 2"})
    assert answer.status_code == 302
    assert "lathe 2" in browser.get("/machines").data.decode()


def test_sign_in_goes_back_only_to_a_page_of_the_service(browser, staff):
    for target, expected in [
        ("/down", "/down"),
        ("//evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/api/me", "/"),
    ]:
        browser.client.post("/signout", data={"csrf_token": browser.token()})
        page = browser.client.get("/signin")
        answer = browser.client.post(
            "/signin",
            query_string={"next": target},
            data={"csrf_token": csrf_of(page.data), "token": staff.token},
            headers={"Origin": "http://localhost"},
        )
        assert answer.status_code == 302 and answer.headers["Location"] == expected, target


def test_a_hold_over_several_days_shows_its_start_then_goes_on(signed_in, staff, machine, session):
    start = datetime(2027, 3, 2, 22, 15, tzinfo=UTC)  # a Tuesday
    hold = MachineHold(
        machine_id=machine.id, reason="rebuild", notes="", start=start, end=start + timedelta(2)
    )
    session.add(hold)
    session.commit()
    page = signed_in(staff).get("/?week=2027-03-01").data.decode()
    row = page.split('<th scope="row">lathe</th>')[1].split("</tr>")[0]
    cells = row.split("<td>")[1:]
    link = f'<a class="hold" href="/holds/{hold.id}">'
    assert [cell.count(link) for cell in cells] == [0, 1, 1, 1, 0, 0, 0]
    assert f"{link}22:15 rebuild</a>" in cells[1]
    assert f"{link}… rebuild</a>" in cells[2] and f"{link}… rebuild</a>" in cells[3]


def test_every_page_declares_its_transaction(app):
    from pytm4srv.db import READ, declared_mode

    pages = {name: view for name, view in app.view_functions.items() if name.startswith("web.")}
    assert len(pages) >= 20
    # The pages only read; their changes run in the API's views, which declare their own.
    assert {name for name, view in pages.items() if declared_mode(view) != READ} == set()


def test_a_hold_page_names_its_schedule(signed_in, staff, machine, make_schedule, session):
    schedule = make_schedule(name="Nightly <check>")
    start = datetime(2027, 1, 5, 8, tzinfo=UTC)
    hold = MachineHold(
        machine_id=machine.id,
        reason="maintenance",
        notes="",
        start=start,
        end=None,
        schedule_id=schedule.id,
        fire=start,
    )
    session.add(hold)
    session.commit()
    page = signed_in(staff).get(f"/holds/{hold.id}").data.decode()
    assert f'<a href="/schedules/{schedule.id}">Nightly &lt;check&gt;</a>' in page
    assert "No recorded change (made by its schedule)." in page


def _schedule_form(machine_id: int, **fields: str) -> dict[str, object]:
    return {
        "name": "shifts",
        "machine_id": machine_id,
        "reason": "check",
        "frequency": "D",
        "interval": "1",
        "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
        "month": ["January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December"],
        "indices": "",
        "time_of_day": "",
        "times_of_day": "",
        "until": "",
        "rrule": "",
        "duration": "30",
        "timezone": "Europe/Berlin",
    } | fields  # fmt: skip


def test_several_times_of_day_saved_and_shown_again(signed_in, planner, machine, session):
    browser = signed_in(planner)
    form = _schedule_form(machine.id, times_of_day="22:00, 06:00,14:00")
    answer = browser.post("/schedules/new", form | {"times_of_day": "06:00, 6:61"})
    assert answer.status_code == 422 and b'id="times_of_day-error"' in answer.data
    assert session.query(MachineHoldSchedule).count() == 0
    answer = browser.post("/schedules/new", form | {"time_of_day": "14:00"})
    assert answer.status_code == 422
    page = answer.data.decode()
    assert 'id="time_of_day-error"' in page and "Must be the earliest of times_of_day" in page
    answer = browser.post("/schedules/new", form)
    assert answer.status_code == 302
    schedule_id = session.query(MachineHoldSchedule).one().id
    stored = planner.get(f"/api/machines/holds/schedules/{schedule_id}").get_json()
    assert stored["times_of_day"] == ["06:00:00", "14:00:00", "22:00:00"]
    assert stored["time_of_day"] == "06:00:00"
    page = browser.get(f"/schedules/{schedule_id}").data.decode()
    assert "at 06:00, 14:00 and 22:00" in page
    edit = browser.get(f"/schedules/{schedule_id}/edit").data.decode()
    assert 'name="times_of_day" value="06:00, 14:00, 22:00"' in edit
    assert 'name="time_of_day" value=""' in edit


def test_until_saved_and_shown_in_the_pages_zone(signed_in, planner, machine, session):
    browser = signed_in(planner)
    browser.client.set_cookie("tz", "America/New_York")
    form = _schedule_form(machine.id, time_of_day="07:00", until="2099-06-30 18:00")
    answer = browser.post("/schedules/new", form | {"until": "30.6.2099"})
    assert answer.status_code == 422 and b'id="until-error"' in answer.data
    assert session.query(MachineHoldSchedule).count() == 0
    assert browser.post("/schedules/new", form).status_code == 302
    schedule_id = session.query(MachineHoldSchedule).one().id
    stored = planner.get(f"/api/machines/holds/schedules/{schedule_id}").get_json()
    assert stored["until"] == datetime(2099, 6, 30, 22, tzinfo=UTC).timestamp()
    # The summary gives it in the schedule's zone, the form in the page's.
    assert stored["summary"].endswith(", until 2099-07-01 00:00")
    edit = browser.get(f"/schedules/{schedule_id}/edit").data.decode()
    assert 'name="until" value="2099-06-30 18:00"' in edit
    assert browser.post(f"/schedules/{schedule_id}/edit", form | {"until": ""}).status_code == 302
    stored = planner.get(f"/api/machines/holds/schedules/{schedule_id}").get_json()
    assert stored["until"] is None


RULE = (
    "DTSTART;TZID=Europe/Berlin:20990105T063000\r\n"
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;BYHOUR=6,18;BYMINUTE=30;UNTIL=20991231T230000Z\r\n"
)


def test_a_pasted_rrule_makes_the_schedule_it_states(signed_in, planner, machine, session):
    browser = signed_in(planner)
    # The pattern fields beside a rule are not sent: the rule states them.
    form = _schedule_form(machine.id, frequency="Y", time_of_day="25:00", rrule=RULE)
    preview = browser.post("/schedules/preview", form).data.decode()
    assert "Every other week on Monday and Thursday at 06:30 and 18:30" in preview
    assert "until 2100-01-01 00:00" in preview and "2099-01-05 06:30" in preview
    answer = browser.post("/schedules/new", form)
    assert answer.status_code == 302, answer.data
    schedule_id = session.query(MachineHoldSchedule).one().id
    stored = planner.get(f"/api/machines/holds/schedules/{schedule_id}").get_json()
    assert (stored["frequency"], stored["interval"], stored["weekdays"]) == ("W", 2, 9)
    assert stored["times_of_day"] == ["06:30:00", "18:30:00"]
    assert stored["timezone"] == "Europe/Berlin" and stored["duration"] == 30
    assert stored["until"] == datetime(2099, 12, 31, 23, tzinfo=UTC).timestamp()
    page = browser.get(f"/schedules/{schedule_id}").data.decode()
    assert '<pre class="rrule" id="rrule-text">' in page
    assert stored["rrule"].split("\n")[1] in page


def test_a_refused_rrule_is_shown_next_to_its_field(signed_in, planner, machine, session):
    browser = signed_in(planner)
    form = _schedule_form(machine.id, rrule="RRULE:FREQ=YEARLY;BYWEEKNO=20")
    answer = browser.post("/schedules/new", form)
    assert answer.status_code == 422
    page = answer.data.decode()
    error = page.split('id="rrule-error">')[1].split("</p>")[0]
    assert "BYWEEKNO" in error
    assert 'aria-describedby="rrule-hint rrule-error"' in page
    assert session.query(MachineHoldSchedule).count() == 0
    preview = browser.post("/schedules/preview", form).data.decode()
    assert "rrule" in preview and "BYWEEKNO" in preview


def test_the_preview_follows_times_of_day_and_until(signed_in, planner, machine):
    browser = signed_in(planner)
    form = _schedule_form(machine.id, time_of_day="06:00")
    one = browser.post("/schedules/preview", form).data.decode()
    assert "at 06:00 (Europe/Berlin)" in one and " 14:00</td>" not in one
    form |= {"time_of_day": "", "times_of_day": "06:00, 14:00"}
    two = browser.post("/schedules/preview", form).data.decode()
    assert "at 06:00 and 14:00 (Europe/Berlin)" in two
    assert two.count(" 06:00</td>") == 5 and two.count(" 14:00</td>") == 5
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    ended = browser.post("/schedules/preview", form | {"until": f"{tomorrow} 12:00"})
    assert f", until {tomorrow}" in ended.data.decode()
    assert ended.data.decode().count("</td>\n    <td>") <= 6
    bad = browser.post("/schedules/preview", form | {"times_of_day": "06:00, 06:00"}).data
    assert b"times_of_day" in bad
