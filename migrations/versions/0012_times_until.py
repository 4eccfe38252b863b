"""Schedules fire at several times a day and may end.

- ``times_of_day``: a JSON array of ``HH:MM:SS`` times, each selected date firing once at each;
  existing rows get ``[time_of_day]``, so every schedule keeps exactly the fires it had.
- ``until``: no fire of the schedule is later (NULL, every existing row: no end).

Revision ID: 0012_times_until
Revises: 0011_replanning
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_times_until"
down_revision = "0011_replanning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("times_of_day", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("until", sa.DateTime(timezone=True), nullable=True))
    schedules = sa.table(
        "machine_hold_schedules",
        sa.column("id", sa.Integer),
        sa.column("time_of_day", sa.Time),
        sa.column("times_of_day", sa.JSON),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(schedules.c.id, schedules.c.time_of_day)).all()
    for schedule_id, time_of_day in rows:
        # The stored time exactly as it is (microseconds and all), so no fire moves.
        text = time_of_day.isoformat() if time_of_day is not None else None
        bind.execute(
            schedules.update()
            .where(schedules.c.id == schedule_id)
            .values(times_of_day=[text] if text is not None else None)
        )
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.alter_column("times_of_day", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.drop_column("until")
        batch_op.drop_column("times_of_day")
