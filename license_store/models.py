"""Tables of the license register, split by role as the API uses them.

``…Base`` holds the fields a caller supplies, ``…Create`` is the input of the
repository, ``…Public`` is what the API may show, and the class with
``table=True`` is the row. Versions and events are never updated after insert.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

# JSONB on PostgreSQL so that records can be indexed later; JSON text elsewhere.
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_type=sa.DateTime(timezone=True), **kwargs)


def _enum_type(enum_class: type[enum.Enum], length: int) -> sa.Enum:
    # Stored as the plain code ("01", "issue"), with no database enum type,
    # and read back as the enum member.
    return sa.Enum(
        enum_class,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class LicenseStatus(enum.StrEnum):
    """Status codes of the national e-license feeds (GB/T 36903 metadata)."""

    VALID = "01"  # 有效
    SUSPENDED = "02"  # 暂扣
    ANNULLED = "03"  # 撤销
    CANCELLED = "04"  # 注销
    EXPIRED = "05"  # 失效
    REVOKED = "07"  # 吊销

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]

    @property
    def is_current(self) -> bool:
        """True while the license still belongs to its holder (有效 or 暂扣)."""
        return self in (LicenseStatus.VALID, LicenseStatus.SUSPENDED)


_STATUS_LABELS = {
    LicenseStatus.VALID: "有效",
    LicenseStatus.SUSPENDED: "暂扣",
    LicenseStatus.ANNULLED: "撤销",
    LicenseStatus.CANCELLED: "注销",
    LicenseStatus.EXPIRED: "失效",
    LicenseStatus.REVOKED: "吊销",
}


class Operation(enum.StrEnum):
    """Operations recorded in the event log."""

    ISSUE = "issue"
    AMEND = "amend"
    RENEW = "renew"
    REPLACE = "replace"
    SUSPEND = "suspend"
    LIFT = "lift"
    REVOKE = "revoke"
    CANCEL = "cancel"
    EXPIRE = "expire"


# Status changes without a new version: the statuses an operation starts
# from and the statuses it may set. A new version (amend, renew, replace) is
# allowed from 有效 or 失效 and sets 有效 again.
STATUS_CHANGES: dict[Operation, tuple[frozenset[str], frozenset[str]]] = {
    Operation.SUSPEND: (frozenset({"01"}), frozenset({"02"})),
    Operation.LIFT: (frozenset({"02"}), frozenset({"01"})),
    Operation.REVOKE: (frozenset({"01", "02"}), frozenset({"03", "07"})),
    Operation.CANCEL: (frozenset({"01", "02", "05"}), frozenset({"04"})),
    Operation.EXPIRE: (frozenset({"01"}), frozenset({"05"})),
}
NEW_VERSION_FROM = frozenset({"01", "05"})


class ClientKind(enum.StrEnum):
    """A bureau issues for its own authority code, an agency only queries."""

    BUREAU = "bureau"
    AGENCY = "agency"


# --- licenses -----------------------------------------------------------


class LicenseBase(SQLModel):
    license_type: str = Field(max_length=64)
    type_code: str = Field(max_length=21)
    issuer_code: str = Field(max_length=18, index=True)
    holder_code: str = Field(max_length=18, index=True)
    holder_code_type: str = Field(max_length=3)  # 001 USCC, 111 citizen ID
    holder_name: str = Field(max_length=400)


class LicenseCreate(LicenseBase):
    pass


class LicensePublic(LicenseBase):
    id: int
    serial: str
    current_version: int
    status: LicenseStatus
    created_at: dt.datetime


class License(LicenseBase, table=True):
    """One license across all its versions, with its current status."""

    __tablename__ = "licenses"
    __table_args__ = (
        sa.UniqueConstraint("issuer_code", "serial", name="uq_licenses_issuer_serial"),
        sa.Index("ix_licenses_holder_type", "holder_code", "license_type"),
        sa.Index("ix_licenses_issuer_id", "issuer_code", "id"),
        sa.Index("ix_licenses_issuer_status_id", "issuer_code", "status", "id"),
        # A trigram index on PostgreSQL (pg_trgm) so that a holder-name
        # substring search uses an index; a plain index elsewhere.
        sa.Index(
            "ix_licenses_holder_name_trgm",
            "holder_name",
            postgresql_using="gin",
            postgresql_ops={"holder_name": "gin_trgm_ops"},
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=32)
    current_version: int = Field(ge=1)
    status: LicenseStatus = Field(
        default=LicenseStatus.VALID, sa_type=_enum_type(LicenseStatus, 2), index=True
    )
    created_at: dt.datetime = _utc_column(default_factory=utc_now)


# --- versions -----------------------------------------------------------


class LicenseVersionBase(SQLModel):
    record: dict[str, Any] = Field(sa_type=JSONType)
    pdf_sha256: str = Field(max_length=64, index=True)
    pdf_size: int = Field(ge=1)
    valid_from: dt.date
    valid_to: dt.date | None = None  # None means 长期 (open-ended)
    issued_on: dt.date = Field(index=True)


class LicenseVersionCreate(LicenseVersionBase):
    pass


class LicenseVersionPublic(SQLModel):
    """A version without its record, which may contain citizen ID numbers.

    An API that shows record fields must mask personal data first.
    """

    id: int
    license_id: int
    version: int
    elicense_id: str
    pdf_sha256: str
    pdf_size: int
    valid_from: dt.date
    valid_to: dt.date | None
    issued_on: dt.date
    created_at: dt.datetime


class LicenseVersion(LicenseVersionBase, table=True):
    """One issued PDF of a license. Rows are only inserted, never updated."""

    __tablename__ = "license_versions"
    __table_args__ = (
        sa.UniqueConstraint(
            "license_id", "version", name="uq_versions_license_version"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    license_id: int = Field(foreign_key="licenses.id", index=True)
    version: int = Field(ge=1, le=999)
    elicense_id: str = Field(max_length=100, unique=True)
    created_at: dt.datetime = _utc_column(default_factory=utc_now)


# --- events -------------------------------------------------------------


class LicenseEventBase(SQLModel):
    operation: Operation = Field(sa_type=_enum_type(Operation, 16))
    license_id: int = Field(foreign_key="licenses.id", index=True)
    version: int
    operator: str = Field(max_length=200)
    authority_code: str = Field(max_length=18)
    reason: str | None = Field(default=None, max_length=2000)
    legal_basis: str | None = Field(default=None, max_length=2000)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)


class LicenseEventCreate(LicenseEventBase):
    pass


class LicenseEventPublic(LicenseEventBase):
    id: int
    occurred_at: dt.datetime
    leaf_hash: str


class LicenseEvent(LicenseEventBase, table=True):
    """Append-only log entry whose ``leaf_hash`` is leaf ``log_index`` of the log."""

    __tablename__ = "license_events"
    __table_args__ = (
        sa.Index("ix_license_events_log_index", "log_index", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: dt.datetime = _utc_column(default_factory=utc_now)
    leaf_hash: str = Field(max_length=64, unique=True)
    # Position in the Merkle log: 0, 1, 2… in commit order, without gaps.
    log_index: int = Field(ge=0)


class LogCheckpoint(SQLModel, table=True):
    """Signed root of the event log's Merkle tree at one size. Never updated."""

    __tablename__ = "log_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(ge=0, index=True)
    root_hash: str = Field(max_length=64)
    note: str = Field(max_length=2000)
    key_id: str = Field(max_length=64)
    signature: str = Field(max_length=400)
    created_at: dt.datetime = _utc_column(default_factory=utc_now)


