"""Partial index of open holds (``end`` NULL) in list order, for the hold list's ``end=0``.

Without it, ``end=0`` (alone or with ``user=``) walks ``ix_machine_holds_start_id`` over most of
the table filtering for the few open holds: the btree on (end, start, id) cannot give the list's
(start, id) order for ``end IS NULL``. See bench/bench_list.py.

Revision ID: 0002_open_holds
Revises: 0001
Create Date: 2026-11-28 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_open_holds"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = sa.text('"end" IS NULL')


def upgrade() -> None:
    op.create_index(
        "ix_machine_holds_open_start_id",
        "machine_holds",
        ["start", "id"],
        unique=False,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_machine_holds_open_start_id", table_name="machine_holds")
