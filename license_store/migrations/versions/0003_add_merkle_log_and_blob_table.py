"""Number the events as Merkle log leaves; add checkpoints and the blob table.

``license_events.log_index`` is the leaf position of an event (0, 1, 2… in
commit order). Existing events are numbered in id order. The update and
delete triggers of ``license_events`` are dropped while the column is
filled, and created again afterwards, because a SQLite batch migration
rebuilds the table without them. ``log_checkpoints`` gets the same triggers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIONS = ("UPDATE", "DELETE")


def upgrade() -> None:
    _drop_triggers("license_events")
    op.add_column("license_events", sa.Column("log_index", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE license_events SET log_index = "
        "(SELECT COUNT(*) FROM license_events AS earlier "
        "WHERE earlier.id < license_events.id)"
    )
    with op.batch_alter_table("license_events") as batch:
        batch.alter_column("log_index", existing_type=sa.Integer(), nullable=False)
    op.create_index(
        "ix_license_events_log_index", "license_events", ["log_index"], unique=True
    )
    _create_triggers("license_events")
    op.create_table(
        "log_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hash", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=400), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_log_checkpoints_tree_size", "log_checkpoints", ["tree_size"])
    _create_triggers("log_checkpoints")
    op.create_table(
        "blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )


def downgrade() -> None:
    op.drop_table("blobs")
    _drop_triggers("log_checkpoints")
    op.drop_table("log_checkpoints")
    _drop_triggers("license_events")
    op.drop_index("ix_license_events_log_index", table_name="license_events")
    with op.batch_alter_table("license_events") as batch:
        batch.drop_column("log_index")
    _create_triggers("license_events")


def _trigger_name(table: str, action: str) -> str:
    return f"{table}_reject_{action.lower()}"


def _drop_triggers(table: str) -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for action in ACTIONS:
        name = _trigger_name(table, action)
        suffix = f" ON {table}" if postgresql else ""
        op.execute(f"DROP TRIGGER IF EXISTS {name}{suffix}")


def _create_triggers(table: str) -> None:
    # The PostgreSQL function elicense_reject_change() comes from 0002.
    postgresql = op.get_bind().dialect.name == "postgresql"
    for action in ACTIONS:
        name = _trigger_name(table, action)
        if postgresql:
            body = "FOR EACH ROW EXECUTE FUNCTION elicense_reject_change()"
        else:
            body = f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
        op.execute(f"CREATE TRIGGER {name} BEFORE {action} ON {table} {body}")
