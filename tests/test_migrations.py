"""The migrations build exactly the models' schema, and undo it."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pytm4srv.db import make_engine
from pytm4srv.models import Base
from tests.conftest import alembic_config, fresh_database


# SQLite cannot reflect the PostgreSQL-only expression index (ix_machine_holds_ended_period), so
# alembic leaves it out of the comparison there and says so; PostgreSQL compares it.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_upgrade_head_matches_the_models_and_downgrade_base_empties(tmp_path):
    with fresh_database(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "head")
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(
                    conn, opts={"compare_type": True, "compare_server_default": True}
                )
                assert compare_metadata(context, Base.metadata) == []
            command.downgrade(config, "base")
            with engine.connect() as conn:
                assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            command.upgrade(config, "head")
            with engine.connect() as conn:
                assert {"machine_holds", "machine_hold_schedules", "users", "machines"} <= set(
                    inspect(conn).get_table_names()
                )
        finally:
            engine.dispose()


def test_alembic_resolves_the_same_url_as_the_app(monkeypatch, tmp_path):
    from pytm4srv import create_app
    from pytm4srv.config import database_url_from_env

    monkeypatch.setenv("PYTM4SRV_DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite")
    assert database_url_from_env() == create_app().config["DATABASE_URL"]
    monkeypatch.delenv("PYTM4SRV_DATABASE_URL")
    assert database_url_from_env() == create_app().config["DATABASE_URL"]
    assert database_url_from_env().endswith("/instance/pytm4srv.sqlite")
