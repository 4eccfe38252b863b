"""The fuzz run's settings: scripts/schemathesis.toml resolves to the same per-operation checks
in every phase, stateful included, and scripts/fuzz_checks.py lets a 422 to schema-valid data
through only for the rules the document cannot state, which are the server's own messages."""

from __future__ import annotations

import importlib.util
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

REPO = Path(__file__).resolve().parent.parent
SETTINGS = REPO / "scripts" / "schemathesis.toml"
PHASES = ("examples", "coverage", "fuzzing", "stateful")


def _fuzz_checks() -> Any:
    path = REPO / "scripts" / "fuzz_checks.py"
    spec = importlib.util.spec_from_file_location("fuzz_checks", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_checks = _fuzz_checks()


def ruled_operations() -> set[str]:
    """The operations schemathesis.toml lets answer 422 to schema-valid data."""
    ruled = set()
    for block in tomllib.loads(SETTINGS.read_text())["operations"]:
        acceptance = block.get("checks", {}).get("positive_data_acceptance", {})
        if "422" in acceptance.get("expected-statuses", []):
            ruled.update(block["include-name"])
    return ruled


@pytest.fixture(scope="module")
def operations() -> list[Any]:
    from pytm4srv import create_app

    app = create_app({"DATABASE_URL": "sqlite://"})
    document = app.test_client().get("/api/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_path(SETTINGS))
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_named_in_the_settings_exists(operations):
    labels = {operation.label for operation in operations}
    assert ruled_operations() <= labels
    assert len(ruled_operations()) >= 8


def test_every_phase_resolves_the_same_per_operation_settings(operations):
    ruled = ruled_operations()
    for operation in operations:
        config = operation.schema.config
        for phase in PHASES:
            checks = config.checks_config_for(operation=operation, phase=phase)
            history = operation.path.endswith("/history")
            assert checks.use_after_free.enabled is not history, (phase, operation.label)
            allowed = checks.positive_data_acceptance.expected_statuses
            assert ("422" in allowed) is (operation.label in ruled), (phase, operation.label)
            assert "414" in allowed and "400" not in allowed
            assert checks.positive_data_acceptance.enabled


def test_refusals_for_stated_rules_are_found():
    unstated = fuzz_checks.unstated
    zone = {"json": {"timezone": ["Unknown time zone '0': give an IANA zone name ..."]}}
    assert unstated(zone) == ["json.timezone: Unknown time zone '0': give an IANA zone name ..."]
    items = {"json": {"indices": {"0": ["Must not be 0: positions count from 1."]}}}
    assert unstated(items) == ["json.indices: Must not be 0: positions count from 1."]
    # A message allowed for one field is not allowed for another.
    assert unstated({"json": {"start": ["Must be later than start."]}})
    assert unstated({"json": {"end": ["Must be later than start."]}}) == []


def _in(days: float) -> int:
    return int((datetime.now(UTC) + timedelta(days=days)).timestamp())


#: Requests the document allows that break a rule it cannot state: (method, path, body).
UNSTATED_REFUSALS = [
    ("put", "/api/machines/holds/", {"machine_id": 0, "reason": "r", "start": 10, "end": 5}),
    ("put", "/api/machines/holds/", {"machine_id": 999_999, "reason": "r"}),
    (
        "put",
        "/api/machines/holds/",
        {"machine_id": 0, "reason": "r", "start": "0001-01-02T00:30:00+01:00"},
    ),
    ("get", "/api/machines/holds/?active_from=20&active_until=10", None),
    ("get", f"/api/machines/holds/window?from={_in(0)}&until={_in(121)}", None),
    ("get", "/api/machines/0?at=now&from=now&until=now", None),
    ("get", "/api/machines/0?from=now", None),
    (
        "post",
        "/api/machines/holds/schedules/previewSchedule",
        {"frequency": "D", "time_of_day": "09:00", "times_of_day": ["08:00", "09:00"]},
    ),
    (
        "post",
        "/api/machines/holds/schedules/previewSchedule",
        {"frequency": "D", "times_of_day": ["08:00", "08:00:00"]},
    ),
    (
        "post",
        "/api/machines/holds/schedules/previewSchedule",
        {"rrule": "DTSTART:20270104T070000Z\nRRULE:FREQ=DAILY", "frequency": "D"},
    ),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSTATED_REFUSALS)
def test_the_unstated_rules_are_the_servers_messages(planner, machine, method, path, body):
    """Each rule the check lets through is one the server answers with, message for message."""
    path = path.replace("/machines/0?", f"/machines/{machine.id}?")
    if body and body.get("machine_id") == 0:
        body = {**body, "machine_id": machine.id}
    answer = getattr(planner, method)(path, json=body)
    assert answer.status_code == 422, answer.json
    assert fuzz_checks.unstated(answer.json["errors"]) == []


def test_a_refusal_the_document_states_is_not_let_through(planner, machine):
    body = {"machine_id": machine.id, "name": "n", "reason": "r", "frequency": "D",
            "time_of_day": "08:00", "timezone": "Mars/Olympus"}  # fmt: skip
    answer = planner.put("/api/machines/holds/schedules/", json=body)
    assert answer.status_code == 422
    assert fuzz_checks.unstated(answer.json["errors"]) != []
