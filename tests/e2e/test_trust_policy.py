"""Withdrawal times and signing scopes of recognised CAs decide the verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import IssuedSet
from verifier.pdf_check import PdfVerifier
from verifier.trustlist import StatusChange, TrustList


@pytest.fixture(scope="module")
def business_pdf(issued: IssuedSet) -> bytes:
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    path = next(p for p in issued.pdfs if record["authority_code"] in p.name)
    return path.read_bytes()


@pytest.fixture(scope="module")
def signed_at(service_context, business_pdf) -> datetime:
    verdict = service_context.verify_pdf_sync(business_pdf, offline=True)
    assert verdict.signer is not None and verdict.signer.timestamp_time
    return datetime.fromisoformat(verdict.signer.timestamp_time)


def _verify_with(issued: IssuedSet, data: bytes, change) -> object:
    trust = TrustList.load(issued.data_dir / "trust", issued.data_dir / "pki" / "crl")
    trust.cas = [change(ca) for ca in trust.cas]
    return PdfVerifier(trust).verify(data)


def _withdrawn_at(moment: datetime):
    def change(ca):
        withdrawal = StatusChange("withdrawn", moment, "密钥管理不合规")
        return replace(ca, history=(*ca.history, withdrawal))

    return change


def test_withdrawal_after_signature_keeps_valid(issued, business_pdf, signed_at):
    later = signed_at + timedelta(minutes=1)
    verdict = _verify_with(issued, business_pdf, _withdrawn_at(later))
    assert verdict.outcome.value == "valid", verdict.reasons


def test_withdrawal_before_signature_invalid(issued, business_pdf, signed_at):
    earlier = signed_at - timedelta(minutes=1)
    verdict = _verify_with(issued, business_pdf, _withdrawn_at(earlier))
    assert verdict.outcome.value == "invalid"
    trust_step = verdict.step("trust")
    assert trust_step.status.value == "failed"
    assert "撤销互认" in trust_step.reasons[0]
    assert "密钥管理不合规" in trust_step.reasons[0]


def test_scope_other_license_type_invalid(issued, business_pdf):
    verdict = _verify_with(
        issued,
        business_pdf,
        lambda ca: replace(ca, license_types=("food_business_license",)),
    )
    assert verdict.outcome.value == "invalid"
    seal_step = verdict.step("seal")
    assert seal_step.status.value == "failed"
    assert "未被授权" in seal_step.reasons[0]
    assert "business_license" in seal_step.reasons[0]


def test_scope_other_issuer_prefix_invalid(issued, business_pdf):
    verdict = _verify_with(
        issued, business_pdf, lambda ca: replace(ca, issuer_codes=("11150600",))
    )
    assert verdict.outcome.value == "invalid"
    assert "未被授权" in verdict.step("seal").reasons[0]


def test_scope_matching_prefix_valid(issued, business_pdf):
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    prefix = record["authority_code"][:8]
    verdict = _verify_with(
        issued,
        business_pdf,
        lambda ca: replace(
            ca, license_types=("business_license",), issuer_codes=(prefix,)
        ),
    )
    assert verdict.outcome.value == "valid", verdict.reasons


def _revoked_copy(issued: IssuedSet, tmp_path, authority: str, revoked_at: datetime):
    """Copy the PKI and trust list, then revoke one seal as of ``revoked_at``."""
    import shutil

    from cryptography import x509

    from esign.pki import DevPki
    from esign.revocation import revoke_certificate

    copy = tmp_path / "data"
    for part in ("pki", "trust", "secrets"):
        shutil.copytree(issued.data_dir / part, copy / part)
    passphrase = (copy / "secrets" / "key-passphrase").read_text().strip().encode()
    pki = DevPki(copy, passphrase, "http://127.0.0.1:8765")
    seal = x509.load_pem_x509_certificate(
        pki.seal_dir(authority).joinpath("seal.pem").read_bytes()
    )
    revoke_certificate(
        pki, seal, revoked_at=revoked_at, reason=x509.ReasonFlags.key_compromise
    )
    return TrustList.load(copy / "trust", copy / "pki" / "crl")


def _authority(issued: IssuedSet) -> str:
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    return record["authority_code"]


def test_seal_revoked_before_signature_invalid(
    issued, business_pdf, signed_at, tmp_path
):
    trust = _revoked_copy(
        issued, tmp_path, _authority(issued), signed_at - timedelta(minutes=5)
    )
    verdict = PdfVerifier(trust).verify(business_pdf)
    assert verdict.outcome.value == "invalid"
    trust_step = verdict.step("trust")
    assert trust_step.status.value == "failed"
    assert "吊销" in trust_step.reasons[0]


def test_seal_revoked_after_signature_valid(issued, business_pdf, signed_at, tmp_path):
    trust = _revoked_copy(
        issued, tmp_path, _authority(issued), signed_at + timedelta(minutes=5)
    )
    verdict = PdfVerifier(trust).verify(business_pdf)
    assert verdict.outcome.value == "valid", verdict.reasons
