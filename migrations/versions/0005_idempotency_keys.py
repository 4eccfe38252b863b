"""Idempotency keys of hold and schedule creation (docs/API.md, Idempotency keys).

One row per (user, key): the answer given to the first PUT with that key, written in the same
transaction as the object it created. Rows older than 24 hours are ignored, and deleted by
``flask holds expire-keys`` (index on ``created``).

Revision ID: 0005_idempotency_keys
Revises: 0003_next_fire
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_idempotency_keys"
down_revision = "0003_next_fire"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_id_key"),
    )
    op.create_index(
        op.f("ix_idempotency_keys_created"), "idempotency_keys", ["created"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_idempotency_keys_created"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
