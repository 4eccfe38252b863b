"""``flask holds materialize``: the cron job that turns due schedule firings into holds."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pytm4srv.db import write_session
from pytm4srv.fields import EPOCH, MAX_INSTANT, MIN_INSTANT, Timestamp
from pytm4srv.holds.materialize import BATCH_SIZE, LockTimeout, materialize
from pytm4srv.idempotency import expire_keys_command

holds = AppGroup(
    "holds", help="Holds: the materializer of hold schedules, and expiry of idempotency keys."
)

#: Largest --horizon / --catch-up: the whole datetime range, in minutes.
MAX_MINUTES = (datetime.max - datetime.min) // timedelta(minutes=1)
#: Largest --lock-timeout, in seconds: a day.
MAX_LOCK_TIMEOUT = 86_400


def _instant(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``--now``: UNIX seconds, or ISO 8601 with a UTC offset, within the years the service
    accepts."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            return Timestamp().deserialize(value)  # the API's own reading of an instant
        except ValidationError as exc:
            raise click.BadParameter(" ".join(exc.messages)) from None
    if not math.isfinite(seconds):
        raise click.BadParameter(f"{value} is not a finite number")
    if not MIN_INSTANT.timestamp() <= seconds <= MAX_INSTANT.timestamp():
        raise click.BadParameter(f"{seconds:.0f} is outside the years 1 to 9999")
    return EPOCH + timedelta(seconds=seconds)


MINUTES = click.IntRange(min=0, max=MAX_MINUTES)


def _configured_minutes(key: str) -> int:
    value = current_app.config[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINUTES:
        raise click.UsageError(f"PYTM4SRV_{key} must be a whole number of minutes >= 0: {value!r}")
    return value


def _one_line(exc: Exception) -> str:
    """A short, single-line reason: the driver's message without SQL or help links."""
    if isinstance(exc, LockTimeout):
        text = str(exc)
    elif isinstance(exc, DBAPIError):
        text = str(exc.orig)
    elif isinstance(exc, SQLAlchemyError):
        text = str(exc).split("\n", 1)[0]
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@holds.command("materialize")
@click.option(
    "--now",
    callback=_instant,
    help="The run's instant: UNIX seconds, or ISO 8601 with a UTC offset "
    "(2027-01-01T00:00:00Z) [default: the current time].",
)
@click.option(
    "--horizon",
    type=MINUTES,
    help="Create holds for fires up to this many minutes ahead "
    "[default: PYTM4SRV_MATERIALIZE_HORIZON, 10080 = 7 days].",
)
@click.option(
    "--catch-up",
    "catch_up",
    type=MINUTES,
    help="Still create holds for missed fires up to this many minutes old; older ones are "
    "skipped [default: PYTM4SRV_MATERIALIZE_CATCH_UP, 1440 = 1 day].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1, max=100_000),
    default=BATCH_SIZE,
    show_default=True,
    help="Schedules locked and processed per transaction.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the summary this run would print, and write nothing (the run's transaction is "
    "rolled back).",
)
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0, min_open=True, max=MAX_LOCK_TIMEOUT),
    default=30,
    show_default=True,
    help="Seconds to wait for a lock another transaction holds; past it, a locked schedule is "
    "left and named (on SQLite, where the lock is the whole database's, the run fails).",
)
def materialize_command(
    now: datetime | None,
    horizon: int | None,
    catch_up: int | None,
    batch_size: int,
    dry_run: bool,
    lock_timeout: float,
) -> None:
    """Create holds for due schedule firings; prints a one-line summary (run it from cron)."""
    if horizon is None:
        horizon = _configured_minutes("MATERIALIZE_HORIZON")
    if catch_up is None:
        catch_up = _configured_minutes("MATERIALIZE_CATCH_UP")
    now = now or datetime.now(UTC)
    try:
        with write_session(lock_timeout=lock_timeout) as session:
            summary = materialize(
                session,
                now,
                timedelta(minutes=horizon),
                timedelta(minutes=catch_up),
                current_app.config["ZONE"],
                batch_size=batch_size,
                dry_run=dry_run,
                lock_timeout=lock_timeout,
            )
    except Exception as exc:
        if current_app.debug:
            raise  # FLASK_DEBUG=1: the whole traceback
        raise click.ClickException(f"materialize failed: {_one_line(exc)}") from None
    click.echo(
        f"materialize: {summary.line()} now={now.isoformat().replace('+00:00', 'Z')} "
        f"horizon={horizon} catch_up={catch_up}{' dry_run=true' if dry_run else ''}"
    )
    # The schedules left untouched: one line each, and the run failed (a later run retries).
    for schedule_id, reason in sorted(summary.failed.items()):
        click.echo(f"schedule {schedule_id}: {reason}", err=True)
    if summary.failed:
        click.get_current_context().exit(1)


holds.add_command(expire_keys_command)


def init_app(app: Flask) -> None:
    app.cli.add_command(holds)
