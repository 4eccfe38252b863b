"""Stored next fire of each schedule, so the materializer finds due schedules with one index scan.

``next_fire`` is the first fire instant after the schedule's cursor, computed in the zone named by
``next_fire_zone``. Existing schedules get NULL in both: the materializer treats a row whose zone is
not its own as due and computes the value on its first run (docs/MATERIALIZER.md).

Revision ID: 0003_next_fire
Revises: 0002_open_holds
Create Date: 2026-11-28 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_next_fire"
down_revision = "0002_open_holds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_fire", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_fire_zone", sa.String(length=100), nullable=True))
        batch_op.create_index(
            "ix_machine_hold_schedules_next_fire_zone_next_fire",
            ["next_fire_zone", "next_fire"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_machine_hold_schedules_next_fire_zone_next_fire")
        batch_op.drop_column("next_fire_zone")
        batch_op.drop_column("next_fire")
