"""Content-addressed PDF store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from common.errors import InputError, NotFoundError, StorageError
from license_store.blobs import FileBlobStore


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def test_put_returns_sha256(store: FileBlobStore) -> None:
    digest = store.put(b"%PDF-1.7 test")

    assert digest == hashlib.sha256(b"%PDF-1.7 test").hexdigest()
    assert store.get(digest) == b"%PDF-1.7 test"
    assert store.exists(digest)


def test_layout_uses_two_digit_prefix(store: FileBlobStore, tmp_path: Path) -> None:
    digest = store.put(b"layout")

    assert store.path_for(digest) == tmp_path / "blobs" / "sha256" / digest[:2] / digest
    assert store.path_for(digest).read_bytes() == b"layout"


def test_put_twice_keeps_one_file(store: FileBlobStore) -> None:
    first = store.put(b"same")
    second = store.put(b"same")

    assert first == second
    assert list(store.iter_digests()) == [first]
    assert not [p for p in store.path_for(first).parent.iterdir() if p.name != first]


def test_get_missing_raises_not_found(store: FileBlobStore) -> None:
    with pytest.raises(NotFoundError):
        store.get("0" * 64)


def test_get_tampered_raises_storage_error(store: FileBlobStore) -> None:
    digest = store.put(b"original")
    store.path_for(digest).write_bytes(b"tampered")

    with pytest.raises(StorageError, match="已损坏"):
        store.get(digest)


@pytest.mark.parametrize("digest", ["", "abc", "G" * 64, "A" * 64, "../" + "0" * 61])
def test_malformed_digest_rejected(store: FileBlobStore, digest: str) -> None:
    with pytest.raises(InputError):
        store.path_for(digest)


def test_delete_removes_blob(store: FileBlobStore) -> None:
    digest = store.put(b"orphan")

    assert store.delete(digest)
    assert not store.exists(digest)
    assert not store.delete(digest)


def test_iter_digests_skips_temporary_files(store: FileBlobStore) -> None:
    digest = store.put(b"kept")
    (store.path_for(digest).parent / ".tmp-leftover").write_bytes(b"partial")

    assert list(store.iter_digests()) == [digest]


def test_empty_store_lists_nothing(store: FileBlobStore) -> None:
    assert list(store.iter_digests()) == []


def test_put_repairs_truncated_blob(store: FileBlobStore) -> None:
    digest = store.put(b"complete content")
    store.path_for(digest).write_bytes(b"compl")

    assert store.put(b"complete content") == digest
    assert store.get(digest) == b"complete content"
