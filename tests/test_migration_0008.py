"""Migration 0008 makes machine names unique: existing duplicates are renamed, not refused."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from pytm4srv.db import make_engine
from tests.conftest import alembic_config, fresh_database

BEFORE = "0003_next_fire"


def test_duplicate_machine_names_are_renamed_with_their_id(tmp_path):
    long_name = "m" * 200
    machines = [
        (1, "lathe"),
        (2, "lathe"),
        (3, "mill"),
        (4, "lathe"),
        (5, "lathe (6)"),  # the name machine 6 would get: it gets another
        (6, "lathe"),
        (7, long_name),
        (8, long_name),
    ]
    with fresh_database(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, BEFORE)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                for machine_id, name in machines:
                    conn.execute(
                        text("INSERT INTO machines (id, name) VALUES (:id, :name)"),
                        {"id": machine_id, "name": name},
                    )
            command.upgrade(config, "head")
            with engine.connect() as conn:
                renamed = dict(conn.execute(text("SELECT id, name FROM machines")).all())
        finally:
            engine.dispose()
    assert renamed == {
        1: "lathe",
        2: "lathe (2)",
        3: "mill",
        4: "lathe (4)",
        5: "lathe (6)",
        6: "lathe (6-2)",
        7: long_name,
        8: "m" * 196 + " (8)",
    }


def test_after_the_migration_a_duplicate_cannot_be_stored(tmp_path):
    with fresh_database(tmp_path) as url:
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO machines (name) VALUES ('lathe')"))
            with engine.connect() as conn, pytest.raises(IntegrityError, match="(?i)unique"):
                conn.execute(text("INSERT INTO machines (name) VALUES ('lathe')"))
        finally:
            engine.dispose()
