"""A change to a schedule reaches its coming holds: holds changed by hand, fires deleted by users.

- ``machine_holds.by_hand``: true once a user has changed a hold the materializer made (a
  ``PATCH``); a change of its schedule then leaves it as it is. Existing holds of a schedule
  count as changed by hand when their history records a change, or their start is no longer
  their fire.
- ``deleted_fires``: the fires of a schedule whose hold a user deleted, so that no change of
  the schedule makes them again. Holds deleted before this migration are not recorded here;
  the first change of their schedule still finds them (a fire of the old pattern up to the
  cursor with no hold was deleted) and records them then.

Revision ID: 0011_replanning
Revises: 0010_fire_and_ids
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_replanning"
down_revision = "0010_fire_and_ids"
branch_labels = None
depends_on = None


#: SQLite: a rebuilt machine_holds keeps AUTOINCREMENT, so that ids are never given twice.
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("machine_holds", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("by_hand", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE machine_holds SET by_hand = true WHERE schedule_id IS NOT NULL AND ("
        "start <> fire OR EXISTS (SELECT 1 FROM history_entries e WHERE e.object_kind = 'hold'"
        " AND e.object_id = machine_holds.id AND e.action = 'changed'))"
    )
    op.create_table(
        "deleted_fires",
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("fire", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["machine_hold_schedules.id"],
            name=op.f("fk_deleted_fires_schedule_id_machine_hold_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("schedule_id", "fire", name=op.f("pk_deleted_fires")),
    )


def downgrade() -> None:
    op.drop_table("deleted_fires")
    with op.batch_alter_table("machine_holds", table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_column("by_hand")
