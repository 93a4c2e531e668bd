"""PDF blobs in the register database, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.errors import InputError, NotFoundError, StorageError
from license_store.blobs import FileBlobStore, sha256_hex
from license_store.dbblobs import DatabaseBlobStore, open_blob_store
from license_store.issuance import IssuanceService
from license_store.repository import Repository
from license_store.storecheck import check_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RECORD = json.loads((EXAMPLES / "licenses-sample.jsonl").open().readline())


@pytest.fixture
def store(engine: sa.Engine) -> DatabaseBlobStore:
    return DatabaseBlobStore(engine)


def test_put_get_roundtrip(store: DatabaseBlobStore) -> None:
    digest = store.put(b"%PDF-1.7 database")

    assert digest == sha256_hex(b"%PDF-1.7 database")
    assert store.get(digest) == b"%PDF-1.7 database"
    assert store.exists(digest)
    assert store.size_of(digest) == len(b"%PDF-1.7 database")
    assert 0 <= store.age_seconds(digest) < 60


def test_put_twice_keeps_one(store: DatabaseBlobStore) -> None:
    first = store.put(b"same bytes")
    second = store.put(b"same bytes")

    assert first == second
    assert list(store.iter_digests()) == [first]


def test_missing_blob_not_found(store: DatabaseBlobStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("0" * 64)
    assert store.size_of("0" * 64) is None
    assert not store.delete("0" * 64)


def test_altered_blob_rejected(store: DatabaseBlobStore, engine: sa.Engine) -> None:
    digest = store.put(b"original content")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE blobs SET data = :data WHERE sha256 = :digest"),
            {"data": b"altered content!", "digest": digest},
        )

    with pytest.raises(StorageError, match="已损坏"):
        store.get(digest)


def test_delete_removes(store: DatabaseBlobStore) -> None:
    digest = store.put(b"orphan")

    assert store.delete(digest)
    assert not store.exists(digest)


def test_issue_into_database_store(
    service: IssuanceService, repository: Repository, engine: sa.Engine
) -> None:
    store = DatabaseBlobStore(engine)
    service.blobs = store

    issued = service.issue(RECORD, operator="测试员")
    orphan = store.put(b"left by a crash")
    report = check_store(repository, store)

    assert store.get(issued.pdf_sha256)[:5] == b"%PDF-"
    assert report.ok
    assert report.orphans == [orphan]


def test_factory_selects_store(engine: sa.Engine, tmp_path: Path) -> None:
    assert isinstance(open_blob_store("file", tmp_path, engine), FileBlobStore)
    assert isinstance(open_blob_store("database", tmp_path, engine), DatabaseBlobStore)
    with pytest.raises(InputError) as caught:
        open_blob_store("s3", tmp_path, engine)
    assert caught.value.field == "blob_store"
