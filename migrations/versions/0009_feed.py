"""Calendar feed: feed secrets, when holds and schedules last changed, deletion marks.

Existing holds and schedules get the migration's time as ``modified``; the deletion marks start
there too.

Revision ID: 0009_feed
Revises: 0008_history
Create Date: 2026-12-01 10:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_feed"
down_revision = "0008_history"
branch_labels = None
depends_on = None

NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "feed_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_feed_secrets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_secrets")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_feed_secrets_secret_hash")),
        sa.UniqueConstraint("user_id", name=op.f("uq_feed_secrets_user_id")),
    )
    marks = op.create_table(
        "deletion_marks",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_deletion_marks")),
    )
    with op.batch_alter_table("machine_holds") as batch_op:
        batch_op.add_column(
            sa.Column("modified", sa.DateTime(timezone=True), server_default=NOW, nullable=False)
        )
        batch_op.create_index("ix_machine_holds_machine_id_modified", ["machine_id", "modified"])
        batch_op.create_index("ix_machine_holds_modified", ["modified"])
    with op.batch_alter_table("machine_hold_schedules") as batch_op:
        batch_op.add_column(
            sa.Column("modified", sa.DateTime(timezone=True), server_default=NOW, nullable=False)
        )
    op.execute(marks.insert().from_select(["kind", "at"], sa.select(sa.literal("hold"), NOW)))
    op.execute(marks.insert().from_select(["kind", "at"], sa.select(sa.literal("schedule"), NOW)))


def downgrade() -> None:
    with op.batch_alter_table("machine_hold_schedules") as batch_op:
        batch_op.drop_column("modified")
    with op.batch_alter_table("machine_holds") as batch_op:
        batch_op.drop_index("ix_machine_holds_modified")
        batch_op.drop_index("ix_machine_holds_machine_id_modified")
        batch_op.drop_column("modified")
    op.drop_table("deletion_marks")
    op.drop_table("feed_secrets")
