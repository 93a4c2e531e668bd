"""Reject UPDATE and DELETE on license versions and events.

A version is the record of an issued PDF and an event is a leaf of the
future Merkle log, so changing either would falsify the register. The
triggers raise an integrity error on both SQLite and PostgreSQL.

NOTE: SQLite batch migrations rebuild a table and drop its triggers, so a
later migration that alters these tables must create the triggers again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("license_versions", "license_events")
ACTIONS = ("UPDATE", "DELETE")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table in TABLES:
        for action in ACTIONS:
            name = _trigger_name(table, action)
            if postgresql:
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            else:
                op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS elicense_reject_change()")


def _trigger_name(table: str, action: str) -> str:
    return f"{table}_reject_{action.lower()}"


def _upgrade_sqlite() -> None:
    for table in TABLES:
        for action in ACTIONS:
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, action)} "
                f"BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} rows are immutable'); END"
            )


def _upgrade_postgresql() -> None:
    # SQLSTATE 23000 (integrity_constraint_violation) so that drivers report
    # the same error class as a failed constraint.
    op.execute(
        """
        CREATE FUNCTION elicense_reject_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME
                USING ERRCODE = '23000';
        END
        $$
        """
    )
    for table in TABLES:
        for action in ACTIONS:
            op.execute(
                f"CREATE TRIGGER {_trigger_name(table, action)} "
                f"BEFORE {action} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION elicense_reject_change()"
            )
