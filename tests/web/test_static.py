"""The pages' static files: vendored libraries pinned by hash with their licences, served by
the app itself."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytm4srv

STATIC = Path(pytm4srv.__file__).parent / "static"
HTMX = STATIC / "vendor" / "htmx" / "htmx-2.0.8.min.js"
HTMX_SHA256 = "22283ef68cb7545914f0a88a1bdedc7256a703d1d580c1d255217d0a50d31313"


def test_htmx_is_the_pinned_release_with_its_licence():
    assert hashlib.sha256(HTMX.read_bytes()).hexdigest() == HTMX_SHA256
    assert HTMX_SHA256 in (HTMX.parent / "README.md").read_text()
    assert "Zero-Clause BSD" in (HTMX.parent / "LICENSE").read_text()
    assert 'version:"2.0.8"' in HTMX.read_text()


def test_pages_load_scripts_and_styles_from_the_app_only(signed_in, staff):
    page = signed_in(staff).get("/").data.decode()
    sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert sources and all(source.startswith("/static/") for source in sources)
    assert "/static/vendor/htmx/htmx-2.0.8.min.js" in sources
    for source in sources:
        answer = signed_in(staff).get(source)
        assert answer.status_code == 200
        answer.close()


def test_the_json_api_needs_no_form_token(signed_in, staff, machine):
    browser = signed_in(staff)  # a session cookie in the same client changes nothing
    answer = browser.client.put(
        "/api/machines/holds/",
        json={"machine_id": machine.id, "reason": "by a program"},
        headers={"Authorization": f"Bearer {staff.token}"},
    )
    assert answer.status_code == 201
    answer = browser.client.put("/api/machines/holds/", json={"machine_id": machine.id})
    assert answer.status_code == 401  # the session cookie is no credential for the API


def test_down_now_refreshes_itself_within_a_minute(signed_in, staff):
    page = signed_in(staff).get("/down").data.decode()
    every = re.search(r'hx-get="/down/list" hx-trigger="every (\d+)s"', page)
    assert every and int(every.group(1)) <= 60


def test_subscribe_warns_then_shows_a_working_feed_url(signed_in, staff, client):
    browser = signed_in(staff)
    page = browser.get("/subscribe").data.decode()
    assert "A new address retires the old one" in page and "/api/feed/" not in page
    page = browser.post("/subscribe", {}).data.decode()
    url = re.search(r'value="(http://localhost/api/feed/[^"]+\.ics)"', page).group(1)
    answer = client.get(url.removeprefix("http://localhost"))
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
