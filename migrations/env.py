"""Alembic environment: migrates the database the app would use (same URL resolution)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from pytm4srv.config import database_url_from_env
from pytm4srv.db import make_engine
from pytm4srv.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    # Tests pass the URL through the config; everyone else gets the app's own resolution.
    return config.attributes.get("database_url") or database_url_from_env()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _url()
    if url.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(os.path.abspath(url.removeprefix("sqlite:///"))), exist_ok=True)
    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            with _foreign_keys_off(connection):
                _run(connection)
        else:
            _run(connection)
    engine.dispose()


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign keys unenforced while the migrations run, then checked (SQLite).

    A batch migration rebuilds a table: new table, copy, drop the old one, rename. With foreign
    keys enforced, dropping a table that others refer to deletes its rows first, and that runs
    the others' ON DELETE actions (holds would lose their user_id). The pragma only takes effect
    outside a transaction, so it is set on the driver's connection before the migrations begin.
    """
    driver = connection.connection.dbapi_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
        broken = driver.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"the migrations left rows with broken foreign keys: {broken[:5]}")
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
