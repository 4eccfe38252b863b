"""``flask machines ...``: manage machines."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pytm4srv.db import read_session, write_session
from pytm4srv.machines.models import NAME_LENGTH, Machine, machine_named
from pytm4srv.schemas import control_problem

machines = AppGroup("machines", help="Manage machines.")


@machines.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Create a machine and print its id (last line)."""
    problem = control_problem(name)
    if not name.strip() or len(name) > NAME_LENGTH:
        problem = f"must be 1 to {NAME_LENGTH} characters"
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    with write_session() as session:
        owner = machine_named(session, name)
        if owner is not None:
            raise click.ClickException(f"machine {owner} has the name {name!r} already")
        machine = Machine(name=name)
        session.add(machine)
        try:
            session.commit()
        except IntegrityError:
            raise click.ClickException(f"a machine named {name!r} exists already") from None
        click.echo(f"Created machine {name!r} with id:")
        click.echo(machine.id)


@machines.command("list")
def list_() -> None:
    """List machines: id and name."""
    with read_session() as session:
        for machine in session.scalars(select(Machine).order_by(Machine.id)):
            click.echo(f"{machine.id}\t{machine.name}")


def init_app(app: Flask) -> None:
    app.cli.add_command(machines)
