"""Initial schema: machines, users, machine holds and hold schedules.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 18:44:26.126650
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machines")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "planner",
                "staff",
                name="user_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )
    op.create_table(
        "machine_hold_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("frequency", sa.String(length=1), nullable=False),
        sa.Column("interval", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("indices", sa.JSON(), nullable=False),
        sa.Column("months", sa.Integer(), server_default=sa.text("4095"), nullable=False),
        sa.Column("weekdays", sa.Integer(), server_default=sa.text("127"), nullable=False),
        sa.Column("time_of_day", sa.Time(), nullable=False),
        sa.Column("duration", sa.Interval(), nullable=True),
        sa.Column("anchor", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_fire", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "frequency IN ('Y', 'M', 'W', 'D', 'H')",
            name=op.f("ck_machine_hold_schedules_frequency_valid"),
        ),
        sa.CheckConstraint(
            '"interval" >= 1', name=op.f("ck_machine_hold_schedules_interval_positive")
        ),
        sa.CheckConstraint(
            "months >= 0 AND months <= 4095", name=op.f("ck_machine_hold_schedules_months_range")
        ),
        sa.CheckConstraint(
            "weekdays >= 0 AND weekdays <= 127",
            name=op.f("ck_machine_hold_schedules_weekdays_range"),
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"],
            ["machines.id"],
            name=op.f("fk_machine_hold_schedules_machine_id_machines"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_hold_schedules")),
    )
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_machine_hold_schedules_machine_id"), ["machine_id"], unique=False
        )

    op.create_table(
        "machine_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("machine_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("schedule_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("notes", sa.String(length=10000), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            '"end" IS NULL OR "end" > start', name=op.f("ck_machine_holds_end_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name=op.f("fk_machine_holds_machine_id_machines")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["machine_hold_schedules.id"],
            name=op.f("fk_machine_holds_schedule_id_machine_hold_schedules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_machine_holds_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_machine_holds")),
        sa.UniqueConstraint("schedule_id", "start", name="uq_machine_holds_schedule_id_start"),
    )
    with op.batch_alter_table("machine_holds", schema=None) as batch_op:
        batch_op.create_index("ix_machine_holds_end_start_id", ["end", "start", "id"], unique=False)
        batch_op.create_index(
            "ix_machine_holds_machine_id_start_id", ["machine_id", "start", "id"], unique=False
        )
        batch_op.create_index("ix_machine_holds_start_id", ["start", "id"], unique=False)
        batch_op.create_index(
            "ix_machine_holds_user_id_start_id", ["user_id", "start", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("machine_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_machine_holds_user_id_start_id")
        batch_op.drop_index("ix_machine_holds_start_id")
        batch_op.drop_index("ix_machine_holds_machine_id_start_id")
        batch_op.drop_index("ix_machine_holds_end_start_id")

    op.drop_table("machine_holds")
    with op.batch_alter_table("machine_hold_schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_machine_hold_schedules_machine_id"))

    op.drop_table("machine_hold_schedules")
    op.drop_table("users")
    op.drop_table("machines")
