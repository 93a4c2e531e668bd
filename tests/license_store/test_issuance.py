"""Issuing licenses with stand-in renderer and signer, on both backends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import TODAY
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from standins import StandInSigner

from common.codes import parse_elicense_id
from common.errors import ConflictError, InputError, NotFoundError, TrustError
from esign.qrtoken import TokenClaims, read_token
from license_store.blobs import FileBlobStore, sha256_hex
from license_store.issuance import IssuanceService
from license_store.models import LicenseStatus, Operation
from license_store.records import RecordLine, read_records
from license_store.repository import Repository

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
BUSINESS = SAMPLE[0]
INDIVIDUAL = next(
    r for r in SAMPLE if r["license_type"] == "individual_business_license"
)
FOOD = next(r for r in SAMPLE if r["license_type"] == "food_business_license")


def test_issue_stores_license_and_pdf(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    issued = service.issue(BUSINESS, operator="测试员")

    license = repository.get_license(issued.license_id)
    version = repository.get_version(issued.license_id, 1)
    assert license.serial == "20250000001"
    assert license.holder_code == BUSINESS["uscc"]
    assert license.holder_code_type == "001"
    assert license.status == LicenseStatus.VALID
    assert license.type_code == service.catalogue.get("business_license").catalogue_code
    assert version.elicense_id == issued.elicense_id
    assert version.valid_to is None
    assert version.record["term_to"] is None
    assert version.record["issued_on"] == BUSINESS["issued_on"]
    assert blobs.get(issued.pdf_sha256)[:5] == b"%PDF-"
    assert version.pdf_size == len(blobs.get(issued.pdf_sha256))


def test_issue_identifier_is_valid(service: IssuanceService) -> None:
    issued = service.issue(BUSINESS, operator="测试员")

    parsed = parse_elicense_id(issued.elicense_id)
    assert parsed.check_char_matches
    assert parsed.identifier.issuer_code == BUSINESS["authority_code"]
    assert parsed.identifier.serial == f"{TODAY.year}0000001"
    assert parsed.identifier.version == 1


def test_issued_pdf_signature_validates(
    service: IssuanceService, blobs: FileBlobStore, seal_signer: StandInSigner
) -> None:
    issued = service.issue(BUSINESS, operator="测试员")

    reader = PdfFileReader(io.BytesIO(blobs.get(issued.pdf_sha256)))
    context = ValidationContext(trust_roots=[seal_signer.certificate])
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.intact
    assert status.valid
    assert status.trusted


def test_issue_qr_token_claims(service: IssuanceService) -> None:
    tokens: list[str] = []
    make_qr_text = service.make_qr_text

    def record_token(claims: TokenClaims) -> str:
        tokens.append(make_qr_text(claims))
        return tokens[-1]

    service.make_qr_text = record_token
    issued = service.issue(BUSINESS, operator="测试员")

    claims = read_token(tokens[0]).claims
    assert claims.elicense_id == issued.elicense_id
    assert claims.holder_code == BUSINESS["uscc"]
    assert claims.version == 1
    assert claims.valid_to is None
    assert claims.issued_on.isoformat() == BUSINESS["issued_on"]


def test_issue_records_event(service: IssuanceService, repository: Repository) -> None:
    issued = service.issue(BUSINESS, operator="测试员", reason="新设登记")

    events = repository.events_of(issued.license_id)
    assert [e.operation for e in events] == [Operation.ISSUE]
    assert events[0].authority_code == BUSINESS["authority_code"]
    assert events[0].detail == {
        "elicense_id": issued.elicense_id,
        "pdf_sha256": issued.pdf_sha256,
    }
    assert events[0].reason == "新设登记"


@pytest.mark.parametrize("record", [INDIVIDUAL, FOOD], ids=["individual", "food"])
def test_issue_other_license_types(service: IssuanceService, record: dict) -> None:
    issued = service.issue(record, operator="测试员")

    license = service.repository.get_license(issued.license_id)
    assert license.license_type == record["license_type"]
    assert license.holder_code == record["uscc"]


def test_serials_continue_per_issuer(service: IssuanceService) -> None:
    same_issuer = [
        r for r in SAMPLE if r["authority_code"] == BUSINESS["authority_code"]
    ]
    serials = [
        parse_elicense_id(
            service.issue(r, operator="测试员").elicense_id
        ).identifier.serial
        for r in same_issuer[:3]
    ]

    assert serials == [f"2025{n:07d}" for n in range(1, len(serials) + 1)]


def test_duplicate_holder_rejected(service: IssuanceService) -> None:
    first = service.issue(BUSINESS, operator="测试员")

    with pytest.raises(ConflictError) as caught:
        service.issue(BUSINESS, operator="测试员")

    assert first.elicense_id in caught.value.message
    assert "有意新发" in str(caught.value)


def test_new_on_purpose_issues_again(service: IssuanceService) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    second = service.issue(BUSINESS, operator="测试员", new_on_purpose=True)

    assert second.license_id != first.license_id
    assert second.elicense_id != first.elicense_id


def test_idempotency_key_returns_first_result(
    service: IssuanceService, seal_signer: StandInSigner
) -> None:
    first = service.issue(BUSINESS, operator="测试员", idempotency_key="req-1")
    calls = seal_signer.calls
    again = service.issue(BUSINESS, operator="测试员", idempotency_key="req-1")

    assert again.replayed
    assert not first.replayed
    assert (again.license_id, again.elicense_id) == (
        first.license_id,
        first.elicense_id,
    )
    assert seal_signer.calls == calls


def test_idempotency_key_with_other_record(service: IssuanceService) -> None:
    service.issue(BUSINESS, operator="测试员", idempotency_key="req-1")
    changed = {**BUSINESS, "domicile": BUSINESS["domicile"] + "1号楼"}

    with pytest.raises(ConflictError, match="幂等键 req-1"):
        service.issue(changed, operator="测试员", idempotency_key="req-1")


def test_invalid_record_leaves_nothing(
    service: IssuanceService, repository: Repository, blobs: FileBlobStore
) -> None:
    bad = {**BUSINESS, "uscc": BUSINESS["uscc"][:-1] + "0"}

    with pytest.raises(InputError) as caught:
        service.issue(bad, operator="测试员")

    assert caught.value.field == "uscc"
    assert list(blobs.iter_digests()) == []
    assert repository.licenses_by_holder_code(BUSINESS["uscc"]).total == 0


def test_unknown_license_type_rejected(service: IssuanceService) -> None:
    with pytest.raises(InputError) as caught:
        service.issue({**BUSINESS, "license_type": "fishing_permit"}, operator="测试员")

    assert caught.value.field == "license_type"


def test_unknown_authority_rejected(service: IssuanceService) -> None:
    record = {**BUSINESS, "authority_code": "11150000MA00000000"}

    with pytest.raises((InputError, NotFoundError)):
        service.issue(record, operator="测试员")


def test_authority_name_must_match(service: IssuanceService) -> None:
    record = {**BUSINESS, "authority_name": "某某市场监督管理局"}

    with pytest.raises(InputError) as caught:
        service.issue(record, operator="测试员")

    assert caught.value.field == "authority_name"


def test_signing_failure_leaves_nothing(
    service: IssuanceService,
    repository: Repository,
    blobs: FileBlobStore,
    seal_signer: StandInSigner,
) -> None:
    seal_signer.fail_with = TrustError("印章证书已吊销")

    with pytest.raises(TrustError):
        service.issue(BUSINESS, operator="测试员")

    assert list(blobs.iter_digests()) == []
    assert repository.licenses_by_holder_code(BUSINESS["uscc"]).total == 0
    assert repository.next_serial(BUSINESS["authority_code"], 2025) == "20250000001"


def test_failed_commit_removes_blob(
    service: IssuanceService,
    repository: Repository,
    blobs: FileBlobStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ConflictError("模拟写入事件失败")

    monkeypatch.setattr(repository, "record_event", fail)

    with pytest.raises(ConflictError):
        service.issue(BUSINESS, operator="测试员")

    assert list(blobs.iter_digests()) == []
    assert repository.licenses_by_holder_code(BUSINESS["uscc"]).total == 0


def test_reissue_adds_version(service: IssuanceService, repository: Repository) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    amended = {**BUSINESS, "domicile": BUSINESS["domicile"] + "2号楼"}

    second = service.reissue(
        first.license_id,
        amended,
        expected_version=1,
        operation=Operation.AMEND,
        operator="测试员",
        reason="住所变更",
    )

    assert second.version == 2
    assert parse_elicense_id(second.elicense_id).identifier.version == 2
    assert second.elicense_id.split(".")[:-2] == first.elicense_id.split(".")[:-2]
    assert (
        repository.get_version(first.license_id, 2).record["domicile"].endswith("2号楼")
    )
    operations = [e.operation for e in repository.events_of(first.license_id)]
    assert operations == [Operation.ISSUE, Operation.AMEND]


def test_reissue_stale_version_conflicts(
    service: IssuanceService, blobs: FileBlobStore
) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    service.reissue(
        first.license_id,
        BUSINESS,
        expected_version=1,
        operation=Operation.RENEW,
        operator="测试员",
    )
    stored = set(blobs.iter_digests())

    with pytest.raises(ConflictError, match="当前版本已是 2"):
        service.reissue(
            first.license_id,
            BUSINESS,
            expected_version=1,
            operation=Operation.RENEW,
            operator="测试员",
        )

    assert set(blobs.iter_digests()) == stored


def test_reissue_rejects_other_holder(service: IssuanceService) -> None:
    first = service.issue(BUSINESS, operator="测试员")
    other = next(
        r
        for r in SAMPLE[1:]
        if r["license_type"] == "business_license"
        and r["authority_code"] == BUSINESS["authority_code"]
    )

    with pytest.raises(InputError) as caught:
        service.reissue(
            first.license_id,
            other,
            expected_version=1,
            operation=Operation.AMEND,
            operator="测试员",
        )

    assert caught.value.field == "uscc"


def test_reissue_rejects_status_operation(service: IssuanceService) -> None:
    first = service.issue(BUSINESS, operator="测试员")

    with pytest.raises(InputError):
        service.reissue(
            first.license_id,
            BUSINESS,
            expected_version=1,
            operation=Operation.REVOKE,
            operator="测试员",
        )


def test_batch_keeps_going(service: IssuanceService, tmp_path: Path) -> None:
    bad = {**BUSINESS, "uscc": "91150000000000000X"}
    lines = [
        RecordLine(1, raw=SAMPLE[0]),
        RecordLine(
            2, error=InputError("第 2 行不是有效的 JSON", field="line", value=2)
        ),
        RecordLine(3, raw=bad),
        RecordLine(4, raw=SAMPLE[1]),
        RecordLine(5, raw=SAMPLE[0]),
    ]

    summary = service.issue_batch(lines, operator="测试员", out_dir=tmp_path / "out")

    assert len(summary.issued) == 2
    assert [r.line_no for r in summary.rejected] == [2, 3, 5]
    assert summary.rejected[1].field == "uscc"
    assert summary.rejected[1].value == "91150000000000000X"
    assert "已有有效的" in summary.rejected[2].message
    assert summary.elapsed_seconds > 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{i.elicense_id}.pdf" for i in summary.issued)
    for issued in summary.issued:
        data = (tmp_path / "out" / f"{issued.elicense_id}.pdf").read_bytes()
        assert sha256_hex(data) == issued.pdf_sha256


@pytest.mark.slow
def test_batch_csv_after_jsonl_rejects_duplicates(service: IssuanceService) -> None:
    jsonl = service.issue_batch(
        read_records(EXAMPLES / "licenses-sample.jsonl"), operator="测试员"
    )
    csv = service.issue_batch(
        read_records(EXAMPLES / "business-licenses-legacy.csv"), operator="测试员"
    )

    # Records dated after today are rejected where templates check issue dates.
    late = [r for r in jsonl.rejected if r.field == "issued_on"]
    assert len(jsonl.issued) + len(late) == 200
    assert len(jsonl.rejected) == len(late)
    assert csv.issued == []
    assert len(csv.rejected) == 60
    duplicates = [r for r in csv.rejected if "已有有效的营业执照" in r.message]
    assert all(r.field == "issued_on" for r in csv.rejected if r not in duplicates)
    assert len(duplicates) >= 60 - len(late)
