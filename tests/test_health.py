"""``GET /api/health``: no token, 200 while the database answers, 503 when it does not."""

from __future__ import annotations

import pytest

from pytm4srv import create_app
from tests.conftest import on_postgresql
from tests.test_errors import assert_envelope


def nonexistent_database(tmp_path) -> str:
    """A database URL whose server or file does not exist."""
    if on_postgresql():
        # A socket folder that does not exist: psycopg cannot connect, at once.
        return f"postgresql+psycopg://root@/test?host={tmp_path / 'no-such-socket-dir'}"
    return f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite'}"


def test_health_needs_no_token_and_is_not_cached(client):
    r = client.get("/api/health")
    assert r.status_code == 200
    assert r.json == {"status": "ok"}
    assert r.headers["Cache-Control"] == "no-store"


def test_health_ignores_a_token_even_a_bad_one(client):
    r = client.get("/api/health", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 200
    assert r.json == {"status": "ok"}


@pytest.mark.parametrize("token", [None, "Bearer nope"])
def test_health_is_503_while_the_database_does_not_answer(tmp_path, token):
    app = create_app({"DATABASE_URL": nonexistent_database(tmp_path)})
    headers = {"Authorization": token} if token else {}
    r = app.test_client().get("/api/health", headers=headers)
    assert_envelope(r, 503)
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.skipif(on_postgresql(), reason="SQLite: the database file appears later")
def test_health_answers_again_once_the_database_is_there(tmp_path):
    url = nonexistent_database(tmp_path)
    client = create_app({"DATABASE_URL": url}).test_client()
    assert client.get("/api/health").status_code == 503
    (tmp_path / "no-such-folder").mkdir()
    assert client.get("/api/health").status_code == 200


def test_other_paths_still_need_a_token(client):
    assert_envelope(client.get("/api/healthz"), 401)
    assert_envelope(client.get("/api/health/x"), 401)
