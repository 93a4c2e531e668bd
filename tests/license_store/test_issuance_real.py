"""Issuing through the real renderer (templates) and seal signer (esign).

The development PKI is created once per session for the authorities of the
records. Signatures are at level B-T with the in-process timestamp authority,
so no network is needed.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from common.authority import AuthorityRegistry
from esign.pki import DevPki, ensure_dev_pki
from esign.qrtoken import TokenClaims, read_token, sign_token, verify_token
from esign.seal_artwork import VectorSeal
from esign.signing import LicenseSigner, SignatureLevel
from license_store.blobs import FileBlobStore
from license_store.issuance import IssuanceService, TemplateRenderer
from license_store.repository import Repository
from templates import load_catalogue

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
RECORDS = [
    SAMPLE[0],
    next(r for r in SAMPLE if r["license_type"] == "individual_business_license"),
    next(r for r in SAMPLE if r["license_type"] == "food_business_license"),
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    registry = AuthorityRegistry.load()
    codes = {record["authority_code"] for record in RECORDS}
    return ensure_dev_pki(
        tmp_path_factory.mktemp("pki"),
        [registry.get(code) for code in sorted(codes)],
        base_url="http://127.0.0.1:9/",
        passphrase=b"test passphrase for the throwaway PKI",
    )


@pytest.fixture
def real_service(
    repository: Repository, blobs: FileBlobStore, dev_pki: DevPki
) -> IssuanceService:
    registry = AuthorityRegistry.load()
    timestamper = dev_pki.load_timestamper()
    token_signer = dev_pki.load_token_signer()
    signers: dict[str, LicenseSigner] = {}

    def signer_for(authority_code: str) -> LicenseSigner:
        if authority_code not in signers:
            signers[authority_code] = LicenseSigner(
                dev_pki.load_seal(authority_code),
                level=SignatureLevel.B_T,
                timestamper=timestamper,
            )
        return signers[authority_code]

    def seal_artwork_for(authority_code: str) -> VectorSeal:
        return VectorSeal(authority_name=registry.get(authority_code).name)

    return IssuanceService(
        repository,
        blobs,
        catalogue=load_catalogue(),
        authorities=registry,
        signer_for=signer_for,
        make_qr_text=lambda claims: sign_token(claims, token_signer),
        render=TemplateRenderer(seal_artwork_for),
        today=lambda: dt.date(2025, 3, 1),
    )


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r["license_type"])
def test_real_issue_signature_validates(
    real_service: IssuanceService,
    blobs: FileBlobStore,
    dev_pki: DevPki,
    record: dict,
) -> None:
    issued = real_service.issue(record, operator="测试员")

    reader = PdfFileReader(io.BytesIO(blobs.get(issued.pdf_sha256)))
    context = ValidationContext(
        trust_roots=dev_pki.trust_roots(),
        other_certs=dev_pki.ca_certificates(),
        crls=dev_pki.crls(),
    )
    status = validate_pdf_signature(reader.embedded_signatures[0], context)
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.timestamp_validity is not None


def test_real_issue_qr_token_verifies(
    real_service: IssuanceService, dev_pki: DevPki
) -> None:
    tokens: list[str] = []
    make_qr_text = real_service.make_qr_text

    def keep_token(claims: TokenClaims) -> str:
        tokens.append(make_qr_text(claims))
        return tokens[-1]

    real_service.make_qr_text = keep_token
    issued = real_service.issue(RECORDS[0], operator="测试员")

    verified = verify_token(tokens[0], [dev_pki.load_token_signer().certificate])
    assert verified.elicense_id == issued.elicense_id
    assert verified.version == 1
    assert read_token(tokens[0]).claims == verified
