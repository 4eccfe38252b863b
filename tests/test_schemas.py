"""StrictSchema's dump plan gives exactly marshmallow's own answer, only sooner."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import fields

from pytm4srv.holds.schedules import DetailedPreview
from pytm4srv.holds.schemas import (
    HoldSchema,
    PreviewFireSchema,
    ScheduleSchema,
    dump_preview_fires,
)
from pytm4srv.machines.views import MachineSchema
from pytm4srv.recurrence import Fire
from pytm4srv.schemas import StrictSchema


def marshmallows_own_dump(schema: ma.Schema, obj: Any, many: bool = False) -> Any:
    """What marshmallow answers without the plan: its own ``Schema._serialize``."""
    return ma.Schema._serialize(schema, obj, many=many)


instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
ids = st.integers(min_value=1, max_value=2**31 - 1)
texts = st.text(max_size=20)
nullable_ids = st.none() | ids

hold_rows = st.fixed_dictionaries(
    {
        "id": ids,
        "machine_id": ids,
        "user_id": nullable_ids,
        "schedule_id": nullable_ids,
        "reason": texts,
        "notes": texts,
        "start": instants,
        "end": st.none() | instants,
    }
)
schedule_rows = st.fixed_dictionaries(
    {
        "id": ids,
        "machine_id": ids,
        "name": texts,
        "reason": texts,
        "frequency": st.sampled_from("YMWDH"),
        "interval": ids,
        "indices": st.lists(st.integers(min_value=-366, max_value=366), max_size=4),
        "months": st.integers(min_value=0, max_value=4095),
        "weekdays": st.integers(min_value=0, max_value=127),
        "time_of_day": st.builds(time, st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)),
        "duration": st.none() | st.integers(1, 2**31 - 1).map(lambda m: timedelta(minutes=m)),
        "timezone": st.none() | st.sampled_from(["UTC", "Europe/Berlin"]),
        "skip": st.none() | st.lists(instants, max_size=3).map(sorted),
        "anchor": instants,
        "created": instants,
        "last_fire": st.none() | instants,
        "next_fire": st.none() | instants,
        "summary": st.none() | texts,
    }
)
SCHEMAS = {"hold": (HoldSchema, hold_rows), "schedule": (ScheduleSchema, schedule_rows)}


@pytest.mark.parametrize("schema_class", [HoldSchema, ScheduleSchema, MachineSchema])
def test_the_service_schemas_dump_through_the_plan(schema_class):
    plan = schema_class()._dump_plan
    assert plan is not None
    assert [key for key, _, _ in plan] == list(schema_class().dump_fields)


@pytest.mark.parametrize("kind", SCHEMAS)
@given(data=st.data())
def test_plan_dumps_rows_and_objects_as_marshmallow_does(kind, data):
    schema_class, rows = SCHEMAS[kind]
    schema = schema_class(many=True)
    batch = data.draw(st.lists(rows, max_size=5))
    objects = [SimpleNamespace(**row) for row in batch]
    expected = marshmallows_own_dump(schema, batch, many=True)
    assert schema.dump(batch) == expected
    assert schema.dump(objects) == expected
    for row, one in zip(batch, expected, strict=True):
        assert schema_class().dump(row) == one


@pytest.mark.parametrize("kind", SCHEMAS)
@given(data=st.data())
def test_a_missing_value_is_left_to_marshmallow(kind, data):
    schema_class, rows = SCHEMAS[kind]
    row = data.draw(rows)
    gone = data.draw(st.sampled_from(sorted(row)))
    partial = {k: v for k, v in row.items() if k != gone}
    schema = schema_class()
    dumped = schema.dump(partial)
    assert gone not in dumped  # marshmallow leaves a missing value out
    assert dumped == marshmallows_own_dump(schema, partial)
    assert schema.dump(SimpleNamespace(**partial)) == dumped


zones = st.sampled_from(
    [UTC, ZoneInfo("America/Chicago"), ZoneInfo("Pacific/Apia"), timezone(timedelta(hours=5))]
)
preview_fires = st.tuples(
    st.datetimes(
        min_value=datetime(1, 1, 3), max_value=datetime(9990, 1, 1), timezones=st.just(UTC)
    ),
    zones,
    st.none() | st.integers(1, 10**6),
    st.booleans(),
    st.lists(ids, max_size=3).map(sorted),
)


@given(rows=st.lists(preview_fires, max_size=5))
def test_preview_fires_are_dumped_as_their_schema_dumps_them(rows):
    fires = [Fire(start, start.astimezone(zone), shifted) for start, zone, _, shifted, _ in rows]
    ends = [None if m is None else start + timedelta(minutes=m) for start, _, m, _, _ in rows]
    preview = DetailedPreview(fires, ends, [conflicts for *_, conflicts in rows])
    plain = [
        {"start": f.instant, "end": end, "local": f.local, "shifted": f.shifted, "conflicts": c}
        for f, end, c in zip(*preview, strict=True)
    ]
    expected = marshmallows_own_dump(PreviewFireSchema(many=True), plain, many=True)
    assert dump_preview_fires(preview) == expected
    assert list(PreviewFireSchema().dump_fields) == [
        "start",
        "end",
        "local",
        "shifted",
        "conflicts",
    ]


def test_a_row_that_is_a_sequence_goes_marshmallows_way():
    """Objects with ``__getitem__`` that are not mappings (a tuple row) are read by marshmallow."""

    class Row(tuple):
        id = 7
        name = "lathe"

    assert MachineSchema().dump(Row()) == {"id": 7, "name": "lathe"}


def test_fields_that_read_values_their_own_way_turn_the_plan_off():
    class WithDefault(StrictSchema):
        a = fields.Integer(dump_default=5)

    class WithMethod(StrictSchema):
        a = fields.Method("double")

        def double(self, obj: Any) -> int:
            return obj["a"] * 2

    class WithDottedAttribute(StrictSchema):
        a = fields.Integer(attribute="b.c")

    class WithAccessor(StrictSchema):
        a = fields.Integer()

        def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
            return 42

    for schema_class in (WithDefault, WithMethod, WithDottedAttribute, WithAccessor):
        assert schema_class()._dump_plan is None, schema_class
    assert WithDefault().dump({}) == {"a": 5}
    assert WithMethod().dump({"a": 2}) == {"a": 4}
    assert WithDottedAttribute().dump({"b": {"c": 3}}) == {"a": 3}
    assert WithAccessor().dump({"a": 1}) == {"a": 42}


def test_data_key_and_attribute_are_honoured():
    class Renamed(StrictSchema):
        a = fields.Integer(data_key="A", attribute="x")

    assert Renamed()._dump_plan is not None
    assert Renamed().dump({"x": 1}) == {"A": 1}
    assert Renamed(many=True).dump([SimpleNamespace(x=2)]) == [{"A": 2}]
