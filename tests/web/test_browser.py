"""The pages in a real browser: Debian's Chromium driven by Playwright, against gunicorn on the
suite's database (SQLite or PostgreSQL), with axe-core checking each kind of page.

Elements are found as a person finds them: by label, role and visible text.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pytm4srv.db import make_engine
from pytm4srv.holds.models import MachineHold
from pytm4srv.machines.models import Machine
from pytm4srv.users.models import Role, User
from pytm4srv.users.tokens import hash_token, new_token
from tests.conftest import REPO, migrated_database
from tests.live import Live, call, gunicorn
from tests.web.conftest import next_spring_forward

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
AXE_CORE = "axe-core@4.10.3"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DOCS = REPO / "docs"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: CI installs it (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's script, installed with npm into a folder of the test session's."""
    if shutil.which("npm") is None:
        pytest.fail("npm is needed to install axe-core")
    folder = tmp_path_factory.mktemp("axe")
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "--prefix",
            str(folder),
            AXE_CORE,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return (folder / "node_modules" / "axe-core" / "axe.min.js").read_text()


class Site:
    """The live service, its database and its users' tokens."""

    def __init__(self, live: Live, url: str) -> None:
        self.live, self.url, self.base = live, url, live.base
        self.engine = make_engine(url)
        self.tokens: dict[str, str] = {}

    def add_user(self, name: str, role: Role) -> str:
        token = new_token()
        with Session(self.engine) as session:
            session.add(
                User(name=name, role=role, token_hash=hash_token(token), created=datetime.now(UTC))
            )
            session.commit()
        self.tokens[name] = token
        return token

    def add_machine(self, name: str) -> int:
        with Session(self.engine) as session:
            machine = Machine(name=name)
            session.add(machine)
            session.commit()
            return machine.id

    def api(self, method: str, path: str, body: Any = None, user: str = "plan") -> Any:
        answer = call(self.base, method, path, self.tokens[user], body)
        assert answer.status < 300, (answer.status, answer.body)
        return answer.body

    def count_holds(self, **where: Any) -> int:
        with Session(self.engine) as session:
            stmt = select(func.count()).select_from(MachineHold).filter_by(**where)
            return session.scalar(stmt) or 0


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("web")
    with migrated_database(folder) as url, gunicorn(url, folder / "gunicorn.log") as live:
        site = Site(live, url)
        site.add_user("ada", Role.ADMIN)
        site.add_user("plan", Role.PLANNER)
        site.add_user("tech", Role.STAFF)
        yield site
        site.engine.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watched:
    """A page and what it did: every request's host, and any policy the page broke."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page = context.new_page()
        self.hosts: set[str] = set()
        #: Hosts a test serves pages from on purpose (another site's form).
        self.others: set[str] = set()
        self.console: list[str] = []
        self.page.on("request", lambda request: self.hosts.add(urlsplit(request.url).netloc))
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.on("pageerror", lambda error: self.console.append(str(error)))


@pytest.fixture
def new_page(chromium: Browser, site: Site) -> Iterator[Any]:
    contexts: list[BrowserContext] = []
    watched: list[Watched] = []

    def make(zone: str = "Europe/Berlin") -> Watched:
        context = chromium.new_context(timezone_id=zone, viewport={"width": 1400, "height": 900})
        contexts.append(context)
        watched.append(Watched(context))
        return watched[-1]

    yield make
    for one in watched:
        own = urlsplit(site.base).netloc
        assert one.hosts - one.others <= {own}, f"requests to other hosts: {one.hosts}"
        broken = [text for text in one.console if "Content Security Policy" in text]
        assert not broken, broken
    for context in contexts:
        context.close()


def sign_in(page: Page, site: Site, user: str) -> None:
    page.goto(site.base + "/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_label("Token").fill(site.tokens[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def check_axe(page: Page, axe_source: str, what: str) -> None:
    """No serious or critical violation of the WCAG 2.1 A and AA rules on the page."""
    # Evaluated by the browser's debugging protocol: not an inline script, so the page's CSP
    # (which allows none) stays as it is.
    page.evaluate(axe_source)
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AXE_TAGS
    )
    bad = [
        (violation["id"], violation["impact"], [node["target"] for node in violation["nodes"]])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{what}: {json.dumps(bad)}"


def week_of(instant: datetime) -> str:
    monday = instant.date() - timedelta(days=instant.weekday())
    return monday.isoformat()


def test_sign_in_board_filter_and_down_now(site, new_page, axe_source):
    lathe, mill = site.add_machine("Lathe 1"), site.add_machine("Mill 2")
    now = datetime.now(UTC)
    site.api("PUT", "/api/machines/holds/", {"machine_id": lathe, "reason": "Spindle bearing"})
    site.api(
        "PUT",
        "/api/machines/holds/schedules/",
        {
            "machine_id": mill,
            "name": "Daily check",
            "reason": "Coolant check",
            "frequency": "D",
            "time_of_day": "06:00",
            "duration": 30,
            "anchor": int((now - timedelta(days=1)).timestamp()),
        },
    )
    # More of a shop, for the screenshot: a hold over days, a weekly schedule.
    grinder, oven = site.add_machine("Grinder 3"), site.add_machine("Oven 5")
    monday = datetime.combine(now.date() - timedelta(days=now.weekday()), datetime.min.time(), UTC)
    site.api(
        "PUT",
        "/api/machines/holds/",
        {
            "machine_id": grinder,
            "reason": "Wheel change",
            "start": int((monday + timedelta(days=2, hours=8)).timestamp()),
            "end": int((monday + timedelta(days=4, hours=11)).timestamp()),
        },
    )
    site.api(
        "PUT",
        "/api/machines/holds/schedules/",
        {
            "machine_id": oven,
            "name": "Bake-out",
            "reason": "Bake-out",
            "frequency": "W",
            "weekdays": 2 | 8,
            "time_of_day": "14:00",
            "timezone": "Europe/Berlin",
            "duration": 120,
            "anchor": int((now - timedelta(days=14)).timestamp()),
        },
    )
    watched = new_page("Europe/Berlin")
    page = watched.page
    response = page.goto(site.base + "/signin")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe" not in policy
    check_axe(page, axe_source, "sign-in")
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Unknown or revoked token.")).to_be_visible()
    sign_in(page, site, "tech")
    expect(page.get_by_text("Times in Europe/Berlin.")).to_be_visible()  # the browser's zone
    board = page.get_by_role("table")
    expect(board.get_by_role("row", name="held Lathe 1")).to_be_visible()
    expect(board.get_by_role("link", name="Spindle bearing").first).to_be_visible()
    expect(board.get_by_role("link", name="planned").first).to_contain_text("Coolant check")
    check_axe(page, axe_source, "board")
    page.screenshot(path=str(DOCS / "web-board.png"), full_page=True)
    page.get_by_label("Filter machines").fill("mill")
    expect(board.get_by_role("rowheader", name="Lathe 1")).to_have_count(0)
    expect(page.get_by_role("rowheader", name="Mill 2")).to_be_visible()
    page.get_by_role("link", name="Next week").click()
    expect(page.get_by_role("heading", name=f"Board: week of {week_of(now + timedelta(7))}"))
    page.get_by_role("link", name="This week").click()
    page.get_by_role("link", name="Down now").click()
    row = page.get_by_role("row", name="Lathe 1")
    expect(row).to_contain_text("Spindle bearing")
    expect(row).to_contain_text("until released")
    expect(page.get_by_role("row", name="Mill 2")).to_have_count(0)
    check_axe(page, axe_source, "down now")
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    expect(page.get_by_text("Times in Asia/Tokyo.")).to_be_visible()
    page.reload()
    expect(page.get_by_text("Times in Asia/Tokyo.")).to_be_visible()  # remembered


def test_hold_form_shows_markup_as_text_and_api_messages(site, new_page, axe_source, tmp_path):
    site.add_machine("Press 3")
    watched = new_page("UTC")
    page = watched.page
    sign_in(page, site, "plan")
    page.get_by_role("button", name="New hold").click()
    page.get_by_label("Machine").select_option(label="Press 3")
    page.get_by_label("Start").fill("2031-05-04 08:00")
    page.get_by_label("End").fill("2031-05-04 07:00")
    page.get_by_label("Reason").fill('<b id="injected">bold</b><script>window.pwned=1</script>')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Must be later than start.")).to_be_visible()
    page.get_by_label("End").fill("2031-05-04 10:00")
    page.get_by_label("Notes").fill("line one\nline two")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Hold")).to_contain_text('<b id="injected">')
    assert page.locator("#injected").count() == 0
    assert page.evaluate("window.pwned") is None
    expect(page.get_by_text("2031-05-04 10:00", exact=True)).to_be_visible()
    check_axe(page, axe_source, "hold page")
    hold_id = int(page.url.rsplit("/", 1)[1])
    page.get_by_role("button", name="Edit").click()
    check_axe(page, axe_source, "hold form")
    page.get_by_label("End").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("until released")).to_be_visible()
    expect(page.get_by_role("cell", name="changed")).to_be_visible()  # its history
    hold = site.api("GET", f"/api/machines/holds/{hold_id}")
    assert hold["end"] is None and hold["start"] == datetime(2031, 5, 4, 8, tzinfo=UTC).timestamp()
    # Delete asks in a dialog on the page; Cancel (focused first) closes it and deletes nothing.
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog", name="Delete the hold")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    check_axe(page, axe_source, "delete dialog")
    page.screenshot(path=str(tmp_path / "delete-dialog.png"))
    print(f"screenshot: {tmp_path / 'delete-dialog.png'}")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert site.api("GET", f"/api/machines/holds/{hold_id}")["id"] == hold_id
    page.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(f"Hold {hold_id} deleted.")).to_be_visible()
    assert (
        call(site.base, "GET", f"/api/machines/holds/{hold_id}", site.tokens["plan"]).status == 404
    )


def test_schedule_form_previews_live_then_saves_and_skips(site, new_page, axe_source):
    machine = site.add_machine("Oven 4")
    site.api(
        "PUT",
        "/api/machines/holds/",
        {"machine_id": machine, "reason": "Door seal", "start": next_spring_forward().isoformat()},
    )
    watched = new_page("Europe/Berlin")
    page = watched.page
    sign_in(page, site, "plan")
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("button", name="New schedule").click()
    page.get_by_label("Name").fill("Sunday bake-out")
    page.get_by_label("Machine").select_option(label="Oven 4")
    page.get_by_label("Reason").fill("Bake-out")
    page.get_by_label("Repeats").select_option(label="Weekly")
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"):
        page.get_by_label(day, exact=True).uncheck()
    for month in ("January", "February", "May", "June", "July", "August"):
        page.get_by_label(month, exact=True).uncheck()
    for month in ("September", "October", "November", "December"):
        page.get_by_label(month, exact=True).uncheck()
    page.get_by_label("Time of day").fill("02:30")
    page.get_by_label("Duration (minutes)").fill("90")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    preview = page.locator("#preview")
    expect(preview).to_contain_text(
        "Every week on Sunday in March and April at 02:30 (Europe/Berlin), for 1 hour 30 minutes"
    )
    expect(preview.get_by_text("shifted")).to_be_visible()  # 02:30 does not exist that day
    expect(preview.get_by_role("link", name="conflict").first).to_be_visible()
    page.get_by_label("Time of day").fill("27:00")
    expect(preview).to_contain_text("time_of_day")
    page.get_by_label("Time of day").fill("02:30")
    expect(preview.get_by_text("shifted")).to_be_visible()
    last_year = next_spring_forward().year + 2
    page.get_by_label("Until").fill(f"{last_year}-04-30 23:00")
    expect(preview).to_contain_text(f"1 hour 30 minutes, until {last_year}-04-30 23:00")
    check_axe(page, axe_source, "schedule form")
    page.screenshot(path=str(DOCS / "web-schedule-form.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Schedule “Sunday bake-out” saved.")).to_be_visible()
    schedule_id = int(page.url.rsplit("/", 1)[1])
    stored = site.api("GET", f"/api/machines/holds/schedules/{schedule_id}")
    assert (stored["weekdays"], stored["months"], stored["duration"]) == (64, 12, 90)
    assert stored["timezone"] == "Europe/Berlin" and stored["time_of_day"] == "02:30:00"
    until = datetime(last_year, 4, 30, 21, tzinfo=UTC)  # 23:00 in Berlin, summer time
    assert stored["until"] == until.timestamp()
    first = page.get_by_role("button", name="Skip").first
    first.click()
    expect(page.get_by_text("Skipped the fire of")).to_be_visible()
    stored = site.api("GET", f"/api/machines/holds/schedules/{schedule_id}")
    assert stored["skip"] == [stored["skip"][0]] and stored["next_fire"] > stored["skip"][0]


def test_schedule_form_times_of_day_until_and_a_pasted_rrule(site, new_page, axe_source):
    site.add_machine("Press 2")
    watched = new_page("Europe/Berlin")
    page = watched.page
    sign_in(page, site, "plan")
    page.goto(site.base + "/schedules/new")
    page.get_by_label("Name").fill("Shift checks")
    page.get_by_label("Machine").select_option(label="Press 2")
    page.get_by_label("Reason").fill("Check")
    page.get_by_label("Repeats").select_option(label="Daily")
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Times of day").fill("06:00, 14:00, 22:00")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Every day at 06:00, 14:00 and 22:00 (Europe/Berlin)")
    expect(preview.locator("tbody tr")).to_have_count(10)
    end = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    page.get_by_label("Until").fill(f"{end} 12:00")
    expect(preview).to_contain_text(f", until {end} 12:00")
    expect(preview.locator("tbody tr")).not_to_have_count(10)
    page.get_by_label("Times of day").fill("06:00, 06:00")
    expect(preview).to_contain_text("times_of_day")
    page.get_by_label("Times of day").fill("06:00, 18:00")
    expect(preview).to_contain_text("at 06:00 and 18:00")
    # A pasted rule stands for the pattern fields; one the model cannot state is refused.
    rrule = page.get_by_label("RRULE")
    rrule.fill("RRULE:FREQ=YEARLY;BYWEEKNO=20")
    expect(preview).to_contain_text("BYWEEKNO")
    rrule.fill("DTSTART;TZID=Europe/Berlin:20990104T073000\nRRULE:FREQ=WEEKLY;BYDAY=MO,FR")
    expect(preview).to_contain_text("Every week on Monday and Friday at 07:30 (Europe/Berlin)")
    check_axe(page, axe_source, "schedule form with a rule")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Schedule “Shift checks” saved.")).to_be_visible()
    schedule_id = int(page.url.rsplit("/", 1)[1])
    stored = site.api("GET", f"/api/machines/holds/schedules/{schedule_id}")
    assert (stored["frequency"], stored["weekdays"], stored["until"]) == ("W", 17, None)
    assert stored["times_of_day"] == ["07:30:00"]
    expect(page.locator("#rrule-text")).to_contain_text("RRULE:FREQ=WEEKLY")
    check_axe(page, axe_source, "schedule page with its rule")


class _Attacker(http.server.BaseHTTPRequestHandler):
    """A page of another origin with a form that posts to the service."""

    page = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_form_from_another_origin_is_refused_even_with_a_valid_token(site, new_page):
    machine = site.add_machine("Saw 5")
    watched = new_page("UTC")
    page = watched.page
    sign_in(page, site, "plan")
    page.get_by_role("button", name="New hold").click()
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    _Attacker.page = (
        f'<!doctype html><form method="post" action="{site.base}/holds/new">'
        f'<input name="csrf_token" value="{token}"><input name="machine_id" value="{machine}">'
        '<input name="reason" value="forged"><button>Go</button></form>'
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        watched.others.add(f"127.0.0.1:{server.server_port}")
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        with page.expect_response(f"{site.base}/holds/new") as answer:
            page.get_by_role("button", name="Go").click()
        assert answer.value.status == 403
    finally:
        server.shutdown()
    assert site.count_holds(reason="forged") == 0


def test_the_session_holds_no_token_and_a_rotated_token_ends_it(site, new_page):
    watched = new_page("UTC")
    page = watched.page
    sign_in(page, site, "tech")
    token = site.tokens["tech"]
    cookies = {cookie["name"]: cookie for cookie in watched.context.cookies()}
    session = cookies["pytm4srv_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert token not in session["value"] and hash_token(token) not in session["value"]
    stored = page.evaluate("JSON.stringify([localStorage, sessionStorage]) + document.cookie")
    assert token not in stored and token not in page.content() and token not in page.url
    with Session(site.engine) as db_session:
        user = db_session.scalars(select(User).where(User.name == "tech")).one()
        user.token_hash = hash_token(new_token())
        db_session.commit()
    page.reload()
    expect(page.get_by_label("Token")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    log = site.live.log.read_text()
    assert token not in log


def test_every_other_page_passes_axe_and_works_from_the_keyboard(site, new_page, axe_source):
    machine = site.add_machine("Drill 6")
    site.api(
        "PUT",
        "/api/machines/holds/schedules/",
        {
            "machine_id": machine,
            "name": "Weekly",
            "reason": "Oil",
            "frequency": "W",
            "time_of_day": "07:00",
        },
    )
    site.api("PUT", "/api/machines/holds/", {"machine_id": machine, "reason": "Chuck"})
    watched = new_page("UTC")
    page = watched.page
    sign_in(page, site, "ada")
    for link in ("Schedules", "Subscribe", "Machines"):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        check_axe(page, axe_source, link)
    page.get_by_role("link", name="Schedules", exact=True).click()
    page.get_by_role("link", name="Weekly").click()
    check_axe(page, axe_source, "schedule page")
    # Without script, Delete goes to a confirmation page.
    page.goto(page.url + "/delete")
    expect(page.get_by_role("heading", name="Delete the schedule “Weekly”?")).to_be_visible()
    check_axe(page, axe_source, "confirmation")
    page.go_back()
    # The keyboard alone: Delete, then Tab back from Cancel to the dialog's Delete, and Enter.
    page.get_by_role("button", name="Delete").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete the schedule “Weekly”?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text("deleted.")).to_be_visible()
    page.get_by_role("link", name="Subscribe").click()
    page.get_by_role("button", name="Subscribe").click()
    url = page.get_by_label("Your calendar address").input_value()
    assert "/api/feed/" in url and url.endswith(".ics")
    page.get_by_role("link", name="Machines").click()
    page.get_by_label("Name").fill("Drill 7")
    page.get_by_role("button", name="Add machine").click()
    expect(page.get_by_role("rowheader", name="Drill 7")).to_be_visible()
    page.get_by_role("button", name="Delete Drill 6").click()
    expect(page.get_by_text("delete those first")).to_be_visible()
