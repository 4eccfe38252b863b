"""The shortcuts of ``pytm4srv.speedups`` answer exactly as the library they bypass would.

The reference is marshmallow's own ``Schema.dump`` on a plain ``marshmallow.Schema`` with the same
fields. Answers are compared by ``repr``, so key order and value types (1 against 1.0 or True)
count, not only equality.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import fields, missing
from sqlalchemy import select

from pytm4srv.fields import StrictInteger, Timestamp
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.holds.schemas import HoldSchema, ScheduleSchema
from pytm4srv.machines.schemas import MachineSchema
from pytm4srv.schemas import StrictSchema, Text
from pytm4srv.speedups import PlannedDumpSchema, dump_plan, unchanged_type


def marshmallows_dump(schema: ma.Schema, obj: Any, many: bool = False) -> Any:
    """What marshmallow itself answers: ``dump`` of a plain schema with ``schema``'s dump fields."""
    plain = ma.Schema.from_dict(dict(schema.dump_fields), name="Plain")
    return plain(many=many).dump(obj)


def assert_same(dumped: Any, expected: Any) -> None:
    assert repr(dumped) == repr(expected)


def outcome(dump: Any) -> tuple[str, str]:
    """What calling ``dump`` gives: the repr of its answer, or the type and text of its error."""
    try:
        return "answer", repr(dump())
    except Exception as exc:  # any error: it must be the same error
        return type(exc).__name__, str(exc)


# -- the private names relied on -------------------------------------------------------------------


def test_the_private_names_the_plan_relies_on_still_mean_the_same():
    # Field.serialize reads the value only when _CHECK_ATTRIBUTE, and then formats it with
    # _serialize(value, attr, obj): the plan does the same without the reading machinery.
    assert fields.Field._CHECK_ATTRIBUTE is True
    for no_reading in (fields.Method, fields.Function, fields.Constant):
        assert no_reading._CHECK_ATTRIBUTE is False, no_reading
    assert list(inspect.signature(fields.Field._serialize).parameters)[:4] == [
        "self",
        "value",
        "attr",
        "obj",
    ]
    serialize = inspect.getsource(fields.Field.serialize)
    assert "self._CHECK_ATTRIBUTE" in serialize
    assert "self._serialize(value, attr, obj" in serialize
    # The plan replaces Schema._serialize(obj, *, many), which dump calls.
    assert "many" in inspect.signature(ma.Schema._serialize).parameters
    assert "self._serialize(" in inspect.getsource(ma.Schema.dump)
    assert ma.Schema.dict_class is dict
    # Values the plan passes without calling the field: marshmallow gives them back as they are.
    assert fields.Integer().num_type is int and fields.Float().num_type is float
    assert fields.Integer().as_string is False
    for field, value in [
        (fields.String(), "text"),
        (fields.Integer(), 2**70),
        (fields.Float(), 2.5),
        (Text(max_length=5), "abc"),
        (StrictInteger(), -3),
    ]:
        assert field._serialize(value, "a", {}) is value, field
        assert field._serialize(None, "a", {}) is None, field


def test_fields_whose_formatting_may_change_a_value_are_always_called():
    class Doubled(fields.Integer):
        def _format_num(self, value: Any) -> int:
            return int(value) * 2

    class Shouting(fields.String):
        def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
            return str(value).upper()

    assert unchanged_type(fields.String()) == "str"
    assert unchanged_type(fields.Integer()) == "int"
    assert unchanged_type(fields.Float()) == "float"
    for field in (
        Doubled(),
        Shouting(),
        fields.Integer(as_string=True),
        fields.Decimal(),
        fields.Boolean(),
        Timestamp(),
    ):
        assert unchanged_type(field) is None, field

    class Schema(StrictSchema):
        a = Doubled()
        b = Shouting()
        c = fields.Integer(as_string=True)

    assert_same(Schema().dump({"a": 2, "b": "x", "c": 3}), {"a": 4, "b": "X", "c": "3"})


# -- the service's schemas -------------------------------------------------------------------------

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
        # Columns the schema does not show are ignored.
        "next_fire_zone": st.none() | st.sampled_from(["", "UTC"]),
    }
)
SCHEMAS = {"hold": (HoldSchema, hold_rows), "schedule": (ScheduleSchema, schedule_rows)}


