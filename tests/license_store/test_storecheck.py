"""Register against blob store: missing, altered and orphan PDFs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from license_store.blobs import FileBlobStore
from license_store.issuance import IssuanceService
from license_store.repository import Repository
from license_store.storecheck import check_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECORDS = [
    json.loads(line)
    for line in (EXAMPLES / "licenses-sample.jsonl")
    .read_text(encoding="utf-8")
    .splitlines()[:3]
]


def _issue_three(service: IssuanceService) -> list[str]:
    return [service.issue(r, operator="测试员").pdf_sha256 for r in RECORDS]


def test_consistent_store_is_ok(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    _issue_three(service)

    report = check_store(repository, blobs)

    assert report.ok
    assert report.versions_checked == 3
    assert report.orphans == []


def test_missing_blob_reported(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    digests = _issue_three(service)
    blobs.path_for(digests[1]).unlink()

    report = check_store(repository, blobs)

    assert not report.ok
    assert [p.pdf_sha256 for p in report.missing] == [digests[1]]
    assert report.mismatched == []


def test_altered_blob_reported(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    digests = _issue_three(service)
    path = blobs.path_for(digests[0])
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))

    report = check_store(repository, blobs)

    assert [p.pdf_sha256 for p in report.mismatched] == [digests[0]]
    assert "已损坏" in report.mismatched[0].problem


def test_truncated_blob_reported(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    digests = _issue_three(service)
    path = blobs.path_for(digests[2])
    path.write_bytes(path.read_bytes()[:-10])

    report = check_store(repository, blobs, verify_content=False)

    assert [p.pdf_sha256 for p in report.mismatched] == [digests[2]]
    assert "字节" in report.mismatched[0].problem


def test_crash_before_commit_leaves_orphan(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    _issue_three(service)
    orphan = blobs.put(b"%PDF-1.7 written, then the process died before commit")

    report = check_store(repository, blobs)

    assert report.ok
    assert report.orphans == [orphan]
    assert report.deleted_orphans == []
    assert blobs.exists(orphan)


def test_young_orphans_are_kept(repository: Repository, blobs: FileBlobStore) -> None:
    orphan = blobs.put(b"issue in progress")

    report = check_store(repository, blobs, delete_orphans=True)

    assert report.deleted_orphans == []
    assert blobs.exists(orphan)


def test_old_orphans_are_deleted(repository: Repository, blobs: FileBlobStore) -> None:
    orphan = blobs.put(b"left by a crash two hours ago")
    two_hours_ago = os.path.getmtime(blobs.path_for(orphan)) - 7200
    os.utime(blobs.path_for(orphan), (two_hours_ago, two_hours_ago))

    report = check_store(repository, blobs, delete_orphans=True)

    assert report.deleted_orphans == [orphan]
    assert not blobs.exists(orphan)


def test_old_temp_files_removed(repository: Repository, blobs: FileBlobStore) -> None:
    digest = blobs.put(b"complete blob")
    partial = blobs.path_for(digest).parent / ".tmp-cut-short"
    partial.write_bytes(b"%PDF-1.7 half writ")
    two_hours_ago = os.path.getmtime(partial) - 7200
    os.utime(partial, (two_hours_ago, two_hours_ago))

    report = check_store(repository, blobs, delete_orphans=True)

    assert report.removed_temp_files == [".tmp-cut-short"]
    assert not partial.exists()
