"""JSON answers: orjson for speed, Flask's provider for what orjson refuses, same meaning."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Flask

from pytm4srv.json_provider import JSONProvider
from tests.test_errors import assert_envelope

HOLDS = "/api/machines/holds/"


def provider() -> JSONProvider:
    return JSONProvider(Flask(__name__))


def test_values_read_back_as_they_were():
    value = {"a": [1, 2.5, None, True, "naïve ✓"], "b": {"c": -(2**63)}, "d": 2**64 - 1}
    assert json.loads(provider().dumps(value)) == value


def test_keys_keep_their_order():
    assert provider().dumps({"z": 1, "a": 2}) == '{"z":1,"a":2}'


def test_integer_keys_are_written_as_strings_as_the_standard_library_does():
    # marshmallow keys the errors of a list's items by index.
    value = {"machine": {0: ["Not a valid integer."]}}
    assert json.loads(provider().dumps(value)) == json.loads(json.dumps(value))


def test_what_orjson_refuses_goes_through_flasks_provider():
    big = {"n": 2**70}
    assert json.loads(provider().dumps(big)) == big
    surrogate = {"\ud800": ["Unknown field."]}
    assert provider().dumps(surrogate) == json.dumps(surrogate, ensure_ascii=True, sort_keys=True)


def test_datetimes_are_left_to_flasks_default():
    moment = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert json.loads(provider().dumps({"at": moment})) == {"at": "Fri, 27 Nov 2026 12:00:00 GMT"}


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
