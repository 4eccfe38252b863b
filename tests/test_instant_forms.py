"""Instants as the OpenAPI document states them: UNIX seconds in a string take exactly the
pattern the document gives, query instants are strings only, and an ISO 8601 instant carried
out of range by its offset is named as such."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from pytm4srv.fields import MAX_UNIX, MIN_UNIX, QueryInstant, Timestamp


@pytest.fixture(scope="module")
def document():
    from pytm4srv import create_app

    app = create_app({"DATABASE_URL": "sqlite://"})
    return app.test_client().get("/api/openapi.json").get_json()


def seconds_pattern(document) -> re.Pattern[str]:
    (branch,) = [
        b
        for b in document["components"]["schemas"]["Hold"]["properties"]["start"]["oneOf"]
        if "pattern" in b
    ]
    return re.compile(branch["pattern"])


def test_query_instants_are_documented_as_strings_only(document):
    (parameter,) = [
        p
        for p in document["paths"]["/api/machines/holds/"]["get"]["parameters"]
        if p["name"] == "active_at"
    ]
    assert {branch["type"] for branch in parameter["schema"]["oneOf"]} == {"string"}


@given(text=st.from_regex(r"\A(-?[0-9]{1,12}|[0-9]{12})(\.[0-9]{1,7})?\Z") | st.text(max_size=14))
def test_a_string_of_seconds_is_taken_when_the_documents_pattern_allows_it(document, text):
    allowed = seconds_pattern(document).search(text) is not None
    try:
        instant = Timestamp().deserialize(text)
    except ValidationError:
        taken_as_seconds = False
    else:
        taken_as_seconds = re.fullmatch(r"[-0-9.]+", text) is not None
        assert MIN_UNIX <= instant.timestamp() <= MAX_UNIX
    assert taken_as_seconds is allowed, text


@pytest.mark.parametrize("sent", ["1.8e9", "+1800000000", "-99999999999", "123456789012", "1."])
def test_other_number_forms_in_a_string_say_which_form_to_use(sent):
    with pytest.raises(ValidationError) as raised:
        QueryInstant().deserialize(sent)
    assert raised.value.messages[0].startswith("UNIX seconds in a string are ASCII digits")


@pytest.mark.parametrize(
    "sent", ["0001-01-02T00:30:00+01:00", "0001-01-01T12:00:00Z", "9999-12-31T12:00:00Z"]
)
def test_an_iso_instant_out_of_range_is_named_as_one(sent):
    with pytest.raises(ValidationError) as raised:
        Timestamp().deserialize(sent)
    assert raised.value.messages[0].startswith("ISO 8601 instant out of range")


def test_the_edges_of_the_string_form_are_read():
    assert Timestamp().deserialize("-9999999999.999999").year == 1653
    assert Timestamp().deserialize("99999999999.999999").year == 5138
