"""Unique machine names, and the history of holds and schedules.

Machine names become unique. A database that already holds machines of one name keeps the name
on the oldest of them (the lowest id); every other one is renamed "NAME (ID)", shortened to fit
the 200 characters of the column ("NAME (ID-2)" and so on if even that is taken). Downgrading
keeps the new names.

``history_entries`` records every change made through the API to a hold or a schedule
(docs/API.md, History). It starts empty: what happened before this migration is not known.

Revision ID: 0008_history
Revises: 0005_idempotency_keys
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_history"
down_revision = "0005_idempotency_keys"
branch_labels = None
depends_on = None

NAME_LENGTH = 200


def unique_name(name: str, machine_id: int, taken: set[str]) -> str:
    """``name`` made unique with the machine's id, within NAME_LENGTH characters."""
    attempt = 1
    while True:
        suffix = f" ({machine_id})" if attempt == 1 else f" ({machine_id}-{attempt})"
        candidate = name[: NAME_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        attempt += 1


def rename_duplicates() -> None:
    machines = sa.table("machines", sa.column("id", sa.Integer), sa.column("name", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(machines.c.id, machines.c.name).order_by(machines.c.id))
    taken = set()
    renames = []
    for machine_id, name in rows.all():
        if name in taken:
            renames.append((machine_id, name))
        else:
            taken.add(name)
    for machine_id, name in renames:
        new_name = unique_name(name, machine_id, taken)
        taken.add(new_name)
        connection.execute(
            machines.update().where(machines.c.id == machine_id).values(name=new_name)
        )


def upgrade() -> None:
    rename_duplicates()
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_machines_name"), ["name"])

    op.create_table(
        "history_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'changed', 'deleted')",
            name=op.f("ck_history_entries_action_valid"),
        ),
        sa.CheckConstraint(
            "object_kind IN ('hold', 'schedule')",
            name=op.f("ck_history_entries_object_kind_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_history_entries_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_entries")),
    )
    with op.batch_alter_table("history_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_history_entries_object_kind_object_id_id",
            ["object_kind", "object_id", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_history_entries_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("history_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_history_entries_user_id"))
        batch_op.drop_index("ix_history_entries_object_kind_object_id_id")
    op.drop_table("history_entries")
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_machines_name"), type_="unique")
