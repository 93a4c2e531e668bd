"""Parallel processes adding versions to one license, on both backends."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from factories import ISSUER, license_create, version_create
from workers import (
    add_version_once,
    add_versions_repeatedly,
    allocate_serials,
    issue_once,
)

from license_store.blobs import FileBlobStore
from license_store.repository import Repository

SPAWN = multiprocessing.get_context("spawn")
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "licenses-sample.jsonl"
HOLDER_OF_FIRST_RECORD = "93152921MA09AW0K03"


def _add_license(repository: Repository) -> int:
    with repository.transaction():
        serial = repository.next_serial(ISSUER, 2025)
        license, _ = repository.add_license(
            license_create(), version_create(), serial=serial
        )
    return license.id


def test_two_processes_one_wins(database_url: str, repository: Repository) -> None:
    license_id = _add_license(repository)
    manager = SPAWN.Manager()
    barrier = manager.Barrier(2)
    try:
        with ProcessPoolExecutor(max_workers=2, mp_context=SPAWN) as pool:
            futures = [
                pool.submit(
                    add_version_once, database_url, license_id, 1, content, barrier
                )
                for content in (b"first", b"second")
            ]
            outcomes = sorted(future.result(timeout=120) for future in futures)
    finally:
        manager.shutdown()

    assert outcomes[1] == "won: 2"
    assert outcomes[0].startswith("conflict: ")
    assert "当前版本已是 2" in outcomes[0]
    assert [v.version for v in repository.versions_of(license_id)] == [1, 2]
    assert repository.get_license(license_id).current_version == 2


def test_many_processes_leave_no_gaps(
    database_url: str, repository: Repository
) -> None:
    license_id = _add_license(repository)
    workers, attempts = 4, 6
    manager = SPAWN.Manager()
    barrier = manager.Barrier(workers)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=SPAWN) as pool:
            futures = [
                pool.submit(
                    add_versions_repeatedly,
                    database_url,
                    license_id,
                    worker,
                    attempts,
                    barrier,
                )
                for worker in range(workers)
            ]
            won = [
                version for future in futures for version in future.result(timeout=120)
            ]
    finally:
        manager.shutdown()

    versions = [v.version for v in repository.versions_of(license_id)]
    assert sorted(won) == list(range(2, len(won) + 2))
    assert versions == list(range(1, len(won) + 2))
    assert repository.get_license(license_id).current_version == len(won) + 1


def _issue_in_parallel(
    database_url: str, blob_root: Path, idempotency_key: str | None
) -> list[str]:
    record = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    manager = SPAWN.Manager()
    barrier = manager.Barrier(2)
    try:
        with ProcessPoolExecutor(max_workers=2, mp_context=SPAWN) as pool:
            futures = [
                pool.submit(
                    issue_once,
                    database_url,
                    str(blob_root),
                    record,
                    idempotency_key,
                    barrier,
                )
                for _ in range(2)
            ]
            return sorted(future.result(timeout=120) for future in futures)
    finally:
        manager.shutdown()


@pytest.mark.slow
def test_parallel_duplicate_issue_rejected(
    database_url: str, repository: Repository, tmp_path: Path
) -> None:
    outcomes = _issue_in_parallel(database_url, tmp_path / "blobs", None)

    assert outcomes[0].startswith("conflict: ")
    assert outcomes[1].startswith("issued: ")
    assert outcomes[1].removeprefix("issued: ") in outcomes[0]
    assert repository.licenses_by_holder_code(HOLDER_OF_FIRST_RECORD).total == 1
    assert len(list(FileBlobStore(tmp_path / "blobs").iter_digests())) == 1


@pytest.mark.slow
def test_parallel_idempotent_issue_replays(
    database_url: str, repository: Repository, tmp_path: Path
) -> None:
    outcomes = _issue_in_parallel(database_url, tmp_path / "blobs", "request-1")

    assert outcomes[0].startswith("issued: ")
    assert outcomes[1].startswith("replayed: ")
    assert outcomes[0].split(": ")[1] == outcomes[1].split(": ")[1]
    assert repository.licenses_by_holder_code(HOLDER_OF_FIRST_RECORD).total == 1


def test_parallel_serials_unique_and_contiguous(database_url: str) -> None:
    workers, count = 4, 10
    manager = SPAWN.Manager()
    barrier = manager.Barrier(workers)
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=SPAWN) as pool:
            futures = [
                pool.submit(allocate_serials, database_url, ISSUER, count, barrier)
                for _ in range(workers)
            ]
            serials = [serial for future in futures for serial in future.result(120)]
    finally:
        manager.shutdown()

    assert sorted(serials) == [f"2025{n:07d}" for n in range(1, workers * count + 1)]
