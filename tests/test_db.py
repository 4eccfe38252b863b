"""Instants read back from either database are aware UTC datetimes, whatever the session's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


@pytest.mark.postgres_only
@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL")
def test_the_driver_answers_in_utc_itself(database_url):
    # What keeps reads fast: psycopg gives values the session's zone, here datetime.UTC itself, so
    # UTCDateTime passes them as they are. Fails if the connect hook is gone (this client asks
    # for another zone, and the server's default is not spelled "UTC" either).
    url = make_url(database_url).update_query_dict({"options": "-c TimeZone=Europe/Paris"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT %(m)s::timestamptz", {"m": MOMENT}).scalar()
            conn.rollback()
        assert raw == MOMENT
        assert raw.tzinfo is UTC
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def other_zone_engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


ZONES = ["Asia/Kolkata", "America/St_Johns", "Australia/Lord_Howe", "Etc/GMT+12", "Europe/London"]


@pytest.mark.postgres_only
@pytest.mark.skipif(not on_postgresql(), reason="needs PostgreSQL")
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
)
def test_instants_read_in_a_session_of_another_zone_are_the_same_utc_instants(
    other_zone_engine, moment, zone
):
    # Without the UTC session (here set aside on the connection), values come back in the
    # session's zone and are converted: slower, and exactly the same instants.
    with other_zone_engine.connect() as conn:
        conn.exec_driver_sql(f"SET TIME ZONE '{zone}'")
        assert conn.scalar(text("SHOW TIME ZONE")) == zone
        raw = conn.exec_driver_sql("SELECT %(m)s::timestamptz", {"m": moment}).scalar()
        value = conn.scalar(select(literal(moment, UTCDateTime())))
        conn.rollback()
        conn.invalidate()  # the pool gets no connection in another zone back
    assert raw == moment and raw.tzinfo is not UTC
    assert value == moment
    assert value.tzinfo is UTC


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


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson would read those as floats
    | st.floats(allow_nan=False)  # infinities are written as 1e999 below
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _dumped(value):
    import json

    return json.dumps(value).replace("Infinity", "1e999")


@given(JSON_VALUES)
def test_json_columns_read_as_the_standard_library_reads_them(value):
    import json

    from pytm4srv.db import read_json

    text = _dumped(value)
    expected = json.loads(text)
    for form in (text, text.encode(), memoryview(text.encode())):
        got = read_json(form)
        assert got == expected and type(got) is type(expected)
        if isinstance(expected, list):
            assert [type(item) for item in got] == [type(item) for item in expected]


def test_json_columns_are_read_through_read_json(engine):
    from sqlalchemy import JSON

    from pytm4srv.db import read_json

    assert engine.dialect._json_deserializer is read_json
    stored = "'[1, \"a\", 123456789012345678901234567890]'"
    if engine.dialect.name == "postgresql":
        stored += "::json"
    with engine.connect() as conn:
        value = conn.scalar(text(f"SELECT {stored} AS v").columns(v=JSON))
    assert value == [1, "a", 123456789012345678901234567890]
