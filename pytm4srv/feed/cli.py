"""``flask feed ...``: calendar feeds for users."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from pytm4srv.db import write_session
from pytm4srv.feed.secrets import feed_path, new_feed_secret
from pytm4srv.users.models import User

feed = AppGroup("feed", help="Calendar feeds of users.")


@feed.command("new-url")
@click.argument("name")
@click.option(
    "--base-url",
    help="The address clients reach the service at, e.g. https://holds.example.com "
    "[default: PYTM4SRV_PUBLIC_URL].",
)
def new_url(name: str, base_url: str | None) -> None:
    """Make a new feed URL for a user and print it (last line); the previous one stops working."""
    base_url = base_url or current_app.config.get("PUBLIC_URL")
    if not base_url:
        raise click.UsageError("give --base-url, or set PYTM4SRV_PUBLIC_URL")
    with write_session() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
        if user_id is None:
            raise click.ClickException(f"no user named {name!r}")
        secret = new_feed_secret(session, user_id)
        session.commit()
    click.echo(f"New calendar feed URL for {name!r} (shown once):")
    click.echo(base_url.rstrip("/") + feed_path(secret))


def init_app(app: Flask) -> None:
    app.cli.add_command(feed)
