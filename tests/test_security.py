"""Tokens stay out of logs and answers, answers to authenticated requests are not cached, no
debug page in production, and role checks come before anything else is revealed."""

from __future__ import annotations

import logging

import pytest

from pytm4srv import create_app
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
SECRET = "s3cr3t-token-that-must-not-leak"


@pytest.fixture
def all_logs(caplog, app_log):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_bogus_token_is_neither_logged_nor_echoed(client, all_logs):
    r = client.get(HOLDS, headers={"Authorization": f"Bearer {SECRET}"})
    assert_envelope(r, 401)
    assert SECRET not in r.get_data(as_text=True)
    assert SECRET not in all_logs.text


def test_token_of_a_request_that_fails_is_not_logged(admin, app, all_logs, monkeypatch):
    app.testing = False  # as in production: Flask logs the exception and answers 500

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("pytm4srv.holds.views.filtered_holds", explode)
    r = admin.get(HOLDS)
    assert_envelope(r, 500)
    assert "boom" in all_logs.text  # the failure is logged...
    assert admin.token not in all_logs.text  # ...without the caller's token
    assert admin.token not in r.get_data(as_text=True)


def test_token_is_not_in_the_answer_to_a_query_that_echoes_input(admin):
    r = admin.get(f"{HOLDS}?bogus={admin.token}")
    assert_envelope(r, 422)
    assert admin.token not in r.get_data(as_text=True)


ERRORS_OF_AUTHENTICATED_REQUESTS = [
    ("get", "/api/machines/holds/999", {}, 404),
    ("get", "/api/machines/holds/?limit=x", {}, 422),
    ("put", HOLDS, {"data": "x", "content_type": "text/plain"}, 400),
    ("put", HOLDS, {"data": "x" * 70_000, "content_type": "application/json"}, 413),
    ("get", HOLDS + "?machine=" + "1" * 5000, {}, 414),
    ("post", HOLDS, {}, 405),
    ("get", "/api/nowhere", {}, 404),
    ("delete", "/api/machines/holds/1", {}, 403),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), ERRORS_OF_AUTHENTICATED_REQUESTS)
def test_errors_to_authenticated_requests_are_not_cached(staff, method, path, kwargs, status):
    r = getattr(staff, method)(path, **kwargs)
    assert_envelope(r, status)
    assert r.headers["Cache-Control"] == "no-store"


def test_answer_to_a_bogus_token_is_not_cached(client):
    r = client.get(HOLDS, headers={"Authorization": "Bearer nope"})
    assert r.headers["Cache-Control"] == "no-store"


def test_500_to_an_authenticated_request_is_not_cached(admin, app, monkeypatch):
    app.testing = False
    monkeypatch.setattr("pytm4srv.holds.views.filtered_holds", lambda args, page: 1 / 0)
    r = admin.get(HOLDS)
    assert_envelope(r, 500)
    assert r.headers["Cache-Control"] == "no-store"


def test_405_names_the_allowed_methods(admin):
    r = admin.post(HOLDS)
    assert_envelope(r, 405)
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "PUT"}


def test_production_app_shows_no_debug_page_or_stack_trace(database_url, monkeypatch, make_caller):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    app = create_app({"DATABASE_URL": database_url})
    assert not app.debug
    assert not app.testing
    assert not app.config["PROPAGATE_EXCEPTIONS"]

    @app.get("/api/explode")
    def explode():
        raise RuntimeError("secret internals in /srv/app.py line 12")

    r = app.test_client().get("/api/explode")
    assert r.status_code == 401  # even a broken route is behind the token check
    app.before_request_funcs[None].clear()
    r = app.test_client().get("/api/explode")
    assert_envelope(r, 500)
    body = r.get_data(as_text=True)
    assert "Traceback" not in body
    assert "secret" not in body
    assert "<html" not in body.lower()


# --- roles before validation: a caller without the role learns nothing about its input -------


ROLE_GATED_BAD_INPUT = [
    ("put", SCHEDULES, {"json": {"bogus": 1}}),
    ("put", SCHEDULES, {"data": "not json", "content_type": "text/plain"}),
    ("patch", f"{SCHEDULES}1", {"json": {"interval": 0}}),
    ("patch", f"{SCHEDULES}999999", {"json": {}}),
    ("delete", f"{SCHEDULES}999999", {}),
    ("delete", f"{HOLDS}999999", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ROLE_GATED_BAD_INPUT)
def test_staff_gets_403_before_any_validation_or_lookup(staff, method, path, kwargs):
    assert_envelope(getattr(staff, method)(path, **kwargs), 403)


@pytest.mark.parametrize("role", ["admin", "planner", "staff"])
@pytest.mark.parametrize("field", ["user_id", "schedule_id", "id"])
def test_no_role_can_reassign_a_hold(make_caller, machine, session, role, field):
    owner = make_caller("staff")
    hold = owner.put(HOLDS, json={"machine_id": machine.id, "reason": "r"}).json
    caller = make_caller(role)
    r = caller.patch(f"{HOLDS}{hold['id']}", json={field: caller.user.id})
    assert_envelope(r, 422)
    assert caller.get(f"{HOLDS}{hold['id']}").json == hold


@pytest.mark.parametrize("role", ["admin", "planner", "staff"])
def test_every_role_creates_holds_only_in_its_own_name(make_caller, machine, role):
    caller = make_caller(role)
    other = make_caller("admin")
    r = caller.put(HOLDS, json={"machine_id": machine.id, "reason": "r", "user_id": other.user.id})
    assert_envelope(r, 422)
    r = caller.put(HOLDS, json={"machine_id": machine.id, "reason": "r"})
    assert r.json["user_id"] == caller.user.id