class ReadOnlyMapping(Mapping[str, Any]):
    """A mapping that is not a dict, as a database row mapping is not."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def shapes(row: dict[str, Any]) -> list[Any]:
    """The row as a dict, as a mapping that is not a dict, and as a plain object."""
    return [row, ReadOnlyMapping(row), SimpleNamespace(**row)]


@pytest.mark.parametrize("schema_class", [HoldSchema, ScheduleSchema, MachineSchema])
def test_the_service_schemas_dump_through_the_plan(schema_class):
    schema = schema_class()
    plan = dump_plan(schema)
    assert plan is not None
    assert [key for key, *_ in plan.steps] == list(schema.dump_fields)


@pytest.mark.parametrize("kind", SCHEMAS)
@given(data=st.data())
def test_plan_dumps_rows_and_objects_as_marshmallow_does(kind, data):
    schema_class, rows = SCHEMAS[kind]
    batch = data.draw(st.lists(rows, max_size=5))
    expected = marshmallows_dump(schema_class(), batch, many=True)
    for shape in range(3):
        objects = [shapes(row)[shape] for row in batch]
        assert_same(schema_class(many=True).dump(objects), expected)
    for row, one in zip(batch, expected, strict=True):
        for obj in shapes(row):
            assert_same(schema_class().dump(obj), one)


@pytest.mark.parametrize("kind", SCHEMAS)
@given(data=st.data())
def test_missing_values_are_left_out_as_marshmallow_does(kind, data):
    schema_class, rows = SCHEMAS[kind]
    row = data.draw(rows)
    gone = data.draw(st.sets(st.sampled_from(sorted(row))))
    # Absent keys and attributes, and values that are marshmallow's own ``missing``.
    as_missing = data.draw(st.sets(st.sampled_from(sorted(row))))
    partial = {k: (missing if k in as_missing else v) for k, v in row.items() if k not in gone}
    schema = schema_class()
    expected = marshmallows_dump(schema, partial)
    assert not (gone | as_missing) & set(expected)
    for obj in shapes(partial):
        assert_same(schema.dump(obj), expected)
    mixed = [partial, row, SimpleNamespace(**partial)]
    assert_same(schema_class(many=True).dump(mixed), marshmallows_dump(schema, mixed, many=True))


@pytest.mark.parametrize("kind", SCHEMAS)
@given(data=st.data())
def test_only_and_exclude_are_honoured(kind, data):
    schema_class, rows = SCHEMAS[kind]
    row = data.draw(rows)
    names = sorted(schema_class().dump_fields)
    only = data.draw(st.sets(st.sampled_from(names), min_size=1))
    exclude = data.draw(st.sets(st.sampled_from(names)))
    for schema in (schema_class(only=sorted(only)), schema_class(exclude=sorted(exclude))):
        assert_same(schema.dump(row), marshmallows_dump(schema, row))


def test_database_rows_and_models_dump_as_marshmallow_does(session, machine, make_schedule):
    session.add_all(
        [
            MachineHold(
                machine_id=machine.id,
                reason="calibration",
                start=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
                end=None,
            ),
            MachineHold(
                machine_id=machine.id,
                reason="ünïcode ✓",
                notes="n",
                start=datetime(1970, 1, 1, 0, 0, 0, 250, tzinfo=UTC),
                end=datetime(9999, 12, 30, tzinfo=UTC),
            ),
        ]
    )
    make_schedule(machine, duration=timedelta(minutes=90), indices=[1, -1])
    make_schedule(machine, last_fire=datetime(2027, 1, 2, 8, tzinfo=UTC))
    session.commit()
    for schema_class, model in ((HoldSchema, MachineHold), (ScheduleSchema, MachineHoldSchedule)):
        columns = select(*model.__table__.columns).order_by(model.id)
        mappings = session.execute(columns).mappings().all()
        tuples = session.execute(columns).all()  # Rows: sequences, read marshmallow's way
        models = session.scalars(select(model).order_by(model.id)).all()
        assert len(mappings) == 2
        expected = marshmallows_dump(schema_class(), mappings, many=True)
        for objects in (mappings, tuples, models):
            assert_same(schema_class(many=True).dump(objects), expected)


# -- when the plan steps aside ---------------------------------------------------------------------


def test_fields_and_schemas_that_read_values_their_own_way_turn_the_plan_off():
    class WithDefault(StrictSchema):
        a = fields.Integer(dump_default=5)

    class WithMethod(StrictSchema):
        a = fields.Method("double")

        def double(self, obj: Any) -> int:
            return int(obj["a"]) * 2

    class WithFunction(StrictSchema):
        a = fields.Function(lambda obj: 7)

    class WithConstant(StrictSchema):
        a = fields.Constant(3)

    class WithDottedAttribute(StrictSchema):
        a = fields.Integer(attribute="b.c")

    class OwnGetValue(fields.Integer):
        def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = missing):
            return 9

    class WithOwnGetValue(StrictSchema):
        a = OwnGetValue()

    class OwnSerialize(fields.Integer):
        def serialize(self, attr: str, obj: Any, accessor: Any = None, **kwargs: Any) -> Any:
            return "own"

    class WithOwnSerialize(StrictSchema):
        a = OwnSerialize()

    class WithAccessor(StrictSchema):
        a = fields.Integer()

        def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
            return 42

    class WithOrderedDict(StrictSchema):
        dict_class = OrderedDict
        a = fields.Integer()

    answers = {
        WithDefault: ({}, {"a": 5}),
        WithMethod: ({"a": 2}, {"a": 4}),
        WithFunction: ({}, {"a": 7}),
        WithConstant: ({}, {"a": 3}),
        WithDottedAttribute: ({"b": {"c": 3}}, {"a": 3}),
        WithOwnGetValue: ({"a": 1}, {"a": 9}),
        WithOwnSerialize: ({"a": 1}, {"a": "own"}),
        WithAccessor: ({"a": 1}, {"a": 42}),
        WithOrderedDict: ({"a": 1}, OrderedDict(a=1)),
    }
    for schema_class, (obj, answer) in answers.items():
        schema = schema_class()
        assert dump_plan(schema) is None, schema_class
        assert_same(schema.dump(obj), answer)


def test_data_key_and_attribute_are_honoured():
    seen = []

    class Recording(fields.Integer):
        def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
            seen.append(attr)  # marshmallow passes the field's name, not its attribute
            return super()._serialize(value, attr, obj, **kwargs)

    class Renamed(StrictSchema):
        a = Recording(data_key="A", attribute="x")
        b = fields.String()

    schema = Renamed()
    assert dump_plan(schema) is not None
    for obj in ({"x": 1, "b": "s"}, SimpleNamespace(x=1, b="s")):
        assert_same(schema.dump(obj), marshmallows_dump(schema, obj))
    assert seen == ["a"] * 4


def test_a_mapping_without_the_key_is_read_by_attribute_as_marshmallow_does():
    class Odd(dict):  # type: ignore[type-arg]
        name = "from the attribute"

    assert_same(MachineSchema().dump(Odd(id=3)), {"id": 3, "name": "from the attribute"})
    assert_same(MachineSchema().dump(Odd(id=3)), marshmallows_dump(MachineSchema(), Odd(id=3)))


def test_a_sequence_row_and_none_go_marshmallows_way():
    class Row(tuple):  # type: ignore[type-arg]
        id = 7
        name = "lathe"

    assert_same(MachineSchema().dump(Row()), {"id": 7, "name": "lathe"})
    assert_same(MachineSchema().dump(None), marshmallows_dump(MachineSchema(), None))
    assert_same(
        MachineSchema(many=True).dump([None, {"id": 1}]),
        marshmallows_dump(MachineSchema(), [None, {"id": 1}], many=True),
    )


def test_a_formatting_error_is_marshmallows_error():
    class Bad(StrictSchema):
        n = fields.Integer()

    for obj in ({"n": "not a number"}, SimpleNamespace(n=[1])):
        with pytest.raises((ValueError, TypeError)) as ours:
            Bad().dump(obj)
        with pytest.raises((ValueError, TypeError)) as theirs:
            marshmallows_dump(Bad(), obj)
        assert type(ours.value) is type(theirs.value)
        assert str(ours.value) == str(theirs.value)


# -- schemas of random fields ----------------------------------------------------------------------


class Inner(ma.Schema):
    """A nested schema of marshmallow's own, so that the reference stays marshmallow's."""

    x = fields.Integer(allow_none=True)
    y = fields.String(data_key="Y")


class Doubled(fields.Integer):
    def _format_num(self, value: Any) -> int:
        return int(value) * 2


class StrSubclass(str):
    pass


#: Values of other types than a field's own: the field formats them its way.
numbers = st.integers() | st.floats(allow_nan=False) | st.booleans() | st.decimals(places=2)

#: Field factories and the values they dump.
FIELD_KINDS: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "integer": (fields.Integer, st.integers() | numbers),
    "doubled integer": (Doubled, st.integers() | st.booleans()),
    "integer as string": (lambda **kw: fields.Integer(as_string=True, **kw), st.integers()),
    "float": (fields.Float, st.floats(allow_nan=False) | numbers),
    "decimal": (fields.Decimal, st.decimals(allow_nan=False, allow_infinity=False)),
    "string": (
        fields.String,
        st.text(max_size=10) | st.builds(StrSubclass, st.text(max_size=3)) | st.integers(),
    ),
    "boolean": (fields.Boolean, st.booleans()),
    "datetime": (fields.DateTime, st.datetimes(timezones=st.none() | st.just(UTC))),
    "date": (fields.Date, st.dates()),
    "list": (lambda **kw: fields.List(fields.Integer(), **kw), st.lists(st.integers(), max_size=3)),
    "dict": (
        lambda **kw: fields.Dict(keys=fields.String(), values=fields.Integer(), **kw),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=3),
    ),
    "nested": (
        lambda **kw: fields.Nested(Inner, **kw),
        st.fixed_dictionaries({"x": st.none() | st.integers(), "y": st.text(max_size=5)}),
    ),
    "timedelta": (fields.TimeDelta, st.timedeltas(max_value=timedelta(days=10**5))),
    "raw": (fields.Raw, st.none() | st.integers() | st.text(max_size=5)),
}
names = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@st.composite
def random_schemas(draw: Any) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Field declarations and, per field: name, kind, attribute read."""
    declared: dict[str, Any] = {}
    layout = []
    attributes: set[str] = set()
    field_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    data_keys: set[str] = set(field_names)  # a key must be no other field's name or key
    for name in field_names:
        kind = draw(st.sampled_from(sorted(FIELD_KINDS)))
        factory, _ = FIELD_KINDS[kind]
        options: dict[str, Any] = {"allow_none": draw(st.booleans())}
        if draw(st.booleans()):
            # Any text: keys are never written into the plan's source.
            options["data_key"] = draw(st.text(max_size=6).filter(lambda k: k not in data_keys))
        attribute = name
        if draw(st.booleans()):
            attribute = "attr_" + draw(names)
            options["attribute"] = attribute
        if attribute in attributes:
            continue
        attributes.add(attribute)
        if "data_key" in options:
            data_keys.add(options["data_key"])
        declared[name] = factory(**options)
        layout.append((name, kind, attribute))
    return declared, layout


