"""JSON answers: orjson for speed, Flask's provider for what orjson refuses, the same JSON.

The reference is Flask's own ``DefaultJSONProvider``: for every value, the answer must decode to
the same JSON, with the same status, mimetype and headers (``Content-Length`` aside: Flask escapes
non-ASCII text, orjson writes it as UTF-8; it must be the body's length).
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.json.provider import DefaultJSONProvider
from hypothesis import given, settings
from hypothesis import strategies as st

from pytm4srv.json_provider import JSONProvider
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"


def provider() -> JSONProvider:
    return JSONProvider(Flask(__name__))


def apps() -> tuple[Flask, Flask]:
    """An app with the service's provider and one with Flask's own."""
    made = []
    for provider_class in (JSONProvider, DefaultJSONProvider):
        app = Flask(__name__)
        app.json = provider_class(app)
        app.config["TESTING"] = True
        made.append(app)
    return made[0], made[1]


@dataclasses.dataclass
class Point:
    x: int
    label: str


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers()  # beyond 64 bits too: orjson refuses them
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "a\udfffb", "naïve ✓", "\x00", "</script>"])
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.just(timezone(timedelta(hours=5))))
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.uuids()
    | st.builds(Point, st.integers(-10, 10), st.text(max_size=3))
)
# Keys of one dict are all strings or all integers: Flask sorts keys, and cannot sort a mix.
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.integers(-5, 5), inner, max_size=3)
    ),
    max_leaves=12,
)


def assert_same_answer(ours: Any, flasks: Any) -> None:
    assert ours.status_code == flasks.status_code
    assert ours.mimetype == flasks.mimetype
    body = ours.get_data()
    assert json.loads(body) == json.loads(flasks.get_data())
    assert body.endswith(b"\n")
    ours_headers = [(k, v) for k, v in ours.headers.items() if k != "Content-Length"]
    flasks_headers = [(k, v) for k, v in flasks.headers.items() if k != "Content-Length"]
    assert ours_headers == flasks_headers
    assert ours.headers["Content-Length"] == str(len(body))


@settings(max_examples=300)
@given(value=json_values, debug=st.booleans())
def test_answers_decode_as_flasks_own_provider_answers(value, debug):
    ours, flasks = apps()
    for app in (ours, flasks):
        app.debug = debug
    with ours.app_context():
        answer = ours.json.response(value)
    with flasks.app_context():
        expected = flasks.json.response(value)
    assert_same_answer(answer, expected)


@settings(max_examples=50)
@given(value=st.dictionaries(st.text(max_size=4), json_values, max_size=4) | st.lists(json_values))
def test_views_answer_as_with_flasks_own_provider(value):
    responses = []
    for app in apps():

        @app.get("/returned")
        def returned() -> Any:
            return value, 201, {"X-Extra": "1"}

        @app.get("/jsonified")
        def jsonified() -> Any:
            return jsonify(value)

        client = app.test_client()
        responses.append([client.get("/returned"), client.get("/jsonified")])
    for answer, expected in zip(*responses, strict=True):
        assert_same_answer(answer, expected)


def test_response_takes_its_arguments_as_flasks_does():
    ours, flasks = apps()
    for args, kwargs in [((), {}), ((1,), {}), ((1, "a"), {}), ((), {"a": 1, "b": [2]})]:
        with ours.app_context():
            answer = ours.json.response(*args, **kwargs)
        with flasks.app_context():
            expected = flasks.json.response(*args, **kwargs)
        assert_same_answer(answer, expected)
    for app in (ours, flasks):
        with app.app_context(), pytest.raises(TypeError):
            app.json.response(1, a=2)


@pytest.mark.parametrize(
    "value",
    [
        {"n": 2**70},
        {"\ud800": ["Unknown field."]},
        {"text": "a\udfff"},
        [[[[[[[[[[[]]]]]]]]]]] * 2,
        json.loads("[" * 300 + "]" * 300),  # deeper than orjson goes
    ],
    ids=["huge integer", "surrogate key", "surrogate value", "nested", "deeper than orjson"],
)
def test_what_orjson_refuses_is_answered_by_flasks_provider(value):
    ours, flasks = apps()
    with ours.app_context():
        answer = ours.json.response(value)
    with flasks.app_context():
        expected = flasks.json.response(value)
    assert_same_answer(answer, expected)


def test_what_neither_can_encode_raises_the_same_error():
    for app in apps():
        with app.app_context(), pytest.raises(TypeError, match="not JSON serializable"):
            app.json.response({"a": {1, 2}})


@pytest.mark.parametrize(
    "kwargs", [{"sort_keys": True}, {"indent": 4}, {"separators": (", ", ": ")}, {"default": str}]
)
def test_other_arguments_to_dumps_get_flasks_encoding(kwargs):
    value = {"b": [1, 2.5, None], "a": "naïve", "c": date(2026, 1, 2)}
    ours = JSONProvider(Flask(__name__))
    flasks = DefaultJSONProvider(Flask(__name__))
    flasks.sort_keys = False
    assert ours.dumps(value, **kwargs) == flasks.dumps(value, **kwargs)


def test_non_finite_floats_are_written_as_null():
    # Flask's provider writes NaN and Infinity, which are not JSON; the service never answers one.
    assert provider().dumps([math.nan, math.inf, -math.inf]) == "[null,null,null]"
    assert DefaultJSONProvider(Flask(__name__)).dumps([math.nan]) == "[NaN]"


def test_values_read_back_as_they_were():
    value = {"a": [1, 2.5, None, True, "naïve ✓"], "b": {"c": -(2**63)}, "d": 2**64 - 1}
    assert json.loads(provider().dumps(value)) == value


def test_keys_keep_their_order():
    assert provider().dumps({"z": 1, "a": 2}) == '{"z":1,"a":2}'


def test_integer_keys_are_written_as_strings_as_the_standard_library_does():
    # marshmallow keys the errors of a list's items by index.
    value = {"machine": {0: ["Not a valid integer."]}}
    assert json.loads(provider().dumps(value)) == json.loads(json.dumps(value))


def test_datetimes_uuids_and_decimals_are_left_to_flasks_default():
    moment = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    value = {"at": moment, "id": uuid.UUID(int=1), "n": Decimal("1.50")}
    assert json.loads(provider().dumps(value)) == {
        "at": "Fri, 27 Nov 2026 12:00:00 GMT",
        "id": "00000000-0000-0000-0000-000000000001",
        "n": "1.50",
    }


def test_debug_answers_are_indented():
    app = Flask(__name__)
    app.json = JSONProvider(app)
    with app.app_context():
        assert app.json.response({"a": 1}).get_data() == b'{"a":1}\n'
        app.debug = True
        assert app.json.response({"a": 1}).get_data() == b'{\n  "a": 1\n}\n'


def test_hold_answers_list_fields_in_the_schemas_order(admin, machine):
    r = admin.put(HOLDS, json={"machine_id": machine.id, "reason": "calibration", "end": 2e9})
    assert r.status_code == 201
    body = r.get_data(as_text=True)
    keys = ["id", "machine_id", "user_id", "schedule_id", "reason", "notes", "start", "end"]
    positions = [body.index(f'"{key}":') for key in keys]
    assert positions == sorted(positions)


def test_an_unknown_field_named_with_a_lone_surrogate_gets_a_json_422(admin, machine):
    body = f'{{"machine_id": {machine.id}, "reason": "x", "\\ud800": 1}}'
    r = admin.put(HOLDS, data=body, content_type="application/json")
    assert_envelope(r, 422)
    assert r.json["errors"]["json"] == {"\ud800": ["Unknown field."]}
