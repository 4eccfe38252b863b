"""``flask machines ...``: create and list machines."""

from __future__ import annotations

from sqlalchemy import select

from pytm4srv.models import Machine


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_machines_create_prints_the_id_last(runner, session):
    result = runner.invoke(args=["machines", "create", "CNC mill 3"])
    assert result.exit_code == 0
    machine = session.get(Machine, int(last_line(result.output)))
    assert machine.name == "CNC mill 3"
    listed = runner.invoke(args=["machines", "list"]).output
    assert f"{machine.id}\tCNC mill 3" in listed


def test_machines_create_rejects_empty_name(runner, session):
    assert runner.invoke(args=["machines", "create", " "]).exit_code != 0
    assert session.scalars(select(Machine)).all() == []


def test_machines_create_refuses_a_duplicate_name(runner, session):
    first = runner.invoke(args=["machines", "create", "lathe"])
    assert first.exit_code == 0
    second = runner.invoke(args=["machines", "create", "lathe"])
    assert second.exit_code == 1
    assert f"machine {last_line(first.output)} has the name 'lathe' already" in second.output
    assert "Traceback" not in second.output
    assert session.scalars(select(Machine.name)).all() == ["lathe"]
