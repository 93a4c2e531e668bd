"""Create the register tables.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=True),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("api_key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_hash"),
    )
    op.create_table(
        "licenses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("license_type", sa.String(length=64), nullable=False),
        sa.Column("type_code", sa.String(length=21), nullable=False),
        sa.Column("issuer_code", sa.String(length=18), nullable=False),
        sa.Column("holder_code", sa.String(length=18), nullable=False),
        sa.Column("holder_code_type", sa.String(length=3), nullable=False),
        sa.Column("holder_name", sa.String(length=400), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=2), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer_code", "serial", name="uq_licenses_issuer_serial"),
    )
    op.create_index("ix_licenses_holder_code", "licenses", ["holder_code"])
    op.create_index(
        "ix_licenses_holder_type", "licenses", ["holder_code", "license_type"]
    )
    op.create_index("ix_licenses_issuer_code", "licenses", ["issuer_code"])
    op.create_index("ix_licenses_status", "licenses", ["status"])

    op.create_table(
        "serial_counters",
        sa.Column("issuer_code", sa.String(length=18), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_code", "year"),
    )
    op.create_table(
        "agency_query_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=500), nullable=False),
        sa.Column("query", _json(), nullable=False),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("queried_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["api_clients.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_agency_query_audit_client_id", "agency_query_audit", ["client_id"]
    )
    op.create_index(
        "ix_agency_query_audit_queried_at", "agency_query_audit", ["queried_at"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["license_id"], ["licenses.id"]),
        sa.PrimaryKeyConstraint("key", "authority_code"),
    )
    op.create_table(
        "license_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column("authority_code", sa.String(length=18), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=True),
        sa.Column("legal_basis", sa.String(length=2000), nullable=True),
        sa.Column("detail", _json(), nullable=False),
        sa.Column("occurred_at", _utc(), nullable=False),
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["license_id"], ["licenses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("leaf_hash"),
    )
    op.create_index("ix_license_events_license_id", "license_events", ["license_id"])

    op.create_table(
        "license_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("license_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("elicense_id", sa.String(length=100), nullable=False),
        sa.Column("record", _json(), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_size", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(["license_id"], ["licenses.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("elicense_id"),
        sa.UniqueConstraint(
            "license_id", "version", name="uq_versions_license_version"
        ),
    )
    op.create_index(
        "ix_license_versions_license_id", "license_versions", ["license_id"]
    )
    op.create_index(
        "ix_license_versions_pdf_sha256", "license_versions", ["pdf_sha256"]
    )


def downgrade() -> None:
    op.drop_table("license_versions")
    op.drop_table("license_events")
    op.drop_table("idempotency_keys")
    op.drop_table("agency_query_audit")
    op.drop_table("serial_counters")
    op.drop_table("licenses")
    op.drop_table("api_clients")
