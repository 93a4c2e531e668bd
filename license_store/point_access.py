"""Single-statement reads and appends for the busy paths.

QR checks and agency queries read one version or one holder's licenses and
append one audit row. Each of these is one SQL statement on a pooled
connection in autocommit mode: a read sees every row committed before it
started (by this process, another worker or the CLI), an insert is its own
transaction, and no transaction outlives its statement. A scanned QR code
or an agency query then costs a round trip or two instead of a connection
set-up and several ORM queries.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import time
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from common.codes import normalize_code
from license_store.models import (
    AgencyQueryAudit,
    ApiClient,
    License,
    LicenseStatus,
    LicenseVersion,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
# How long an audit insert keeps trying to get SQLite's write lock, and the
# range of its pauses between attempts.
LOCK_WAIT_SECONDS = 30.0
RETRY_PAUSE_SECONDS = (0.0001, 0.0006)
# Key in a pooled connection's info dict for the identities of its files.
_FILES_KEY = "elicense_file_identities"
# Connections kept open per worker process. Extra ones are opened when more
# reads than this run at once.
POOL_SIZE = 4
POOL_OVERFLOW = 16

_current = aliased(LicenseVersion, name="current_version_row")


@dataclass(frozen=True)
class VersionFacts:
    """One version joined with its license and the license's current version."""

    license_id: int
    license_type: str
    type_code: str
    serial: str
    holder_name: str
    holder_code: str
    holder_code_type: str
    issuer_code: str
    status: LicenseStatus
    current_version: int
    elicense_id: str
    version: int
    record: dict[str, Any]
    issued_on: dt.date
    valid_from: dt.date
    valid_to: dt.date | None
    current_elicense_id: str
    current_valid_to: dt.date | None


