"""Fixtures of the page tests: a browser-like client signed in with a token."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Caller


def next_spring_forward() -> datetime:
    """Midnight UTC of the next day on which Europe/Berlin's clocks skip 02:00-03:00 (the last
    Sunday of March), a day ahead at least: a preview from now reaches it among its first fires
    of "Sundays in March and April"."""
    today = datetime.now(UTC).date()
    for year in (today.year, today.year + 1):
        day = date(year, 3, 31)
        day -= timedelta(days=(day.weekday() - 6) % 7)
        if day > today:
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    raise AssertionError("unreachable")


TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: bytes | str) -> str:
    """The anti-forgery token of a page's forms."""
    text = page.decode() if isinstance(page, bytes) else page
    match = TOKEN_FIELD.search(text)
    assert match, "the page has no form token"
    return match.group(1)


class Browser:
    """A test client that posts forms as a page of the service does (its token, same origin)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def token(self, path: str = "/signin") -> str:
        return csrf_of(self.client.get(path).data)

    def post(self, path: str, data: dict[str, Any], *, origin: str | None = None, **kw: Any) -> Any:
        form = {"csrf_token": self.token()} | data
        headers = {"Origin": origin or "http://localhost", "Sec-Fetch-Site": "same-origin"}
        headers |= kw.pop("headers", {})
        return self.client.post(path, data=form, headers=headers, **kw)

    def sign_in(self, caller: Caller) -> Any:
        return self.post("/signin", {"token": caller.token})


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def signed_in(browser: Browser) -> Callable[[Caller], Browser]:
    def sign(caller: Caller) -> Browser:
        answer = browser.sign_in(caller)
        assert answer.status_code == 302, answer.data
        return browser

    return sign
