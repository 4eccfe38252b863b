"""Instants read back from either database are aware UTC datetimes, whatever the session's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import literal, select, text
from sqlalchemy.engine import make_url

from pytm4srv.db import UTCDateTime, _as_utc, make_engine
from tests.conftest import on_postgresql

MOMENT = datetime(2026, 3, 29, 1, 30, 15, 250, tzinfo=UTC)


def test_instants_round_trip_as_utc(engine):
    with engine.connect() as conn:
        value = conn.scalar(select(literal(MOMENT, UTCDateTime())))
    assert value == MOMENT
    assert value.tzinfo is UTC


@pytest.mark.postgres_only
@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL")
def test_postgresql_sessions_run_in_utc_whatever_the_server_default(database_url):
    # A client asking for another zone at connection time gets UTC all the same: values then
    # need no conversion on the way out.
    url = make_url(database_url).update_query_dict({"options": "-c TimeZone=Asia/Kolkata"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW TIME ZONE")) == "UTC"
            value = conn.scalar(select(literal(MOMENT, UTCDateTime())))
            conn.rollback()
        assert value == MOMENT
        assert value.tzinfo is UTC
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "read",
    [
        MOMENT.replace(tzinfo=None),  # SQLite: naive UTC
        MOMENT.astimezone(ZoneInfo("Australia/Lord_Howe")),
        MOMENT.astimezone(timezone(timedelta(hours=-5))),
        MOMENT.astimezone(ZoneInfo("Etc/UTC")),
    ],
)
def test_a_value_in_another_zone_is_converted(read):
    value = _as_utc(read)
    assert value == MOMENT
    assert value.tzinfo is UTC


def test_utc_values_and_null_pass_as_they_are():
    assert _as_utc(MOMENT) is MOMENT
    assert _as_utc(None) is None
