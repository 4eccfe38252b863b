"""Indexes for what is held when: the hold list's active_at / active_from / active_until filters
and the machine status.

A hold is in effect at T when it started by T and is open or ends after T. The list and the
machine status read the open holds and the ended ones apart (pytm4srv/holds/queries.py):

- ``ix_machine_holds_machine_id_end_start_id``: a machine's holds by end, so that only its open
  holds and those ending after T are read (over all machines, ``ix_machine_holds_open_start_id``
  and ``ix_machine_holds_end_start_id`` do the same);
- PostgreSQL only: ``ix_machine_holds_ended_period``, a GiST index of the ended holds' periods
  ``tstzrange(start, "end")``, which finds the holds in effect at some instant of a window without
  reading every hold that ends after it (over all machines, at an instant in the past). Range
  types and GiST are built in: no extension is needed.

Building the GiST index reads the whole table once (about a minute at 1 000 000 holds on a small
machine, docs/PERFORMANCE.md); the table stays readable meanwhile, writes wait.

Revision ID: 0006_availability
Revises: 0005_idempotency_keys
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_availability"
down_revision = "0005_idempotency_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_machine_holds_machine_id_end_start_id",
        "machine_holds",
        ["machine_id", "end", "start", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_machine_holds_ended_period",
            "machine_holds",
            [sa.text('tstzrange(start, "end")')],
            unique=False,
            postgresql_using="gist",
            postgresql_where=sa.text('"end" IS NOT NULL'),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_machine_holds_ended_period", table_name="machine_holds")
    op.drop_index("ix_machine_holds_machine_id_end_start_id", table_name="machine_holds")
