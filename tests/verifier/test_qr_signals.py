"""Colours and wording of the QR result for each register state."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esign.certificates import to_asn1
from esign.qrtoken import TokenClaims, TokenSigner, sign_token
from verifier.qr_check import QrVerifier, Signal
from verifier.trustlist import RecognisedCA, StatusChange, TrustList
from verifier.verdict import LicenseFacts

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
ELICENSE_ID = (
    "1.2.156.3005.2.11150000MA7XQ0CB8J001.11150302MAA84RGA15.20260000001.001.V"
)


def _self_signed() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "测试二维码签名")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=365))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


class FakeRegister:
    def __init__(self, facts: LicenseFacts | None) -> None:
        self.facts = facts

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        return None

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        return self.facts


@pytest.fixture(scope="module")
def signed():
    certificate, key = _self_signed()
    claims = TokenClaims(
        ELICENSE_ID, "91150302MA0N000000", dt.date(2026, 1, 5), None, 1
    )
    token = sign_token(claims, TokenSigner(certificate, key))
    ca = RecognisedCA(
        id="test",
        name="测试 CA",
        region="150000",
        department="市场监督管理",
        certificates=(to_asn1(certificate),),
        token_signers=(to_asn1(certificate),),
        history=(StatusChange("recognised", NOW - dt.timedelta(days=30)),),
    )
    return token, TrustList(cas=[ca])


def _facts(status: str, label: str, current: int = 1, **extra) -> LicenseFacts:
    return LicenseFacts(
        elicense_id=ELICENSE_ID,
        version=1,
        register_status=status,
        register_status_label=label,
        current_version=current,
        current_elicense_id=ELICENSE_ID[:-5] + f"{current:03d}.X",
        **extra,
    )


def _verify(signed, facts):
    token, trust = signed
    return QrVerifier(trust, FakeRegister(facts)).verify(token, now=NOW)


def test_current_version_is_green(signed):
    result = _verify(signed, _facts("01", "有效"))
    assert result.signal is Signal.GREEN
    assert result.headline == "证照真实有效"


def test_superseded_version_is_amber_naming_current(signed):
    result = _verify(signed, _facts("01", "有效", current=2))
    assert result.signal is Signal.AMBER
    assert "第 002 版" in result.headline
    assert ELICENSE_ID[:-5] + "002.X" in result.reasons[0]


def test_suspended_is_amber_with_date(signed):
    result = _verify(signed, _facts("02", "暂扣", status_changed_at="2026-05-20 10:00"))
    assert result.signal is Signal.AMBER
    assert "暂扣" in result.headline
    assert "2026-05-20 10:00" in result.reasons[0]


@pytest.mark.parametrize(
    ("status", "label"), [("07", "吊销"), ("03", "撤销"), ("04", "注销")]
)
def test_ended_license_is_red_with_date(signed, status, label):
    result = _verify(
        signed, _facts(status, label, status_changed_at="2026-05-21 09:30")
    )
    assert result.signal is Signal.RED
    assert label in result.headline
    assert "2026-05-21 09:30" in result.reasons[0]


def test_unregistered_token_is_red(signed):
    result = _verify(signed, None)
    assert result.signal is Signal.RED
    assert "未登记" in result.reasons[0]


def test_withdrawn_ca_token_is_red(signed):
    token, trust = signed
    ca = trust.cas[0]
    withdrawn = StatusChange("withdrawn", NOW - dt.timedelta(days=1), "停止互认")
    trust = TrustList(
        cas=[RecognisedCA(**{**ca.__dict__, "history": (*ca.history, withdrawn)})]
    )
    result = QrVerifier(trust, FakeRegister(_facts("01", "有效"))).verify(
        token, now=NOW
    )
    assert result.signal is Signal.RED
    assert "不在互认范围内" in result.reasons[0]


def test_remembered_token_signer_removed(signed):
    # The verifier remembers tokens it has verified; removing the signer
    # certificate from the trust list must still turn the next scan red.
    token, trust = signed
    verifier = QrVerifier(trust, FakeRegister(_facts("01", "有效")))
    assert verifier.verify(token, now=NOW).signal is Signal.GREEN

    ca = trust.cas[0]
    other_certificate, _key = _self_signed()
    verifier.trust = TrustList(
        cas=[RecognisedCA(**{**ca.__dict__, "token_signers": (to_asn1(other_certificate),)})]
    )
    result = verifier.verify(token, now=NOW)

    assert result.signal is Signal.RED
    assert not result.token_authentic


def test_remembered_token_ca_withdrawn(signed):
    token, trust = signed
    verifier = QrVerifier(trust, FakeRegister(_facts("01", "有效")))
    assert verifier.verify(token, now=NOW).signal is Signal.GREEN

    ca = trust.cas[0]
    withdrawn = StatusChange("withdrawn", NOW - dt.timedelta(days=1), "停止互认")
    verifier.trust = TrustList(
        cas=[RecognisedCA(**{**ca.__dict__, "history": (*ca.history, withdrawn)})]
    )

    assert verifier.verify(token, now=NOW).signal is Signal.RED
