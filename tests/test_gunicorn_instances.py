"""Two instances of the service on one host: neither takes the other's gunicorn control
socket (gunicorn's default is one path per user)."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import migrated_database
from tests.live import gunicorn, seed

pytestmark = pytest.mark.slow


def test_two_instances_share_no_control_socket_and_both_serve(tmp_path: Path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # gunicorn's default socket lives under $HOME
    with migrated_database(tmp_path) as url:
        seed(url)
        with (
            gunicorn(url, tmp_path / "first.log") as first,
            gunicorn(url, tmp_path / "second.log") as second,
        ):
            for live in (first, second):
                with urllib.request.urlopen(f"{live.base}/api/health", timeout=10) as answer:
                    assert answer.status == 200
        assert list(home.rglob("*.ctl")) == [] and not (home / ".gunicorn").exists()
        for log in ("first.log", "second.log"):
            assert "control" not in (tmp_path / log).read_text().lower()


def test_an_instance_takes_the_control_socket_it_is_given(tmp_path: Path):
    socket_path = tmp_path / "instance.ctl"
    with migrated_database(tmp_path) as url:
        seed(url)
        with gunicorn(url, tmp_path / "log", CONTROL_SOCKET=str(socket_path)):
            assert socket_path.exists() and os.stat(socket_path).st_mode & 0o777 == 0o600
