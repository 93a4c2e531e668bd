"""Indexes for register searches by authority, status, date and holder name.

On PostgreSQL the holder-name index is a trigram GIN index (pg_trgm), which
serves ``ILIKE '%…%'`` substring searches. When the extension cannot be
created (it needs the CREATE privilege on the database, and the package
must be installed) the index falls back to a plain B-tree and a substring
search scans the table. SQLite always gets the plain index: SQLite cannot
use an index for ``LIKE '%…%'``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger(__name__)

HOLDER_NAME_INDEX = "ix_licenses_holder_name_trgm"


def upgrade() -> None:
    op.create_index("ix_licenses_issuer_id", "licenses", ["issuer_code", "id"])
    op.create_index(
        "ix_licenses_issuer_status_id", "licenses", ["issuer_code", "status", "id"]
    )
    op.create_index(
        "ix_license_versions_issued_on", "license_versions", ["issued_on"]
    )
    schema = _trigram_schema() if op.get_bind().dialect.name == "postgresql" else None
    if schema is None:
        op.create_index(HOLDER_NAME_INDEX, "licenses", ["holder_name"])
        return
    op.execute(
        f'CREATE INDEX {HOLDER_NAME_INDEX} ON licenses '
        f'USING gin (holder_name "{schema}".gin_trgm_ops)'
    )


def downgrade() -> None:
    op.drop_index(HOLDER_NAME_INDEX, table_name="licenses")
    op.drop_index("ix_license_versions_issued_on", table_name="license_versions")
    op.drop_index("ix_licenses_issuer_status_id", table_name="licenses")
    op.drop_index("ix_licenses_issuer_id", table_name="licenses")


def _trigram_schema() -> str | None:
    """Return the schema of pg_trgm, creating the extension when it can.

    An extension installed in a schema that is neither ``public`` nor on the
    search path is left alone, because an index using it would be dropped
    whenever that schema is dropped.
    """
    bind = op.get_bind()
    found = _extension_schema(bind)
    if found is not None:
        visible = bind.exec_driver_sql("SELECT current_schemas(true)").scalar()
        if found == "public" or found in visible:
            return found
        log.warning("pg_trgm is in schema %s, off the search path", found)
        return None
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as error:
        log.warning("pg_trgm unavailable, holder-name search scans: %s", error.orig)
        return None
    return _extension_schema(bind)


def _extension_schema(bind: sa.Connection) -> str | None:
    return bind.exec_driver_sql(
        "SELECT n.nspname FROM pg_extension AS e "
        "JOIN pg_namespace AS n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    ).scalar()
