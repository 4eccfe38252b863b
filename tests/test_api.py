"""The REST plumbing of pytm4srv/api.py, through the public hooks of webargs and apispec."""

from __future__ import annotations

import flask
import marshmallow as ma
import pytest
from flask_smorest.pagination import PaginationMetadataSchema
from sqlalchemy import func, select
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest

from pytm4srv.api import StrictParser, schema_name
from pytm4srv.holds.schemas import HoldSchema
from pytm4srv.models import MachineHold


@pytest.mark.parametrize(
    "body",
    [
        '{"a": 1}',
        '{"a": [1, 2.5, "x", null, true]}',
        "[]",
        '"x"',
        '{"nested": {"b": {}}}',
        '{"a": "Fräse"}',
    ],
)
def test_the_strict_parser_reads_json_bodies_as_webargs_does(body):
    app = flask.Flask(__name__)
    with app.test_request_context(data=body.encode(), content_type="application/json"):
        request = flask.request
        schema = ma.Schema()
        assert StrictParser().load_json(request, schema) == FlaskParser().load_json(request, schema)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"a": 1}', "text/plain", "The request body must be JSON"),
        (b"", "application/json", "The request body is empty"),
        (b" \n", "application/json", "The request body is empty"),
        (b'{"a": "\xff"}', "application/json", "The request body is not valid UTF-8."),
        (b'{"a":\n 01}', "application/json", "not valid JSON: Expecting ',' delimiter at line 2,"),
        (b"[" * 100_000, "application/json", "not JSON that this service can read"),
        (b"1" * 5000, "application/json", "not JSON that this service can read"),
    ],
)
def test_a_body_that_webargs_would_read_as_missing_or_fail_on_is_a_400(body, content_type, message):
    app = flask.Flask(__name__)
    with app.test_request_context(data=body, content_type=content_type):
        with pytest.raises(BadRequest) as raised:
            StrictParser().load_json(flask.request, ma.Schema())
    assert message in raised.value.data["message"]


def test_the_service_schemas_are_named_and_a_librarys_written_out():
    assert schema_name(HoldSchema) == "Hold"
    assert schema_name(HoldSchema(partial=True)) == "HoldPatch"
    # flask-smorest registers it for a header no operation sends: it must not be a component.
    assert schema_name(PaginationMetadataSchema) is None


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ('{"reason": "a", "reason": "b"}', "reason"),
        ('{"machine_id": 1, "reason": "r", "notes": "x", "notes": "x"}', "notes"),
        ('{"a": {"inner": 1, "inner": 2}}', "inner"),
    ],
)
def test_a_member_given_twice_is_invalid_naming_it_and_writes_nothing(
    staff, machine, session, body, name
):
    answer = staff.client.put(
        "/api/machines/holds/",
        data=body.replace('"machine_id": 1', f'"machine_id": {machine.id}'),
        headers=staff.headers | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.json
    assert name in answer.json["errors"]["json"]
    assert "more than once" in answer.json["errors"]["json"][name][0]
    assert session.scalar(select(func.count()).select_from(MachineHold)) == 0
