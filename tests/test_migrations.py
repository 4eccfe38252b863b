"""The migrations build exactly the models' schema, and undo it."""

from __future__ import annotations

import json

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from pytm4srv.db import make_engine
from pytm4srv.holds.models import UNKNOWN_ZONE
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


def test_0007_marks_rows_never_computed_and_gives_existing_rows_no_skip(tmp_path):
    """Existing schedules get skip [] and no zone of their own; those whose next fire was never
    computed (next_fire_zone NULL before 0007) get the unknown zone, so the next run computes
    them; downgrading makes both kinds "not computed" again."""
    with fresh_database(tmp_path) as url:
        config = alembic_config(url)
        before = ScriptDirectory.from_config(config).get_revision("0007_schedule_zone_skip")
        command.upgrade(config, before.down_revision)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO machines (id, name) VALUES (1, 'lathe')"))
                for schedule_id, zone in ((1, None), (2, "UTC")):
                    conn.execute(
                        text(
                            "INSERT INTO machine_hold_schedules (id, machine_id, name, reason,"
                            " frequency, indices, time_of_day, anchor, created, next_fire_zone)"
                            " VALUES (:id, 1, 'n', 'r', 'D', '[]', '08:00:00',"
                            " '2027-01-04 00:00:00', '2027-01-04 00:00:00', :zone)"
                        ),
                        {"id": schedule_id, "zone": zone},
                    )
            command.upgrade(config, "head")
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT id, next_fire_zone, timezone, skip"
                        " FROM machine_hold_schedules ORDER BY id"
                    )
                ).all()
            assert [(r.id, r.next_fire_zone, r.timezone) for r in rows] == [
                (1, UNKNOWN_ZONE, None),
                (2, "UTC", None),
            ]
            # JSON text on SQLite, decoded by the driver on PostgreSQL.
            skips = [json.loads(r.skip) if isinstance(r.skip, str) else r.skip for r in rows]
            assert skips == [[], []]
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE machine_hold_schedules SET timezone = 'Asia/Tokyo' WHERE id = 2")
                )
            command.downgrade(config, before.down_revision)
            with engine.connect() as conn:
                zones = conn.execute(
                    text("SELECT next_fire_zone FROM machine_hold_schedules ORDER BY id")
                ).scalars()
                assert list(zones) == [None, None]
        finally:
            engine.dispose()


def test_0010_gives_schedule_holds_their_start_as_fire_and_stops_id_reuse(tmp_path):
    """Holds of a schedule get fire = start, hand-made ones none; afterwards a deleted newest row's
    id is not given again (SQLite's AUTOINCREMENT; PostgreSQL's sequences already); downgrading
    keeps one hold per (schedule, start), unlinking the other."""
    with fresh_database(tmp_path) as url:
        config = alembic_config(url)
        command.upgrade(config, "0009_feed")
        engine = make_engine(url)
        insert_hold = text(
            "INSERT INTO machine_holds (machine_id, schedule_id, reason, notes, start)"
            " VALUES (1, :schedule, 'r', '', :start)"
        )
        try:
            # Ids as the database gives them (explicit ones would bypass PostgreSQL's sequence).
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO machines (id, name) VALUES (1, 'lathe')"))
                conn.execute(
                    text(
                        "INSERT INTO machine_hold_schedules (id, machine_id, name, reason,"
                        " frequency, indices, time_of_day, anchor, created, skip)"
                        " VALUES (1, 1, 'n', 'r', 'D', '[]', '08:00:00',"
                        " '2027-01-04 00:00:00', '2027-01-04 00:00:00', '[]')"
                    )
                )
                conn.execute(insert_hold, {"schedule": 1, "start": "2027-01-04 08:00:00"})
                conn.execute(insert_hold, {"schedule": None, "start": "2027-01-05 09:00:00"})
                conn.execute(insert_hold, {"schedule": 1, "start": "2027-01-06 08:00:00"})
            command.upgrade(config, "0010_fire_and_ids")
            with engine.begin() as conn:
                rows = conn.execute(
                    text("SELECT id, fire IS NULL, fire = start FROM machine_holds ORDER BY id")
                ).all()
                assert [(bool(r[1]), r[2]) for r in rows] == [
                    (False, True),
                    (True, None),
                    (False, True),
                ]
                first, manual, newest = (r[0] for r in rows)
                conn.execute(text(f"DELETE FROM machine_holds WHERE id = {newest}"))
                conn.execute(insert_hold, {"schedule": None, "start": "2027-02-01"})
                new_id = conn.scalar(text("SELECT MAX(id) FROM machine_holds"))
                assert new_id > newest
                # Moved onto its sibling's start: allowed now...
                conn.execute(
                    text("UPDATE machine_holds SET start = '2027-01-04 08:00:00' WHERE id = :id"),
                    {"id": new_id},
                )
                conn.execute(text(f"UPDATE machine_holds SET schedule_id = 1 WHERE id = {new_id}"))
                conn.execute(
                    text(
                        f"UPDATE machine_holds SET fire = '2027-01-07 08:00:00' WHERE id = {new_id}"
                    )
                )
            # ...and the old key comes back with one of the two unlinked.
            command.downgrade(config, "0009_feed")
            with engine.connect() as conn:
                linked = conn.execute(
                    text("SELECT id, schedule_id FROM machine_holds ORDER BY id")
                ).all()
            assert [tuple(row) for row in linked] == [(first, 1), (manual, None), (new_id, None)]
        finally:
            engine.dispose()
