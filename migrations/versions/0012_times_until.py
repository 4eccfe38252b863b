"""Schedules fire at several times a day and may end.

- ``times_of_day``: a JSON array of ``HH:MM:SS`` times, each selected date firing once at each;
  existing rows get ``[time_of_day]``, so every schedule keeps exactly the fires it had.
- ``until``: no fire of the schedule is later (NULL, every existing row: no end).

Revision ID: 0012_times_until
Revises: 0011_replanning
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

from datetime import time

import sqlalchemy as sa
from alembic import op

revision = "0012_times_until"
down_revision = "0011_replanning"
branch_labels = None
depends_on = None

#: SQLite rebuilds the table to change a column: it stays AUTOINCREMENT (migration 0010).
_KEEP_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("times_of_day", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("until", sa.DateTime(timezone=True), nullable=True))
    # The column's raw values (SQLite: text as it was written), so that each is matched as
    # stored; one statement per distinct time, which gets exactly that time: no fire moves.
    schedules = sa.table(
        "machine_hold_schedules", sa.column("time_of_day"), sa.column("times_of_day", sa.JSON)
    )
    bind = op.get_bind()
    for (stored,) in bind.execute(sa.select(schedules.c.time_of_day).distinct()).all():
        time_of_day = stored if isinstance(stored, time) else time.fromisoformat(str(stored))
        bind.execute(
            schedules.update()
            .where(schedules.c.time_of_day == stored)
            .values(times_of_day=[time_of_day.isoformat()])
        )
    with op.batch_alter_table("machine_hold_schedules", table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.alter_column("times_of_day", existing_type=sa.JSON(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules", table_kwargs=_KEEP_IDS) as batch_op:
        batch_op.drop_column("until")
        batch_op.drop_column("times_of_day")
