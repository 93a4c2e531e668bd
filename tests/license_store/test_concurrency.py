"""Parallel processes adding versions to one license, on both backends."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from factories import ISSUER, license_create, version_create
from workers import add_version_once, add_versions_repeatedly

from license_store.repository import Repository

SPAWN = multiprocessing.get_context("spawn")


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
