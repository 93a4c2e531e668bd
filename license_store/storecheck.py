"""Consistency check of the register against the blob store (like fsck).

Every license version must have its PDF blob with the recorded digest and
size. A blob that no version refers to is an orphan: either an issue crashed
between writing the PDF and committing the rows, or one is in progress now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from common.errors import NotFoundError, StorageError
from license_store.blobs import BlobStore
from license_store.repository import Repository

log = logging.getLogger(__name__)

# An issue in progress has written its blob but not yet committed its rows,
# so younger orphans are never deleted. One hour is far above the seconds an
# issue takes. It is a safety margin, not a measured bound.
DEFAULT_ORPHAN_MIN_AGE_SECONDS = 3600.0


@dataclass(frozen=True)
class BlobProblem:
    elicense_id: str
    pdf_sha256: str
    problem: str


@dataclass
class StoreReport:
    versions_checked: int = 0
    missing: list[BlobProblem] = field(default_factory=list)
    mismatched: list[BlobProblem] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    deleted_orphans: list[str] = field(default_factory=list)
    removed_temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every version has an intact blob (orphans are allowed)."""
        return not self.missing and not self.mismatched


def check_store(
    repository: Repository,
    blobs: BlobStore,
    *,
    verify_content: bool = True,
    delete_orphans: bool = False,
    orphan_min_age_seconds: float = DEFAULT_ORPHAN_MIN_AGE_SECONDS,
) -> StoreReport:
    """Report versions whose blob is missing or altered, and orphan blobs.

    ``verify_content`` rehashes every blob (reads every PDF). With
    ``delete_orphans`` the orphans older than ``orphan_min_age_seconds`` are
    removed and listed in ``deleted_orphans``, and so are the temporary files
    of writes cut short by a crash (``removed_temp_files``).
    """
    report = StoreReport()
    referenced: set[str] = set()
    for elicense_id, sha256, size in repository.iter_version_blobs():
        report.versions_checked += 1
        referenced.add(sha256)
        problem = _check_blob(blobs, sha256, size, verify_content)
        if problem is None:
            continue
        kind, text = problem
        entry = BlobProblem(elicense_id, sha256, text)
        (report.missing if kind == "missing" else report.mismatched).append(entry)
        log.warning("version %s: %s", elicense_id, text)
    report.orphans = [d for d in blobs.iter_digests() if d not in referenced]
    if delete_orphans:
        report.deleted_orphans = _delete_old(
            blobs, report.orphans, orphan_min_age_seconds
        )
        report.removed_temp_files = blobs.remove_temp_files(orphan_min_age_seconds)
    return report


def _check_blob(
    blobs: BlobStore, sha256: str, size: int, verify_content: bool
) -> tuple[str, str] | None:
    actual_size = blobs.size_of(sha256)
    if actual_size is None:
        return "missing", f"文件存储中缺少 PDF {sha256}"
    if actual_size != size:
        return "mismatched", f"PDF 大小为 {actual_size} 字节，登记为 {size} 字节"
    if verify_content:
        try:
            blobs.get(sha256)
        except (NotFoundError, StorageError) as error:
            return "mismatched", error.message
    return None


def _delete_old(blobs: BlobStore, orphans: list[str], min_age: float) -> list[str]:
    deleted = []
    for digest in orphans:
        age = blobs.age_seconds(digest)
        if age is not None and age >= min_age and blobs.delete(digest):
            deleted.append(digest)
    return deleted
