"""The OpenAPI document at /api/openapi.json and the docs page at /api/docs."""

from __future__ import annotations

import json
import re
from datetime import time
from pathlib import Path

import pytest
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator import validate as validate_instance
from openapi_spec_validator import validate

from pytm4srv.fields import QueryInstant
from pytm4srv.models import Machine
from tests.test_auth import ROLE_MATRIX, request_for

METHODS = {"get", "put", "post", "patch", "delete"}
README = Path(__file__).parent.parent / "README.md"
HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"
PREVIEW = "/api/machines/holds/schedules/previewSchedule"
#: Routes under /api that are not operations of the API: the document and its docs page.
NOT_OPERATIONS = ("/api/openapi.json", "/api/docs")


@pytest.fixture
def spec(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    return r.json


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_document_needs_no_token(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    assert "Cache-Control" not in r.headers


def test_every_api_route_is_documented_with_its_methods(app, spec):
    documented = {(path, method) for path, method, _ in operations(spec)}
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and not rule.rule.startswith(NOT_OPERATIONS)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented
    assert len(documented) == 23  # with GET /api/machines/holds/window


def test_bearer_scheme_applies_to_every_operation_but_the_public_ones(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert spec["security"] == [{"bearerAuth": []}]
    without_token = {path for path, _, op in operations(spec) if op.get("security") == []}
    assert without_token == {"/api/health", "/api/feed/{secret}.ics"}
    assert all(
        "security" not in operation
        for path, _, operation in operations(spec)
        if path not in without_token
    )


def test_every_operation_lists_its_error_answers(spec):
    for path, method, operation in operations(spec):
        codes = set(operation["responses"])
        assert "default" not in codes
        # 422: every operation refuses unknown query parameters, and any input it takes.
        assert {"414", "422", "503"} <= codes, (method, path)
        assert ("401" in codes) == (operation.get("security") != []), (method, path)
        has_body = "requestBody" in operation
        assert ({"400", "413"} <= codes) == has_body, (method, path)
        if "{" in path or path.endswith("previewSchedule"):
            assert "404" in codes, (method, path)


def test_403_is_documented_exactly_where_roles_apply(spec, machine):
    """The operations whose 403 is documented are those the role matrix denies to staff."""
    denied = set()
    for endpoint, *_, staff_status in ROLE_MATRIX:
        method, path, _ = request_for(endpoint, machine.id, 1)
        if staff_status == 403:
            denied.add((method, re.sub(r"/\d+$", "/{id}", path)))
    documented = {
        (method, re.sub(r"\{\w+_id\}$", "{id}", path))
        for path, method, operation in operations(spec)
        if "403" in operation["responses"]
    }
    assert documented == denied
    assert len(denied) == 7


def test_error_answers_are_the_envelope(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "message", "errors"}
    for name, response in spec["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, name
    assert "WWW-Authenticate" in spec["components"]["responses"]["UNAUTHORIZED"]["headers"]


def test_custom_fields_document_their_wire_types(spec):
    schemas = spec["components"]["schemas"]
    start = schemas["Hold"]["properties"]["start"]
    kinds = [(branch["type"], branch.get("format")) for branch in start["oneOf"]]
    assert kinds == [("number", None), ("string", "date-time"), ("string", None)]
    assert schemas["Hold"]["properties"]["end"]["nullable"] is True
    schedule = schemas["Schedule"]["properties"]
    assert schedule["time_of_day"]["type"] == "string"
    assert re.fullmatch(schedule["time_of_day"]["pattern"].strip("^$"), "08:30:00")
    assert schedule["duration"] | {"description": None, "example": None} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**31 - 1,
        "nullable": True,
        "default": None,
        "description": None,
        "example": None,
    }
    assert schedule["interval"]["type"] == "integer"
    assert schedule["interval"]["maximum"] == 2**31 - 1
    assert schemas["Hold"]["properties"]["reason"]["maxLength"] == 500
    assert schemas["Hold"]["properties"]["notes"]["maxLength"] == 10_000
    assert schedule["name"]["maxLength"] == 200


def test_read_only_fields_are_marked(spec):
    schemas = spec["components"]["schemas"]
    for name in ("id", "user_id", "schedule_id"):
        assert schemas["Hold"]["properties"][name]["readOnly"] is True
    for name in ("id", "created", "last_fire", "next_fire", "summary"):
        assert schemas["Schedule"]["properties"][name]["readOnly"] is True


def query_parameter(spec, path, method, name):
    parameters = spec["paths"][path][method]["parameters"]
    return next(p for p in parameters if p["name"] == name)["schema"]


def test_limits_are_documented(spec, app):
    limit = query_parameter(spec, "/api/machines/holds/", "get", "limit")
    assert limit["maximum"] == app.config["MAX_PAGE_SIZE"]
    count = query_parameter(spec, "/api/machines/holds/schedules/previewSchedule", "post", "count")
    assert (count["minimum"], count["maximum"]) == (1, 1000)
    machine = query_parameter(spec, "/api/machines/holds/", "get", "machine")
    assert machine["items"]["maximum"] == 2**31 - 1
    assert machine["maxItems"] == 100
    for path in ("/api/machines/holds/{hold_id}", "/api/machines/holds/schedules/{schedule_id}"):
        (parameter,) = spec["paths"][path]["parameters"]
        assert parameter["schema"]["maximum"] == 2**31 - 1


def test_availability_parameters_and_machine_status_are_documented(spec):
    holds = {
        p["name"]: p["schema"] for p in spec["paths"]["/api/machines/holds/"]["get"]["parameters"]
    }
    instant = QueryInstant.openapi["oneOf"]  # a body's instant, or the word "now"
    for name in ("active_at", "active_from", "active_until", "start_after", "end_before"):
        assert holds[name]["oneOf"] == instant, name
    assert holds["schedule"]["type"] == "array" and holds["schedule"]["maxItems"] == 100
    assert holds["schedule"]["items"] == {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    schedules = spec["paths"]["/api/machines/holds/schedules/"]["get"]["parameters"]
    assert [(p["name"], p["schema"]["type"]) for p in schedules] == [("machine", "array")]

    status = spec["paths"]["/api/machines/{machine_id}"]
    (machine_id,) = status["parameters"]
    assert machine_id["schema"]["maximum"] == 2**31 - 1
    get = status["get"]
    assert [p["name"] for p in get["parameters"]] == ["at", "from", "until"]
    assert all(p["schema"]["oneOf"] == instant for p in get["parameters"])
    assert {"200", "404", "422"} <= set(get["responses"])
    body = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/MachineStatus"}
    properties = spec["components"]["schemas"]["MachineStatus"]["properties"]
    assert list(properties) == ["id", "name", "held", "active_holds", "next_hold"]
    assert properties["active_holds"]["items"] == {"$ref": "#/components/schemas/Hold"}


@pytest.mark.parametrize("page_size", [50])
def test_page_size_in_the_document_follows_the_setting(app_config, page_size):
    from pytm4srv import create_app

    app = create_app(app_config | {"MAX_PAGE_SIZE": page_size})
    spec = app.test_client().get("/api/openapi.json").json
    assert query_parameter(spec, "/api/machines/holds/", "get", "limit")["maximum"] == page_size


def test_non_schema_answers_are_documented(spec):
    schedules = spec["paths"]["/api/machines/holds/schedules/"]["get"]["responses"]["200"]
    schema = schedules["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] == {"$ref": "#/components/schemas/Schedule"}
    preview = spec["paths"]["/api/machines/holds/schedules/previewSchedule"]["post"]
    schema = preview["responses"]["200"]["content"]["application/json"]["schema"]
    plain, detailed = schema["anyOf"]  # [] is both
    assert plain["type"] == "array"
    assert plain["items"]["type"] == "number"
    assert detailed["type"] == "array"
    assert detailed["items"] == {"$ref": "#/components/schemas/PreviewFire"}
    fire = spec["components"]["schemas"]["PreviewFire"]
    assert set(fire["required"]) == {"start", "end", "local", "shifted", "conflicts"}
    assert fire["properties"]["local"] == fire["properties"]["local"] | {"format": "date-time"}
    assert fire["properties"]["conflicts"]["items"]["type"] == "integer"
    detail = query_parameter(
        spec, "/api/machines/holds/schedules/previewSchedule", "post", "detail"
    )
    assert detail["enum"] == [0, 1]


def test_real_answers_match_the_document(spec, admin, machine):
    """A few answers, checked against the document's own schemas."""

    def check(instance, name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        validate_instance(instance, schema, cls=OAS30Validator)

    hold = admin.put("/api/machines/holds/", json={"machine_id": machine.id, "reason": "r"})
    assert hold.status_code == 201
    check(hold.json, "Hold")
    with pytest.raises(ValidationError):
        check(hold.json | {"start": [1]}, "Hold")
    error = admin.put("/api/machines/holds/", json={"reason": 5})
    assert error.status_code == 422
    check(error.json, "Error")
    for at in (hold.json["start"], hold.json["start"] - 1):  # held, then free with a next hold
        status = admin.get(f"/api/machines/{machine.id}?at={at}")
        assert status.status_code == 200
        check(status.json, "MachineStatus")
    with pytest.raises(ValidationError):
        check(status.json | {"next_hold": 5}, "MachineStatus")


def test_docs_page_is_served_with_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "/api/openapi.json" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(asset.startswith("/api/docs/assets/") for asset in assets)
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert len(r.data) > 1000
        r.close()


def test_missing_docs_asset_is_a_404_envelope(client):
    r = client.get("/api/docs/assets/nothing.js")
    assert r.status_code == 404
    assert r.json["code"] == 404


def _examples(spec):
    """(where, example, schema) of every example in the document."""
    for name, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if "example" in prop:
                bare = {k: v for k, v in prop.items() if k != "example"}
                yield f"{name}.{field}", prop["example"], bare
    for path, method, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            for example in (parameter.get("example"), parameter["schema"].get("example")):
                if example is not None:
                    yield f"{method} {path} {parameter['name']}", example, parameter["schema"]
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if "example" in media:
                yield f"{method} {path} body", media["example"], media["schema"]


def test_every_example_validates_against_its_schema(spec):
    checked = []
    for where, example, schema in _examples(spec):
        validate_instance(example, schema | {"components": spec["components"]}, cls=OAS30Validator)
        checked.append(where)
    assert len(checked) >= 30
    bodies = {where for where in checked if where.endswith(" body")}
    assert len(bodies) == 5  # every operation with a body shows a request to try


def test_examples_of_the_creating_puts_are_accepted_by_the_app(spec, admin, session):
    # The examples' machine 1, named as the README's first steps name the first machine.
    (first_machine,) = re.findall(r'machines create "([^"]+)"', README.read_text())
    session.add(Machine(id=1, name=first_machine))
    session.commit()

    name = spec["components"]["schemas"]["Machine"]["properties"]["name"]["example"]
    machine = admin.put("/api/machines/", json={"name": name})
    assert machine.status_code == 201, machine.json

    def example(path, method):
        return spec["paths"][path][method]["requestBody"]["content"]["application/json"]["example"]

    hold = admin.put(HOLDS, json=example(HOLDS, "put"))
    assert hold.status_code == 201, hold.json
    schedule = admin.put(SCHEDULES, json=example(SCHEDULES, "put"))
    assert schedule.status_code == 201, schedule.json
    patch = admin.patch(f"{HOLDS}{hold.json['id']}", json=example(f"{HOLDS}{{hold_id}}", "patch"))
    assert patch.status_code == 200, patch.json
    path = f"{SCHEDULES}{{schedule_id}}"
    patch = admin.patch(f"{SCHEDULES}{schedule.json['id']}", json=example(path, "patch"))
    assert patch.status_code == 200, patch.json
    preview = admin.post(PREVIEW, json=example(PREVIEW, "post"))
    assert preview.status_code == 200 and len(preview.json) == 1


def test_the_example_schedule_is_what_the_service_answers_for_it(spec, admin, machine):
    """The Schedule's field examples make one schedule: its summary is the service's, and its
    anchor, last_fire and next_fire are three consecutive fires of it."""
    properties = spec["components"]["schemas"]["Schedule"]["properties"]
    example = {name: field["example"] for name, field in properties.items() if "example" in field}
    sent = {name: value for name, value in example.items() if not properties[name].get("readOnly")}
    sent["machine_id"] = machine.id
    answer = admin.put(SCHEDULES, json=sent)
    assert answer.status_code == 201, answer.json
    assert answer.json["summary"] == example["summary"]
    fires = admin.post(f"{PREVIEW}?count=3&start={example['anchor'] - 1}", json=sent)
    assert fires.status_code == 200, fires.json
    assert fires.json == [example["anchor"], example["last_fire"], example["next_fire"]]


def test_optional_query_parameters_have_no_example(spec):
    """Swagger UI fills a parameter's example in: a filter must start empty, not filter."""
    for path, method, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if not parameter.get("required"):
                assert "example" not in parameter, (method, path, parameter["name"])
                assert "example" not in parameter["schema"], (method, path, parameter["name"])


def test_every_schema_of_the_document_is_used(spec):
    text = json.dumps(spec["paths"]) + json.dumps(spec["components"].get("responses", {}))
    schemas = spec["components"]["schemas"]
    text += json.dumps(schemas)
    for name in schemas:
        assert f'"#/components/schemas/{name}"' in text, name
    assert "PaginationMetadata" not in schemas


def test_the_creating_puts_document_the_idempotency_key_and_only_they(spec):
    creating = {("/api/machines/holds/", "put"), ("/api/machines/holds/schedules/", "put")}
    for path, method, operation in operations(spec):
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        assert headers == (["Idempotency-Key"] if (path, method) in creating else []), path


def test_operator_endpoints_are_documented(spec):
    paths = spec["paths"]
    assert paths["/api/health"]["get"]["security"] == []
    assert "401" not in paths["/api/health"]["get"]["responses"]
    assert "409" in paths["/api/machines/"]["put"]["responses"]
    for method in ("patch", "delete"):
        assert "409" in paths["/api/machines/{machine_id}"][method]["responses"], method
    for path in (
        "/api/machines/holds/{hold_id}/history",
        "/api/machines/holds/schedules/{schedule_id}/history",
    ):
        schema = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/HistoryEntry"}}
    entry = spec["components"]["schemas"]["HistoryEntry"]["properties"]
    assert entry["action"]["enum"] == ["created", "changed", "deleted"]
    assert entry["changes"]["additionalProperties"]["maxItems"] == 2
    assert spec["components"]["schemas"]["Machine"]["properties"]["name"]["maxLength"] == 200


def test_real_operator_answers_match_the_document(spec, admin, client):
    def check(instance, name):
        schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        validate_instance(instance, schema, cls=OAS30Validator)

    check(client.get("/api/health").json, "Health")
    machine = admin.put("/api/machines/", json={"name": "press"})
    assert machine.status_code == 201
    check(machine.json, "Machine")
    hold = admin.put("/api/machines/holds/", json={"machine_id": machine.json["id"], "reason": "r"})
    path = f"/api/machines/holds/{hold.json['id']}"
    assert admin.patch(path, json={"notes": "n"}).status_code == 200
    entries = admin.get(f"{path}/history").json
    assert len(entries) == 2
    for entry in entries:
        check(entry, "HistoryEntry")
    with pytest.raises(ValidationError):
        check(entries[0] | {"action": "renamed"}, "HistoryEntry")


RULE = "DTSTART;TZID=Europe/Berlin:20270104T070000\nRRULE:FREQ=WEEKLY;BYDAY=MO"

#: Schedule bodies; whether the document's shapes allow them and the server takes them, sent to
#: create a schedule or to preview one, and sent (less a lone frequency) as a PATCH: the document
#: says what the server does, both ways.
SCHEDULE_SHAPES = [
    ({"frequency": "W", "time_of_day": "07:00"}, True, True),
    ({"frequency": "W", "times_of_day": ["07:00", "12:00"]}, True, True),
    ({"frequency": "W", "time_of_day": "07:00", "rrule": None}, True, True),
    ({"rrule": RULE}, True, True),
    ({"time_of_day": "07:00"}, False, True),  # no frequency
    ({"frequency": "W"}, False, True),  # no time
    ({"rrule": RULE, "frequency": "W"}, False, False),  # the rule and a field it sets
    ({"rrule": RULE, "timezone": "Europe/Berlin"}, False, False),
    ({"frequency": "W", "time_of_day": "07:00", "timezone": "Mars/Olympus_Mons"}, False, False),
]


def _valid(spec, instance, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    try:
        validate_instance(instance, schema, cls=OAS30Validator)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("fields", "allowed", "patch_allowed"), SCHEDULE_SHAPES)
def test_the_documents_schedule_shapes_are_the_servers(
    spec, planner, machine, fields, allowed, patch_allowed
):
    body = {"machine_id": machine.id, "name": "n", "reason": "r"} | fields
    assert _valid(spec, body, "Schedule") is allowed
    answer = planner.put("/api/machines/holds/schedules/", json=body)
    assert (answer.status_code == 201) is allowed, answer.json
    preview = planner.post("/api/machines/holds/schedules/previewSchedule", json=fields)
    assert _valid(spec, fields, "PreviewPatch") is allowed
    assert (preview.status_code == 200) is allowed, preview.json
    if allowed:
        assert _valid(spec, answer.json, "Schedule")  # an answer holds the rule and the fields
        assert answer.json["rrule"] and answer.json["frequency"]
    stored = planner.put(
        "/api/machines/holds/schedules/",
        json={"machine_id": machine.id, "name": "s", "reason": "r", "frequency": "D",
              "time_of_day": "08:00"},
    ).json  # fmt: skip
    patch = {k: v for k, v in fields.items() if k != "frequency" or len(fields) > 1}
    patched = planner.patch(f"/api/machines/holds/schedules/{stored['id']}", json=patch)
    assert _valid(spec, patch, "SchedulePatch") is patch_allowed
    assert (patched.status_code == 200) is patch_allowed, patched.json


def test_an_answer_with_a_stored_zone_the_server_no_longer_knows_matches_the_document(
    spec, planner, make_schedule
):
    stored = {"timezone": "Mars/Olympus_Mons", "times_of_day": (time(8),)}
    schedule = make_schedule(**stored)  # stored outside the API
    answer = planner.get(f"/api/machines/holds/schedules/{schedule.id}")
    assert answer.status_code == 200
    assert answer.json["timezone"] == "Mars/Olympus_Mons"
    assert _valid(spec, answer.json, "Schedule")
