"""Holds keep the fire they were made for; SQLite never reuses an id.

- ``machine_holds.fire``: the fire instant the materializer made a hold for (NULL for a hold
  made by hand). A schedule's holds are unique by fire, no longer by start, so a hold's start
  can be moved freely, onto a sibling's too, and a moved hold is never made again. Existing
  holds of a schedule get their start as their fire: until now, nothing could move a
  schedule's hold away from its fire without breaking that key.
- SQLite: users, machines, holds and schedules are rebuilt as AUTOINCREMENT tables, so a
  deleted row's id never names another row (an id freed before this migration, above the
  largest one left, can be given out once more; nothing remembers it). PostgreSQL's sequences
  never give an id twice already.

Revision ID: 0010_fire_and_ids
Revises: 0009_feed
Create Date: 2026-12-01 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_fire_and_ids"
down_revision = "0009_feed"
branch_labels = None
depends_on = None

#: The tables whose ids clients hold on to.
_TABLES = ("users", "machines", "machine_hold_schedules", "machine_holds")
_OLD_KEY = "uq_machine_holds_schedule_id_start"
_NEW_KEY = "uq_machine_holds_schedule_id_fire"


def _on_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    with op.batch_alter_table("machine_holds") as batch_op:
        batch_op.add_column(sa.Column("fire", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE machine_holds SET fire = start WHERE schedule_id IS NOT NULL")
    if _on_sqlite():
        for table in _TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ) as batch_op:
                if table == "machine_holds":
                    batch_op.drop_constraint(_OLD_KEY, type_="unique")
                    batch_op.create_unique_constraint(_NEW_KEY, ["schedule_id", "fire"])
    else:
        op.drop_constraint(_OLD_KEY, "machine_holds", type_="unique")
        op.create_unique_constraint(_NEW_KEY, "machine_holds", ["schedule_id", "fire"])


def downgrade() -> None:
    # Two holds of one schedule at one start (one moved onto the other) cannot both stay under
    # the old key: the moved one loses its schedule_id, as a hold of a deleted schedule does.
    op.execute(
        "UPDATE machine_holds SET schedule_id = NULL WHERE schedule_id IS NOT NULL AND id <> ("
        "SELECT MIN(h.id) FROM machine_holds h"
        " WHERE h.schedule_id = machine_holds.schedule_id AND h.start = machine_holds.start)"
    )
    if _on_sqlite():
        for table in _TABLES:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
            ) as batch_op:
                if table == "machine_holds":
                    batch_op.drop_constraint(_NEW_KEY, type_="unique")
                    batch_op.create_unique_constraint(_OLD_KEY, ["schedule_id", "start"])
                    batch_op.drop_column("fire")
    else:
        op.drop_constraint(_NEW_KEY, "machine_holds", type_="unique")
        op.create_unique_constraint(_OLD_KEY, "machine_holds", ["schedule_id", "start"])
        op.drop_column("machine_holds", "fire")
