"""Functions that run in child processes for the concurrency tests."""

from __future__ import annotations

import datetime as dt
import multiprocessing.synchronize

from factories import version_create
from standins import StandInSigner, render_stand_in

from common.authority import AuthorityRegistry
from common.errors import ConflictError
from license_store.blobs import FileBlobStore
from license_store.db import create_engine_for
from license_store.issuance import IssuanceService
from license_store.repository import Repository
from templates import load_catalogue


def add_version_once(
    database_url: str,
    license_id: int,
    expected_version: int,
    content: bytes,
    barrier: multiprocessing.synchronize.Barrier,
) -> str:
    """Add a version after all workers reach the barrier; return the outcome."""
    engine = create_engine_for(database_url)
    try:
        repository = Repository(engine)
        barrier.wait(timeout=30)
        try:
            added = repository.add_version(
                license_id, version_create(content), expected_version=expected_version
            )
        except ConflictError as error:
            return f"conflict: {error.message}"
        return f"won: {added.version}"
    finally:
        engine.dispose()


def add_versions_repeatedly(
    database_url: str,
    license_id: int,
    worker: int,
    attempts: int,
    barrier: multiprocessing.synchronize.Barrier,
) -> list[int]:
    """Read the current version and add the next one, ``attempts`` times."""
    engine = create_engine_for(database_url)
    won: list[int] = []
    try:
        repository = Repository(engine)
        barrier.wait(timeout=30)
        for attempt in range(attempts):
            current = repository.get_license(license_id).current_version
            content = f"worker {worker} attempt {attempt}".encode()
            try:
                added = repository.add_version(
                    license_id, version_create(content), expected_version=current
                )
            except ConflictError:
                continue
            won.append(added.version)
        return won
    finally:
        engine.dispose()


def issue_once(
    database_url: str,
    blob_root: str,
    record: dict,
    idempotency_key: str | None,
    barrier: multiprocessing.synchronize.Barrier,
) -> str:
    """Issue ``record`` after all workers reach the barrier; return the outcome."""
    engine = create_engine_for(database_url)
    try:
        service = IssuanceService(
            Repository(engine),
            FileBlobStore(blob_root),
            catalogue=load_catalogue(),
            authorities=AuthorityRegistry.load(),
            signer_for=lambda authority_code: StandInSigner(),
            make_qr_text=lambda claims: f"QR {claims.elicense_id}",
            render=render_stand_in,
            today=lambda: dt.date(2025, 3, 1),
        )
        barrier.wait(timeout=30)
        try:
            issued = service.issue(
                record, operator="测试员", idempotency_key=idempotency_key
            )
        except ConflictError as error:
            return f"conflict: {error.message}"
        state = "replayed" if issued.replayed else "issued"
        return f"{state}: {issued.elicense_id}"
    finally:
        engine.dispose()


def allocate_serials(
    database_url: str,
    issuer_code: str,
    count: int,
    barrier: multiprocessing.synchronize.Barrier,
) -> list[str]:
    """Allocate ``count`` serials, each in a transaction of its own."""
    engine = create_engine_for(database_url)
    try:
        repository = Repository(engine)
        barrier.wait(timeout=30)
        return [repository.next_serial(issuer_code, 2025) for _ in range(count)]
    finally:
        engine.dispose()
