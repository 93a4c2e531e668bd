"""No register transaction stays open while a PDF is rendered or signed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from standins import StandInSigner

from common.errors import ConflictError, TrustError
from license_store.blobs import FileBlobStore
from license_store.db import create_engine_for
from license_store.issuance import IssuanceService
from license_store.models import Operation
from license_store.repository import Repository, StaleVersionError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
BUSINESS = SAMPLE[0]
OTHER_ISSUER = next(
    r for r in SAMPLE if r["authority_code"] != BUSINESS["authority_code"]
)


class WritingSigner:
    """Signer that lets another connection write while it signs."""

    def __init__(self, inner: StandInSigner, database_url: str) -> None:
        self.inner = inner
        self.database_url = database_url
        self.serials: list[str] = []

    def sign(self, pdf: bytes, *, seal_box: object = None) -> bytes:
        thread = threading.Thread(target=self._write)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "a write waited for the issuing transaction"
        return self.inner.sign(pdf, seal_box=seal_box)

    def _write(self) -> None:
        engine = create_engine_for(self.database_url)
        try:
            self.serials.append(
                Repository(engine).next_serial(OTHER_ISSUER["authority_code"], 2025)
            )
        finally:
            engine.dispose()


def test_other_writer_runs_during_signing(
    service: IssuanceService, database_url: str, seal_signer: StandInSigner
) -> None:
    signer = WritingSigner(seal_signer, database_url)
    service.signer_for = lambda authority_code: signer

    issued = service.issue(BUSINESS, operator="测试员")

    assert issued.version == 1
    assert signer.serials == ["20250000001"]


def test_reissue_lets_others_write_while_signing(
    service: IssuanceService, database_url: str, seal_signer: StandInSigner
) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    signer = WritingSigner(seal_signer, database_url)
    service.signer_for = lambda authority_code: signer

    second = service.reissue(
        first.license_id,
        BUSINESS,
        expected_version=1,
        operation=Operation.REPLACE,
        operator="测试员",
    )

    assert second.version == 2
    assert signer.serials == ["20250000001"]


def test_reissue_race_lost_at_insert(
    service: IssuanceService,
    repository: Repository,
    blobs: FileBlobStore,
    seal_signer: StandInSigner,
) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    stored = set(blobs.iter_digests())

    class RacingSigner:
        """Signer during whose work another clerk's version commits."""

        def sign(self, pdf: bytes, *, seal_box: object = None) -> bytes:
            service.signer_for = lambda authority_code: seal_signer
            service.reissue(
                first.license_id,
                BUSINESS,
                expected_version=1,
                operation=Operation.AMEND,
                operator="另一位测试员",
            )
            return seal_signer.sign(pdf, seal_box=seal_box)

    service.signer_for = lambda authority_code: RacingSigner()

    with pytest.raises(StaleVersionError) as caught:
        service.reissue(
            first.license_id,
            BUSINESS,
            expected_version=1,
            operation=Operation.AMEND,
            operator="测试员",
        )

    assert caught.value.current_version == 2
    assert caught.value.as_dict()["current_version"] == 2
    assert "基于版本 2 再提交" in str(caught.value)
    assert [v.version for v in repository.versions_of(first.license_id)] == [1, 2]
    assert len(set(blobs.iter_digests()) - stored) == 1


def test_duplicate_race_lost_at_insert(
    service: IssuanceService,
    repository: Repository,
    blobs: FileBlobStore,
    seal_signer: StandInSigner,
) -> None:
    class RacingSigner:
        """Signer during whose work the same holder's license commits."""

        def __init__(self) -> None:
            self.winner: str | None = None

        def sign(self, pdf: bytes, *, seal_box: object = None) -> bytes:
            service.signer_for = lambda authority_code: seal_signer
            self.winner = service.issue(BUSINESS, operator="另一位测试员").elicense_id
            return seal_signer.sign(pdf, seal_box=seal_box)

    racing = RacingSigner()
    service.signer_for = lambda authority_code: racing

    with pytest.raises(ConflictError) as caught:
        service.issue(BUSINESS, operator="测试员")

    assert racing.winner is not None
    assert racing.winner in caught.value.message
    assert repository.licenses_by_holder_code(BUSINESS["uscc"]).total == 1
    assert len(list(blobs.iter_digests())) == 1


def test_idempotent_race_lost_at_insert_replays(
    service: IssuanceService, blobs: FileBlobStore, seal_signer: StandInSigner
) -> None:
    class RacingSigner:
        def __init__(self) -> None:
            self.winner: str | None = None

        def sign(self, pdf: bytes, *, seal_box: object = None) -> bytes:
            service.signer_for = lambda authority_code: seal_signer
            self.winner = service.issue(
                BUSINESS, operator="测试员", idempotency_key="req-9"
            ).elicense_id
            return seal_signer.sign(pdf, seal_box=seal_box)

    racing = RacingSigner()
    service.signer_for = lambda authority_code: racing

    again = service.issue(BUSINESS, operator="测试员", idempotency_key="req-9")

    assert again.replayed
    assert again.elicense_id == racing.winner
    assert len(list(blobs.iter_digests())) == 1


def test_failed_signing_returns_serial(
    service: IssuanceService, repository: Repository, seal_signer: StandInSigner
) -> None:
    seal_signer.fail_with = TrustError("印章证书已吊销")
    with pytest.raises(TrustError):
        service.issue(BUSINESS, operator="测试员")
    seal_signer.fail_with = None

    issued = service.issue(BUSINESS, operator="测试员")

    assert repository.get_license(issued.license_id).serial == "20250000001"


class SlowSigner:
    """Signer that takes a fixed time, like a hardware token or a remote TSA."""

    def __init__(self, inner: StandInSigner, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds

    def sign(self, pdf: bytes, *, seal_box: object = None) -> bytes:
        import time

        time.sleep(self.seconds)
        return self.inner.sign(pdf, seal_box=seal_box)


def test_parallel_issues_overlap_signing(
    service: IssuanceService, seal_signer: StandInSigner
) -> None:
    import time

    service.signer_for = lambda authority_code: SlowSigner(seal_signer, 1.0)
    errors: list[BaseException] = []

    def issue(record: dict) -> None:
        try:
            service.issue(record, operator="测试员")
        except BaseException as error:  # reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=issue, args=(r,)) for r in SAMPLE[1:3]]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    assert errors == []
    assert elapsed < 1.8, f"two 1-second signatures took {elapsed:.2f} s in all"
