"""A schedule's own zone and skipped fires; ``next_fire_zone`` NULL now means "depends on no zone".

``timezone`` (the IANA zone the pattern is read in, NULL: ``PYTM4SRV_TIMEZONE``) and ``skip`` (a
JSON array of fire instants that make no hold, ``[]`` for existing rows).

``next_fire_zone`` keeps the service zone a schedule without a zone of its own had its
``next_fire`` computed in; for a schedule with its own zone it is NULL, as that value depends on no
setting. Rows whose next fire was never computed (NULL until now) get ``''``, a zone no run has,
so the next run computes them (docs/MATERIALIZER.md).

Revision ID: 0007_schedule_zone_skip
Revises: 0006_availability
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_schedule_zone_skip"
down_revision = "0006_availability"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=100), nullable=True))
        # The default only fills the existing rows; new ones get theirs from the service.
        batch_op.add_column(
            sa.Column("skip", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.alter_column("skip", server_default=None)
    op.execute("UPDATE machine_hold_schedules SET next_fire_zone = '' WHERE next_fire_zone IS NULL")


def downgrade() -> None:
    # Before this revision NULL meant "not computed yet": so it is again for what is recomputed.
    op.execute(
        "UPDATE machine_hold_schedules SET next_fire_zone = NULL"
        " WHERE next_fire_zone = '' OR timezone IS NOT NULL"
    )
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.drop_column("skip")
        batch_op.drop_column("timezone")