@st.composite
def objects_for(draw: Any, layout: list[tuple[str, str, str]]) -> Any:
    values: dict[str, Any] = {}
    for _, kind, attribute in layout:
        choice = draw(st.sampled_from(["value", "value", "value", "none", "absent", "missing"]))
        if choice == "value":
            values[attribute] = draw(FIELD_KINDS[kind][1])
        elif choice == "none":
            values[attribute] = None
        elif choice == "missing":
            values[attribute] = missing
    values |= draw(st.dictionaries(st.sampled_from(["zz", "yy"]), st.integers(), max_size=2))
    shape = draw(st.sampled_from([dict, ReadOnlyMapping, lambda v: SimpleNamespace(**v)]))
    return shape(values)


@settings(max_examples=300)
@given(data=st.data())
def test_schemas_of_random_fields_dump_as_marshmallow_does(data):
    declared, layout = data.draw(random_schemas())
    planned = type("Random", (StrictSchema,), dict(declared))
    objects = data.draw(st.lists(objects_for(layout), min_size=1, max_size=3))
    schema = planned()
    assert dump_plan(schema) is not None
    # Some values cannot be formatted (an infinite float as an integer): the same error, then.
    assert outcome(lambda: planned(many=True).dump(objects)) == outcome(
        lambda: marshmallows_dump(schema, objects, many=True)
    )
    for obj in objects:
        assert outcome(lambda: schema.dump(obj)) == outcome(  # noqa: B023
            lambda: marshmallows_dump(schema, obj)  # noqa: B023
        )


def test_the_plan_is_remade_when_the_dump_fields_change():
    class Two(PlannedDumpSchema):
        a = fields.Integer()
        b = fields.Integer()

    schema = Two()
    assert_same(schema.dump({"a": 1, "b": 2}), {"a": 1, "b": 2})
    schema.dump_fields = {"b": schema.dump_fields["b"]}
    assert_same(schema.dump({"a": 1, "b": 2}), {"b": 2})


def test_values_of_other_types_are_formatted_by_the_fields_as_marshmallow_does():
    # The plan does not look at values: whatever a field makes of them, it makes of them there.
    row = {
        "id": Decimal("3.0"),
        "machine_id": True,
        "user_id": 2.9,
        "schedule_id": "12",
        "reason": b"bytes",
        "notes": 5,
        "start": datetime(2020, 1, 1, tzinfo=UTC),
        "end": datetime(2020, 1, 2, 0, 0, 0, 1, tzinfo=UTC),
    }
    for obj in shapes(row):
        assert_same(HoldSchema().dump(obj), marshmallows_dump(HoldSchema(), obj))