def create_autocommit_engine(engine: sa.Engine, *, read_only: bool) -> sa.Engine:
    """Return a pooled engine whose connections run each statement on its own.

    On SQLite the connections stay in autocommit mode. SQLite then takes a
    fresh snapshot for every statement and an insert commits at once.
    ``read_only`` adds ``query_only``. On PostgreSQL the register's own
    pool serves with ``AUTOCOMMIT``.
    """
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    autocommit = sa.create_engine(
        engine.url,
        poolclass=sa.pool.QueuePool,
        pool_size=POOL_SIZE,
        max_overflow=POOL_OVERFLOW,
        connect_args={"check_same_thread": False},
    )

    def configure(dbapi_connection: Any, record: Any) -> None:
        # With isolation_level None pysqlite never sends BEGIN. Readers in
        # WAL mode do not wait for writers, and writers retry on their own.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        busy_ms = SQLITE_BUSY_TIMEOUT_MS if read_only else 0
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # As on the register's own connections: in WAL mode a commit then
        # waits for no fsync, and the database stays consistent on power loss.
        cursor.execute("PRAGMA synchronous=NORMAL")
        if read_only:
            cursor.execute("PRAGMA query_only=ON")
        # Reading the schema version opens the WAL index (the -shm file).
        cursor.execute("PRAGMA schema_version")
        cursor.close()
        record.info[_FILES_KEY] = _file_identities(database)

    def check_files(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get(_FILES_KEY) != _file_identities(database):
            log.warning("register files replaced under a pooled connection; reconnecting")
            raise sa.exc.DisconnectionError("database or WAL index file replaced")

    database = str(engine.url.database)
    sa.event.listen(autocommit, "connect", configure)
    sa.event.listen(autocommit, "checkout", check_files)
    return autocommit


def _file_identities(database: str) -> tuple[tuple[int, int], ...] | None:
    """Return (device, inode) of the database and its WAL index, or None.

    POSIX advisory locks belong to a process, so when any code in the
    process opens and closes the database file outside SQLite (a file copy,
    a backup tool), SQLite's locks are gone. The last other connection to
    close then deletes the WAL and WAL index files, and a pooled connection
    keeps reading its stale mapping of the old index. SQLite describes this
    in "How To Corrupt An SQLite Database File", section 2.2. A new inode
    shows it happened, so the pool then opens a new connection.

    NOTE: a file system may give the recreated file the old inode number,
    and then this check misses it. Copy or back up the register from
    another process (``sqlite3 .backup``, ``cp``), never from a service
    worker.
    """
    try:
        files = (os.stat(database), os.stat(database + "-shm"))
    except FileNotFoundError:
        return None
    return tuple((info.st_dev, info.st_ino) for info in files)


class WriteLockBusy(Exception):
    """SQLite's write lock is held by another connection right now."""


class AuditAppender:
    """Append agency query audit rows, each insert its own transaction.

    On SQLite the service workers take turns at one write lock. SQLite's
    default busy handler (sqliteDefaultBusyCallback) sleeps 1, 2, 5, 10 ms
    and longer between attempts. An audit insert holds the lock for about
    0.1 ms (measured on the benchmark machine), so the appender's
    connections do not wait and the appender retries after a short random
    pause instead.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, row: AgencyQueryAudit, *, wait: bool = True) -> int:
        """Insert the row and return its id. The row is committed on return.

        With ``wait=False`` a busy write lock raises WriteLockBusy at once,
        so that a caller on an event loop can retry from a thread instead.
        """
        values = row.model_dump(exclude={"id"})
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                row_id = self._insert(values)
                break
            except sa.exc.OperationalError as error:
                if not _lock_busy(error) or time.monotonic() > deadline:
                    raise
                if not wait:
                    raise WriteLockBusy("write lock busy: another connection holds it") from error
                time.sleep(random.uniform(*RETRY_PAUSE_SECONDS))
        log.debug("audit row %s appended for client %s", row_id, row.client_id)
        return row_id

    def _insert(self, values: dict[str, Any]) -> int:
        with self.engine.connect() as connection:
            result = connection.execute(_INSERT_AUDIT, values)
            connection.commit()
        (row_id,) = result.inserted_primary_key or (None,)
        return int(row_id)


def _lock_busy(error: sa.exc.OperationalError) -> bool:
    return "database is locked" in str(error.orig)


class PointReader:
    """Reads by identifier, hash, holder code and API key hash.

    The statements are built once with bound parameters, so SQLAlchemy
    compiles each of them once per process and reuses the result layout.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def version_by_elicense_id(self, elicense_id: str) -> VersionFacts | None:
        return self._one_version(_BY_ELICENSE_ID, {"key": normalize_code(elicense_id)})

    def version_by_pdf_sha256(self, sha256: str) -> VersionFacts | None:
        return self._one_version(_BY_PDF_SHA256, {"key": sha256.lower()})

    def current_versions_of_holder(self, holder_code: str, limit: int) -> list[VersionFacts]:
        """Return the holder's licenses at their current version, newest first."""
        parameters = {"holder_code": normalize_code(holder_code), "limit": limit}
        with self.engine.connect() as connection:
            rows = connection.execute(_HOLDER_CURRENT, parameters).all()
        return [_facts(row) for row in rows]

    def enabled_api_client(self, api_key_hash: str) -> ApiClient | None:
        with self.engine.connect() as connection:
            row = connection.execute(_API_CLIENT, {"key": api_key_hash}).mappings().first()
        return None if row is None else ApiClient.model_validate(dict(row))

    def _one_version(self, statement: sa.Select, parameters: dict[str, str]) -> VersionFacts | None:
        with self.engine.connect() as connection:
            row = connection.execute(statement, parameters).first()
        return None if row is None else _facts(row)


def _facts_select(condition: sa.ColumnElement[bool]) -> sa.Select:
    return (
        sa.select(
            License.id,
            License.license_type,
            License.type_code,
            License.serial,
            License.holder_name,
            License.holder_code,
            License.holder_code_type,
            License.issuer_code,
            License.status,
            License.current_version,
            LicenseVersion.elicense_id,
            LicenseVersion.version,
            LicenseVersion.record,
            LicenseVersion.issued_on,
            LicenseVersion.valid_from,
            LicenseVersion.valid_to,
            _current.elicense_id,
            _current.valid_to,
        )
        .select_from(LicenseVersion)
        .join(License, License.id == LicenseVersion.license_id)
        .join(
            _current,
            sa.and_(
                _current.license_id == License.id,
                _current.version == License.current_version,
            ),
        )
        .where(condition)
    )


def _first_version_where(column: Any) -> sa.Select:
    return (
        _facts_select(column == sa.bindparam("key"))
        .order_by(LicenseVersion.id)  # type: ignore[arg-type]
        .limit(1)
    )


_BY_ELICENSE_ID = _first_version_where(LicenseVersion.elicense_id)
_BY_PDF_SHA256 = _first_version_where(LicenseVersion.pdf_sha256)
_HOLDER_CURRENT = (
    _facts_select(LicenseVersion.version == License.current_version)
    .where(License.holder_code == sa.bindparam("holder_code"))
    .order_by(License.id.desc())  # type: ignore[union-attr]
    .limit(sa.bindparam("limit"))
)
_INSERT_AUDIT = sa.insert(AgencyQueryAudit.__table__)
_API_CLIENTS = ApiClient.__table__
_API_CLIENT = sa.select(_API_CLIENTS).where(
    _API_CLIENTS.c.api_key_hash == sa.bindparam("key"), sa.not_(_API_CLIENTS.c.disabled)
)


def _facts(row: sa.Row) -> VersionFacts:
    # The select lists its columns in the order of the VersionFacts fields.
    values = list(row)
    values[_STATUS_COLUMN] = LicenseStatus(values[_STATUS_COLUMN])
    return VersionFacts(*values)


_STATUS_COLUMN = [field.name for field in fields(VersionFacts)].index("status")