class StoredBlob(SQLModel, table=True):
    """PDF bytes kept in the database by ``DatabaseBlobStore``."""

    __tablename__ = "blobs"

    sha256: str = Field(max_length=64, primary_key=True)
    size: int = Field(ge=0)
    data: bytes = Field(sa_type=sa.LargeBinary())
    created_at: dt.datetime = _utc_column(default_factory=utc_now)


# --- serial counters and idempotency ------------------------------------


class SerialCounter(SQLModel, table=True):
    """Last serial number handed out per issuing authority and year."""

    __tablename__ = "serial_counters"

    issuer_code: str = Field(max_length=18, primary_key=True)
    year: int = Field(primary_key=True)
    last_value: int = Field(default=0, ge=0)


class IdempotencyKey(SQLModel, table=True):
    """First result of a request sent with an idempotency key."""

    __tablename__ = "idempotency_keys"

    key: str = Field(max_length=200, primary_key=True)
    authority_code: str = Field(max_length=18, primary_key=True)
    request_hash: str = Field(max_length=64)
    license_id: int = Field(foreign_key="licenses.id")
    version: int
    created_at: dt.datetime = _utc_column(default_factory=utc_now)


# --- API clients and agency audit ---------------------------------------


class ApiClientBase(SQLModel):
    name: str = Field(max_length=200)
    kind: ClientKind = Field(sa_type=_enum_type(ClientKind, 16))
    authority_code: str | None = Field(default=None, max_length=18)
    scopes: list[str] = Field(default_factory=list, sa_type=JSONType)


class ApiClientCreate(ApiClientBase):
    api_key_hash: str = Field(max_length=64)


class ApiClientPublic(ApiClientBase):
    id: int
    created_at: dt.datetime
    disabled: bool


class ApiClient(ApiClientBase, table=True):
    """Bureau or agency system. Only the SHA-256 of its API key is stored."""

    __tablename__ = "api_clients"

    id: int | None = Field(default=None, primary_key=True)
    api_key_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = _utc_column(default_factory=utc_now)
    disabled: bool = False


class AgencyQueryAuditBase(SQLModel):
    client_id: int = Field(foreign_key="api_clients.id", index=True)
    purpose: str = Field(max_length=500)
    query: dict[str, Any] = Field(sa_type=JSONType)
    result_count: int = Field(ge=0)


class AgencyQueryAuditCreate(AgencyQueryAuditBase):
    pass


class AgencyQueryAudit(AgencyQueryAuditBase, table=True):
    """One query an agency made, with its stated purpose."""

    __tablename__ = "agency_query_audit"

    id: int | None = Field(default=None, primary_key=True)
    queried_at: dt.datetime = _utc_column(default_factory=utc_now, index=True)
