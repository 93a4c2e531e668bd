"""Content-addressed file store for issued PDFs.

A blob lives at ``root/sha256/ab/<64 hex digits>`` where ``ab`` are the first
two hex digits of its SHA-256. A blob is written to a temporary file in the
same directory, flushed to disk and renamed into place, so a reader sees either
the whole file or no file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from common.errors import InputError, NotFoundError, StorageError

log = logging.getLogger(__name__)

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    """Content-addressed PDF store: on disk, or in the register database."""

    def put(self, data: bytes) -> str: ...

    def get(self, sha256: str) -> bytes: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> bool: ...

    def size_of(self, sha256: str) -> int | None: ...

    def age_seconds(self, sha256: str) -> float | None: ...

    def iter_digests(self) -> Iterator[str]: ...

    def remove_temp_files(self, min_age_seconds: float) -> list[str]: ...


class FileBlobStore:
    """Blobs addressed by the SHA-256 of their content."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str) -> Path:
        """Return where the blob with this digest lives (it need not exist)."""
        digest = _checked_digest(sha256)
        return self.root / "sha256" / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` durably and return its SHA-256 in hex.

        Storing the same bytes twice keeps the first file, unless its size
        shows that it was truncated, in which case it is written again.
        Raises StorageError when the file cannot be written.
        """
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if _has_size(path, len(data)):
            return digest
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        except OSError as error:
            raise StorageError(
                f"无法写入文件存储 {path}：{error.strerror}",
                fix="请检查磁盘空间和目录权限",
            ) from error
        log.debug("stored blob %s (%d bytes)", digest, len(data))
        return digest

    def get(self, sha256: str) -> bytes:
        """Return the blob's bytes after checking them against the digest.

        Raises NotFoundError when the blob is missing and StorageError when
        its content no longer matches the digest.
        """
        path = self.path_for(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"文件存储中没有摘要为 {sha256} 的文件",
                fix="请运行存储检查，核对登记簿与文件存储是否一致",
            ) from None
        if sha256_hex(data) != sha256:
            raise StorageError(
                f"文件 {path} 的内容与其 SHA-256 摘要不符，文件已损坏",
                fix="请从备份恢复该文件",
            )
        return data

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def size_of(self, sha256: str) -> int | None:
        """Return the stored size in bytes, or None when the blob is missing."""
        try:
            return self.path_for(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def age_seconds(self, sha256: str) -> float | None:
        """Return the seconds since the blob was written, or None when missing."""
        try:
            return time.time() - self.path_for(sha256).stat().st_mtime
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> bool:
        """Remove a blob and return whether it existed.

        Only for orphans that no license version refers to.
        """
        try:
            self.path_for(sha256).unlink()
        except FileNotFoundError:
            return False
        log.info("deleted blob %s", sha256)
        return True

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob, skipping temporary files."""
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(base.iterdir()):
            for path in sorted(prefix.iterdir()):
                if _HEX_DIGEST.fullmatch(path.name) and path.name[:2] == prefix.name:
                    yield path.name


    def remove_temp_files(self, min_age_seconds: float) -> list[str]:
        """Remove temporary files of writes that a crash cut short; return names.

        Only files older than ``min_age_seconds`` go, so a write in progress
        keeps its file.
        """
        base = self.root / "sha256"
        removed: list[str] = []
        now = time.time()
        for path in sorted(base.glob("*/.tmp-*")) if base.is_dir() else []:
            try:
                if now - path.stat().st_mtime >= min_age_seconds:
                    path.unlink()
                    removed.append(path.name)
            except FileNotFoundError:
                continue
        if removed:
            log.info("removed %d temporary blob files", len(removed))
        return removed


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def _checked_digest(sha256: str) -> str:
    if not isinstance(sha256, str) or not _HEX_DIGEST.fullmatch(sha256):
        raise InputError(
            "SHA-256 摘要应为 64 位小写十六进制数字",
            field="sha256",
            value=sha256,
            fix="请传入 hashlib.sha256(...).hexdigest() 的结果",
        )
    return sha256


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry reaches the disk.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
