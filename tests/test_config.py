"""Configuration: PYTM4SRV_* variables, test overrides, validation of the zone."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from pytm4srv import create_app


def test_environment_variables_configure_the_app(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTM4SRV_TIMEZONE", "Europe/London")
    monkeypatch.setenv("PYTM4SRV_DATABASE_URL", f"sqlite:///{tmp_path}/a.sqlite")
    monkeypatch.setenv("PYTM4SRV_MAX_PAGE_SIZE", "50")
    app = create_app()
    assert app.config["ZONE"] == ZoneInfo("Europe/London")
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path}/a.sqlite"
    assert app.config["MAX_PAGE_SIZE"] == 50


def test_test_config_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("PYTM4SRV_TIMEZONE", "Europe/London")
    assert create_app({"TIMEZONE": "America/Chicago"}).config["ZONE"] == ZoneInfo("America/Chicago")


def test_unknown_zone_fails_at_startup():
    with pytest.raises(RuntimeError, match="PYTM4SRV_TIMEZONE"):
        create_app({"TIMEZONE": "Mars/Olympus"})
