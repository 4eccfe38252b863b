"""Shortcuts past a library's public API, taken for speed: all of them are here.

There is one: dumping with marshmallow.

**What it bypasses.** marshmallow dumps an object by calling, for every field, ``Field.serialize``,
which asks ``Field.get_value``, which asks ``Schema.get_attribute``, which calls
``marshmallow.utils.get_value``, which tries ``obj[name]`` and then ``getattr(obj, name)``; then it
checks for a missing value and a dump default, and only then calls the field's own formatting,
``Field._serialize``. ``PlannedDumpSchema`` works out once per schema whether that machinery can
change the answer, and when it cannot, reads the values itself (``obj[name]`` for a mapping, such
as a database row; ``getattr(obj, name)`` for a plain object, such as a model) and calls each
field's ``_serialize`` directly. It reads marshmallow's private names ``Field._CHECK_ATTRIBUTE``
and ``Field._serialize`` and overrides ``Schema._serialize``.

**When it steps aside.** The plan is off for the whole schema if one of its fields could read or
default a value its own way: a dump default, ``_CHECK_ATTRIBUTE`` false (``Method``,
``Function``, ``Constant``), an overridden ``serialize`` or ``get_value``, a dotted
``attribute``; or if the schema has its own ``get_attribute`` or ``dict_class``. Per object, a
value that is absent (a missing key or attribute) or that is something other than a mapping or a
plain object (a tuple row, anything with ``__getitem__`` that is not a mapping) goes marshmallow's
own way; a value that is marshmallow's ``missing`` is left out, as marshmallow does.
``pre_dump``/``post_dump`` hooks and validation are untouched: only ``_serialize`` is replaced.

**Why.** The lookup machinery costs about three times the formatting itself. Measured on a page
of 100 holds (as mappings), in one process, side by side: marshmallow's own dump 0.73 ms, the plan
0.17 ms (on a quiet machine; under load both grow, the ratio stays about 3 to 4). Without it, the
hold list is well above three times its floor over gunicorn (docs/PERFORMANCE.md).

**Tested with** marshmallow 4.4.0; ``pyproject.toml`` pins ``marshmallow>=4.4,<4.5``, since the
private names above may change in any minor release.

**Guard.** ``tests/test_speedups.py``: hypothesis tests that the plan answers exactly as
marshmallow's own ``Schema.dump`` does (same keys, same order, same values and types) for the hold
and schedule schemas and for schemas of random fields, as dicts, database rows and objects, with
missing values; tests that each case above turns the plan off; and a test that the private names
still exist with the meaning relied on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter, itemgetter
from typing import Any

import marshmallow as ma
from marshmallow import fields, missing

#: One field of a dump plan: the output key, the field's name, its own formatting.
DumpStep = tuple[str, str, Callable[..., Any]]


class DumpPlan:
    """How to dump an object of a schema whose fields all read values plainly."""

    __slots__ = ("attributes", "by_attribute", "by_key", "steps")

    def __init__(self, steps: list[DumpStep], attributes: list[str]) -> None:
        self.steps = steps
        self.attributes = attributes
        # Both getters return a tuple of the values in field order (one value: wrapped).
        self.by_key = _tupled(itemgetter(*attributes), len(attributes))
        self.by_attribute = _tupled(attrgetter(*attributes), len(attributes))


def _tupled(getter: Callable[[Any], Any], count: int) -> Callable[[Any], tuple[Any, ...]]:
    if count == 1:
        return lambda obj: (getter(obj),)
    return getter


def dump_plan(schema: ma.Schema) -> DumpPlan | None:
    """The plan of ``schema``'s dump fields; None if marshmallow's own way may answer otherwise."""
    if type(schema).get_attribute is not ma.Schema.get_attribute:
        return None
    if schema.dict_class is not dict:
        return None
    steps: list[DumpStep] = []
    attributes: list[str] = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        reads_plainly = (
            field._CHECK_ATTRIBUTE
            and field.dump_default is missing
            and type(field).serialize is fields.Field.serialize
            and type(field).get_value is fields.Field.get_value
            and "." not in attribute
        )
        if not reads_plainly:
            return None
        key = field.data_key if field.data_key is not None else name
        steps.append((key, name, field._serialize))
        attributes.append(attribute)
    if not steps:
        return None
    return DumpPlan(steps, attributes)


#: How objects of a type are read: by key (a mapping), by attribute (a plain object), or neither.
_BY_KEY, _BY_ATTRIBUTE, _NEITHER = 0, 1, 2
_kinds: dict[type, int] = {dict: _BY_KEY}


def _kind(cls: type) -> int:
    kind = _kinds.get(cls)
    if kind is None:
        if issubclass(cls, Mapping):
            kind = _BY_KEY
        elif hasattr(cls, "__getitem__"):
            kind = _NEITHER  # marshmallow tries obj[name], then getattr: let it
        else:
            kind = _BY_ATTRIBUTE
        if len(_kinds) > 1000:  # types made on the fly: keep the table small
            _kinds.clear()
            _kinds[dict] = _BY_KEY
        _kinds[cls] = kind
    return kind


#: What reading a value that is not there raises (marshmallow's ``utils.get_value`` catches
#: these and falls back to ``getattr``).
_ABSENT = (KeyError, IndexError, TypeError, AttributeError)


class PlannedDumpSchema(ma.Schema):
    """A marshmallow schema that dumps through its plan (``dump_plan``) when it has one.

    The fields stay the only statement of the output: the plan calls their own formatting.
    """

    _plan_cache: tuple[Any, DumpPlan | None] | None = None

    def _plan(self) -> DumpPlan | None:
        # Made on first dump and again if the dump fields are ever replaced.
        cached = self._plan_cache
        if cached is None or cached[0] is not self.dump_fields:
            cached = (self.dump_fields, dump_plan(self))
            self._plan_cache = cached
        return cached[1]

    def _serialize(self, obj: Any, *, many: bool = False) -> Any:
        plan = self._plan()
        if plan is None or obj is None:
            return super()._serialize(obj, many=many)
        if many:
            return [self._dump_one(plan, item) for item in obj]
        return self._dump_one(plan, obj)

    def _dump_one(self, plan: DumpPlan, obj: Any) -> Any:
        kind = _kind(type(obj))
        try:
            if kind == _BY_KEY:
                values = plan.by_key(obj)
            elif kind == _BY_ATTRIBUTE:
                values = plan.by_attribute(obj)
            else:
                return super()._serialize(obj)
        except _ABSENT:
            return super()._serialize(obj)  # a value is not there: marshmallow decides
        return {
            key: dump(value, name, obj)
            for (key, name, dump), value in zip(plan.steps, values, strict=True)
            if value is not missing
        }
