"""Every error is the JSON envelope {code, status, message, errors}, never HTML."""

from __future__ import annotations

import pytest

from pytm4srv.errors import UNKNOWN_PATH


def assert_envelope(response, code: int) -> None:
    assert response.status_code == code
    assert response.mimetype == "application/json"
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert response.json["code"] == code
    assert response.json["message"]


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("get", "/api/nowhere", 404),
        ("get", "/nowhere", 404),
        ("post", "/api/machines/", 405),
        ("delete", "/api/machines/holds/", 405),
        ("get", "/api/machines/holds/?machines=1", 422),
        ("put", "/api/machines/holds/", 400),
    ],
)
def test_errors_use_the_envelope(admin, method, path, code):
    assert_envelope(getattr(admin, method)(path), code)


def test_unauthenticated_error_uses_the_envelope(client):
    assert_envelope(client.get("/api/machines/"), 401)


def test_forbidden_uses_the_envelope(staff):
    assert_envelope(staff.delete("/api/machines/holds/1"), 403)


def test_oversized_body_is_413(admin, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    r = admin.put(
        "/api/machines/holds/",
        data='{"reason": "' + "x" * 2048 + '"}',
        content_type="application/json",
    )
    assert_envelope(r, 413)
    assert r.json["message"] == "The request body is larger than 1024 bytes."


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ('{"machine_id": 1,\n "reason": "r",, "notes": ""}', "line 2, column 16"),
        ('{"reason": "r"', "line 1, column 15"),
        ("\n\n  nope", "line 3, column 3"),
    ],
)
def test_malformed_json_is_400_naming_line_and_column(admin, body, where):
    r = admin.put("/api/machines/holds/", data=body, content_type="application/json")
    assert_envelope(r, 400)
    assert where in r.json["message"]
    assert r.json["errors"] == {"json": [r.json["message"]]}


@pytest.mark.parametrize("path", ["/api/nowhere", "/nowhere", "/api/machines/holds/1/x"])
def test_unknown_path_is_a_short_404_of_our_own(admin, path):
    r = admin.get(path)
    assert_envelope(r, 404)
    assert r.json["message"] == UNKNOWN_PATH
    assert admin.get("/api/machines/holds/12345").json["message"] == "No such hold."


def test_unexpected_error_is_a_bland_500_envelope(admin, app, monkeypatch):
    app.testing = False  # let Flask turn the exception into a 500, as in production

    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("pytm4srv.holds.views.filtered_holds", explode)
    r = admin.get("/api/machines/holds/")
    assert_envelope(r, 500)
    assert "secret" not in r.get_data(as_text=True)


@pytest.mark.parametrize(
    "path", ["/api/machines", "/api/machines/holds", "/api/machines/holds/schedules"]
)
def test_paths_without_trailing_slash_answer_directly(admin, path):
    r = admin.get(path)
    assert r.status_code == 200
    assert r.mimetype == "application/json"
