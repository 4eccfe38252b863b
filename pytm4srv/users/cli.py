"""``flask users ...``: manage API users and their tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from pytm4srv.db import read_session, write_session
from pytm4srv.schemas import control_problem
from pytm4srv.users.models import NAME_LENGTH, Role, User
from pytm4srv.users.tokens import hash_token, new_token

users = AppGroup("users", help="Manage API users and tokens.")

ROLE = click.Choice([role.value for role in Role])


def _find(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name)).one_or_none()
    if user is None:
        raise click.ClickException(f"no user named {name!r}")
    return user


@users.command("create")
@click.argument("name")
@click.option("--role", type=ROLE, required=True, help="admin, planner or staff.")
def create(name: str, role: str) -> None:
    """Create a user and print a new API token (last line)."""
    problem = control_problem(name)
    if not name.strip() or len(name) > NAME_LENGTH:
        problem = f"must be 1 to {NAME_LENGTH} characters"
    if problem:
        raise click.BadParameter(problem, param_hint="NAME")
    token = new_token()
    with write_session() as session:
        if session.scalars(select(User.id).where(User.name == name)).first() is not None:
            raise click.ClickException(f"a user named {name!r} exists already")
        session.add(
            User(
                name=name, role=Role(role), token_hash=hash_token(token), created=datetime.now(UTC)
            )
        )
        session.commit()
    click.echo(f"Created {role} {name!r}. API token (shown once, store it now):")
    click.echo(token)


@users.command("list")
def list_() -> None:
    """List users: id, name, role."""
    with read_session() as session:
        for user in session.scalars(select(User).order_by(User.id)):
            click.echo(f"{user.id}\t{user.name}\t{user.role.value}")


@users.command("rotate-token")
@click.argument("name")
def rotate_token(name: str) -> None:
    """Replace a user's token and print the new one (last line); the old one stops working."""
    token = new_token()
    with write_session() as session:
        _find(session, name).token_hash = hash_token(token)
        session.commit()
    click.echo(f"New API token for {name!r} (shown once):")
    click.echo(token)


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=ROLE)
def set_role(name: str, role: str) -> None:
    """Change a user's role."""
    with write_session() as session:
        _find(session, name).role = Role(role)
        session.commit()
    click.echo(f"{name!r} is now {role}.")


@users.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete a user; their token stops working and their holds stay, with no user."""
    with write_session() as session:
        session.delete(_find(session, name))
        session.commit()
    click.echo(f"Deleted user {name!r}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(users)
