"""PDF blobs kept in the register database, for deployments with several nodes.

Every node reaches the same PostgreSQL server, so a PDF written by one node
is at once readable by the others, and a database backup contains the PDFs
with the rows that refer to them. The table also works on SQLite, for tests.
A blob is committed in a transaction of its own before the rows that refer
to it, as with the file store, so a crash in between leaves an orphan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common.errors import InputError, NotFoundError, StorageError
from license_store.blobs import BlobStore, FileBlobStore, _checked_digest, sha256_hex
from license_store.db import SQLITE_BEGIN_OPTION
from license_store.models import StoredBlob, utc_now

log = logging.getLogger(__name__)

_TABLE = StoredBlob.__table__  # type: ignore[attr-defined]


class DatabaseBlobStore:
    """Blobs addressed by SHA-256 in the ``blobs`` table of the register."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256; storing it again is harmless."""
        digest = sha256_hex(data)
        if self.size_of(digest) == len(data):
            return digest
        row = {
            "sha256": digest,
            "size": len(data),
            "data": data,
            "created_at": utc_now(),
        }
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.delete(_TABLE).where(_TABLE.c.sha256 == digest))
                connection.execute(sa.insert(_TABLE).values(**row))
        except IntegrityError:
            # A parallel put of the same bytes committed first.
            if self.size_of(digest) != len(data):
                raise
        except sa.exc.DBAPIError as error:
            raise StorageError(
                f"无法写入数据库文件存储：{error.orig}",
                fix="请检查数据库连接和磁盘空间",
            ) from error
        log.debug("stored blob %s (%d bytes) in the database", digest, len(data))
        return digest

    def get(self, sha256: str) -> bytes:
        """Return the blob's bytes after checking them against the digest."""
        digest = _checked_digest(sha256)
        with self._reading() as connection:
            data = connection.execute(
                sa.select(_TABLE.c.data).where(_TABLE.c.sha256 == digest)
            ).scalar()
        if data is None:
            raise NotFoundError(
                f"数据库文件存储中没有摘要为 {sha256} 的文件",
                fix="请运行 elicense fsck，核对登记簿与文件存储是否一致",
            )
        if sha256_hex(bytes(data)) != digest:
            raise StorageError(
                f"数据库中摘要为 {sha256} 的文件内容与摘要不符，文件已损坏",
                fix="请从备份恢复该文件",
            )
        return bytes(data)

    def exists(self, sha256: str) -> bool:
        return self.size_of(sha256) is not None

    def size_of(self, sha256: str) -> int | None:
        digest = _checked_digest(sha256)
        with self._reading() as connection:
            return connection.execute(
                sa.select(sa.func.length(_TABLE.c.data)).where(
                    _TABLE.c.sha256 == digest
                )
            ).scalar()

    def age_seconds(self, sha256: str) -> float | None:
        digest = _checked_digest(sha256)
        with self._reading() as connection:
            created = connection.execute(
                sa.select(_TABLE.c.created_at).where(_TABLE.c.sha256 == digest)
            ).scalar()
        if created is None:
            return None
        if created.tzinfo is None:  # SQLite returns naive UTC times
            created = created.replace(tzinfo=utc_now().tzinfo)
        return (utc_now() - created).total_seconds()

    def delete(self, sha256: str) -> bool:
        """Remove a blob and return whether it existed (orphans only)."""
        digest = _checked_digest(sha256)
        with self.engine.begin() as connection:
            deleted = connection.execute(
                sa.delete(_TABLE).where(_TABLE.c.sha256 == digest)
            ).rowcount
        if deleted:
            log.info("deleted blob %s from the database", digest)
        return bool(deleted)

    def iter_digests(self, batch_size: int = 1000) -> Iterator[str]:
        last = ""
        while True:
            with self._reading() as connection:
                digests = list(
                    connection.execute(
                        sa.select(_TABLE.c.sha256)
                        .where(_TABLE.c.sha256 > last)
                        .order_by(_TABLE.c.sha256)
                        .limit(batch_size)
                    ).scalars()
                )
            if not digests:
                return
            yield from digests
            last = digests[-1]

    def remove_temp_files(self, min_age_seconds: float) -> list[str]:
        """Return no names: a database write leaves no partial file behind."""
        return []

    def _reading(self) -> sa.Connection:
        options = {SQLITE_BEGIN_OPTION: "DEFERRED"}
        return self.engine.execution_options(**options).connect()


def open_blob_store(kind: str, root: Path, engine: sa.Engine) -> BlobStore:
    """Return the blob store named by a setting: ``file`` or ``database``."""
    if kind == "file":
        return FileBlobStore(root)
    if kind == "database":
        return DatabaseBlobStore(engine)
    raise InputError(
        f"未知的文件存储类型 {kind}",
        field="blob_store",
        value=kind,
        fix="ELICENSE_BLOB_STORE 请设为 file 或 database",
    )
