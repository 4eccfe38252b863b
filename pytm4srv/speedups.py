"""Shortcuts past a library's public API, taken for speed: all of them are here.

There is one: dumping with marshmallow (``PlannedDumpSchema``, the base of every schema of the
service through ``pytm4srv.schemas.StrictSchema``).

**What it bypasses.** marshmallow dumps an object by calling, for every field, ``Field.serialize``,
which asks ``Field.get_value``, which asks ``Schema.get_attribute``, which calls
``marshmallow.utils.get_value``, which tries ``obj[name]`` and then ``getattr(obj, name)``; then it
checks for a missing value and a dump default, and only then calls the field's own formatting,
``Field._serialize``, and stores the result in a new dict. The plan works out once per schema
whether that machinery can change the answer; when it cannot, it reads all the values of an
object in one step (``obj[name]`` for a mapping, such as a database row; ``getattr(obj, name)``
for a plain object, such as a model) and builds the dict in one expression, generated for the
schema, that calls each field's ``_serialize``, except for values that this formatting would give
back as they are: ``None``, and a ``str`` for ``String``, an ``int`` for ``Integer``, a ``float``
for ``Float`` (without ``as_string``). It overrides ``Schema._serialize`` and relies on
marshmallow's private names ``Field._CHECK_ATTRIBUTE``, ``Field._serialize``,
``Number._format_num`` and ``Number.num_type``.

**When it steps aside.** The plan is off for the whole schema if one of its fields could read or
default a value its own way: a dump default, ``_CHECK_ATTRIBUTE`` false (``Method``,
``Function``, ``Constant``), an overridden ``serialize`` or ``get_value``, a dotted
``attribute``; or if the schema has its own ``get_attribute`` or ``dict_class``. A field class
that replaces ``_serialize`` or ``_format_num`` has every value formatted. Per object, a value
that is absent (a missing key or attribute) or an object that is neither a mapping nor a plain
object (a tuple row, anything with ``__getitem__`` that is not a mapping) goes marshmallow's own
way; a value that is marshmallow's ``missing`` is left out, as marshmallow does. ``pre_dump`` and
``post_dump`` hooks are untouched: only ``_serialize`` is replaced. One difference of order: all
values are read before any is formatted, so an object with both a property that raises (other
than a missing attribute) and a value its field cannot format raises the property's error.

**Why.** Measured on a page of 100 holds (as database rows), in one process, side by side:
marshmallow's own dump takes about 6 times as long as the plan (0.73 ms on a quiet machine), a
loop over the fields calling each one's ``_serialize`` about twice as long. Without it, the hold
list is well above three times its floor over gunicorn (docs/PERFORMANCE.md).

**Tested with** marshmallow 4.4.0; ``pyproject.toml`` pins ``marshmallow>=4.4,<4.5``, since the
private names above may change in any minor release.

**Guard.** ``tests/test_speedups.py``: hypothesis tests that the plan answers exactly as
marshmallow's own ``Schema.dump`` of a plain schema with the same fields does (same keys in the
same order, same values of the same types, or the same error) for the hold and schedule schemas
and for schemas of random fields, as dicts, other mappings, database rows, models and plain
objects, with absent and ``missing`` values and values of other types than the field's; tests that
each case above turns the plan off or has the field called; and a test that the private names
still exist and mean what is relied on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter, itemgetter
from typing import Any

import marshmallow as ma
from marshmallow import fields, missing

#: One field of a dump plan: the output key, the field's name, its own formatting, and the name of
#: the one type whose values that formatting gives back as they are (None if there is none).
DumpStep = tuple[str, str, Callable[..., Any], str | None]


def unchanged_type(field: fields.Field[Any]) -> str | None:
    """The type (by name) of the values that ``field`` dumps as they are, besides ``None``.

    marshmallow's ``String._serialize`` gives ``None`` for ``None`` and else ``str(value)``, for a
    ``str`` the value itself; ``Number._serialize`` gives ``None`` for ``None`` and else
    ``num_type(value)`` (``_format_num``), for an ``int`` or a ``float`` of exactly that type the
    value itself, unless ``as_string``. A field class that replaces one of these methods formats
    every value itself.
    """
    if type(field)._serialize is fields.String._serialize:
        return "str"
    if isinstance(field, fields.Number):
        number = type(field)
        if (
            number._serialize is fields.Number._serialize
            and number._format_num is fields.Number._format_num
            and not field.as_string
            and field.num_type in (int, float)
        ):
            return field.num_type.__name__
    return None


class DumpPlan:
    """How to dump an object of a schema whose fields all read values plainly."""

    __slots__ = ("build", "by_attribute", "by_key", "steps")

    def __init__(self, steps: list[DumpStep], attributes: list[str]) -> None:
        self.steps = steps
        # Both getters return a tuple of the values in field order (one value: wrapped).
        self.by_key = _tupled(itemgetter(*attributes), len(attributes))
        self.by_attribute = _tupled(attrgetter(*attributes), len(attributes))
        self.build = _builder(steps)

    def dump(self, obj: Any, values: tuple[Any, ...]) -> dict[str, Any]:
        """The dump of ``obj``, whose values in field order are ``values``."""
        answer: dict[str, Any] | None = self.build(obj, values)
        if answer is None:  # a value is marshmallow's missing: left out, as marshmallow does
            answer = {
                key: dump(value, name, obj)
                for (key, name, dump, _), value in zip(self.steps, values, strict=True)
                if value is not missing
            }
        return answer


def _builder(steps: list[DumpStep]) -> Callable[[Any, tuple[Any, ...]], dict[str, Any] | None]:
    """A function that builds the dump from the values as one dict display: for a page of 100
    holds it takes about half the time of a loop over the fields calling each one's formatting.

    Its source names only values it is given (``k0`` the first key, ``n0`` the first field's
    name, ``f0`` its formatting, ``v0`` its value...), never a key or name itself. It answers None
    if a value is marshmallow's ``missing``.
    """
    namespace: dict[str, Any] = {"missing": missing, "str": str, "int": int, "float": float}
    entries = []
    for index, (key, name, dump, unchanged) in enumerate(steps):
        namespace |= {f"k{index}": key, f"n{index}": name, f"f{index}": dump}
        value, formatted = f"v{index}", f"f{index}(v{index}, n{index}, obj)"
        if unchanged is not None:
            as_is = f"{value} is None or type({value}) is {unchanged}"
            formatted = f"{value} if {as_is} else {formatted}"
        entries.append(f"        k{index}: {formatted},")
    values = [f"v{index}" for index in range(len(steps))]
    source = "\n".join(
        [
            "def build(obj, values):",
            f"    {', '.join(values)}, = values",
            f"    if {' or '.join(f'{value} is missing' for value in values)}:",
            "        return None",
            "    return {",
            *entries,
            "    }",
        ]
    )
    exec(source, namespace)  # the source holds only indices and the type names above
    build: Callable[[Any, tuple[Any, ...]], dict[str, Any] | None] = namespace["build"]
    return build


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
        steps.append((key, name, field._serialize, unchanged_type(field)))
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
        return plan.dump(obj, values)
