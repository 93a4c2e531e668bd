"""PAdES signing at every level, checked by pyhanko and by poppler's pdfsig."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta

import pytest
from conftest import PASSPHRASE, PKI_CREATED_AT, SIGNED_AT
from cryptography import x509
from esign_tools import closed_port_url, run_pdfsig
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    SignatureCoverageLevel,
    ValidationContext,
    validate_pdf_signature,
    validate_pdf_timestamp,
)

from common.authority import Authority
from common.errors import InputError, TrustError
from esign.pki import DevPki, ensure_dev_pki
from esign.revocation import revoke_certificate
from esign.signing import LicenseSigner, SealBox, SignatureLevel
from esign.timestamps import HttpTimeStamper, TimestampUnavailableError

ALL_LEVELS = list(SignatureLevel)


def _strict_context(dev_pki: DevPki, **overrides: object) -> ValidationContext:
    """Validation with supplied CRLs only: no fetching, revocation required."""
    settings: dict[str, object] = {
        "trust_roots": dev_pki.trust_roots(),
        "other_certs": dev_pki.ca_certificates(),
        "crls": dev_pki.crls(PKI_CREATED_AT),
        "allow_fetching": False,
        "revocation_mode": "hard-fail",
        "moment": SIGNED_AT,
    }
    settings.update(overrides)
    return ValidationContext(**settings)


def _signature(pdf: bytes):
    reader = PdfFileReader(io.BytesIO(pdf))
    return reader.embedded_regular_signatures[0]


@pytest.fixture(scope="module")
def signed(license_signers, sample_pdf) -> dict[SignatureLevel, bytes]:
    return {level: signer.sign(sample_pdf) for level, signer in license_signers.items()}


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_signature_valid_with_pyhanko(level, signed, dev_pki):
    status = validate_pdf_signature(_signature(signed[level]), _strict_context(dev_pki))

    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.docmdp_ok
    assert status.bottom_line
    assert status.md_algorithm == "sha256"
    if level is SignatureLevel.B_LTA:
        # The document timestamp revision follows the signed revision.
        assert status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
    else:
        assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_signature_is_certification_no_changes(level, signed):
    signature = _signature(signed[level])

    assert signature.docmdp_level == MDPPerm.NO_CHANGES
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_signature_timestamp_presence(level, signed, dev_pki):
    status = validate_pdf_signature(_signature(signed[level]), _strict_context(dev_pki))

    if level is SignatureLevel.B_B:
        assert status.timestamp_validity is None
    else:
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.trusted
        assert status.timestamp_validity.timestamp == SIGNED_AT


def test_b_lt_validates_from_embedded_data_only(signed, dev_pki):
    pdf = signed[SignatureLevel.B_LT]
    reader = PdfFileReader(io.BytesIO(pdf))
    dss = DocumentSecurityStore.read_dss(reader)
    context = dss.as_validation_context(
        {
            "trust_roots": dev_pki.trust_roots(),
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
            "moment": SIGNED_AT,
        }
    )

    status = validate_pdf_signature(reader.embedded_regular_signatures[0], context)

    assert status.trusted
    assert len(dss.crls) == 2  # root CA CRL and issuing CA CRL


def test_b_t_without_crls_not_trusted_offline(signed, dev_pki):
    context = _strict_context(dev_pki, crls=[])

    status = validate_pdf_signature(_signature(signed[SignatureLevel.B_T]), context)

    assert status.intact
    assert not status.trusted


def test_b_lt_dss_in_signed_revision(signed):
    reader = PdfFileReader(io.BytesIO(signed[SignatureLevel.B_LT]))

    assert reader.total_revisions == 2  # original + signed revision
    assert "/DSS" in reader.root


def test_b_lta_document_timestamp_valid(signed, dev_pki):
    reader = PdfFileReader(io.BytesIO(signed[SignatureLevel.B_LTA]))
    timestamps = reader.embedded_timestamp_signatures

    assert len(timestamps) == 1
    status = validate_pdf_timestamp(timestamps[0], _strict_context(dev_pki))
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_flipped_byte_fails_pyhanko(level, signed, dev_pki):
    tampered = _flip_byte_in_signed_range(signed[level])

    status = validate_pdf_signature(_signature(tampered), _strict_context(dev_pki))

    assert not status.intact
    assert not status.bottom_line


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_signature_valid_with_pdfsig(level, signed, nss_db, tmp_path):
    path = tmp_path / f"{level}.pdf"
    path.write_bytes(signed[level])

    report = run_pdfsig(nss_db, path)
    seal_report = report.split("Signature #2")[0]

    assert "Signature is Valid" in seal_report
    assert "Certificate is Trusted" in seal_report
    assert "内蒙古自治区市场监督管理局" in seal_report
    assert "ETSI.CAdES.detached" in seal_report
    if level is SignatureLevel.B_LTA:
        # pdfsig does not check document timestamps, and the timestamp
        # revision after the seal makes the seal cover one revision.
        assert "Not total document signed" in seal_report
    else:
        assert "Total document signed" in seal_report


@pytest.mark.parametrize("level", [SignatureLevel.B_B, SignatureLevel.B_LT])
def test_flipped_byte_fails_pdfsig(level, signed, nss_db, tmp_path):
    path = tmp_path / "tampered.pdf"
    path.write_bytes(_flip_byte_in_signed_range(signed[level]))

    report = run_pdfsig(nss_db, path)

    assert "Signature is Valid" not in report
    assert "Digest Mismatch" in report or "Invalid" in report


def test_signer_reused_for_many_documents(license_signers, sample_pdf, dev_pki):
    signer = license_signers[SignatureLevel.B_LT]

    first = signer.sign(sample_pdf)
    second = signer.sign(sample_pdf)

    assert first != second  # fresh timestamps and signatures
    for pdf in (first, second):
        assert validate_pdf_signature(_signature(pdf), _strict_context(dev_pki)).trusted


def test_async_sign_inside_event_loop(license_signers, sample_pdf, dev_pki):
    signer = license_signers[SignatureLevel.B_LT]

    async def sign_two() -> list[bytes]:
        return list(
            await asyncio.gather(
                signer.async_sign(sample_pdf), signer.async_sign(sample_pdf)
            )
        )

    for pdf in asyncio.run(sign_two()):
        assert validate_pdf_signature(_signature(pdf), _strict_context(dev_pki)).trusted


def test_visible_field_on_seal_box(license_signers, sample_pdf, dev_pki):
    box = SealBox(page_index=0, rect=(390.0, 90.0, 510.0, 210.0))

    pdf = license_signers[SignatureLevel.B_T].sign(sample_pdf, seal_box=box)

    signature = _signature(pdf)
    widget = (
        signature.sig_field["/Kids"][0]
        if "/Kids" in signature.sig_field
        else (signature.sig_field)
    )
    assert [float(value) for value in widget["/Rect"]] == list(box.rect)
    assert validate_pdf_signature(signature, _strict_context(dev_pki)).trusted


def test_invisible_field_without_seal_box(signed):
    field = _signature(signed[SignatureLevel.B_B]).sig_field

    assert [float(value) for value in field["/Rect"]] == [0.0, 0.0, 0.0, 0.0]


def test_not_a_pdf_rejected(license_signers):
    with pytest.raises(InputError) as caught:
        license_signers[SignatureLevel.B_B].sign(b"%PDF-1.7\nnot really a pdf")

    assert caught.value.field == "pdf"


def test_already_certified_pdf_rejected(signed, license_signers):
    with pytest.raises(InputError) as caught:
        license_signers[SignatureLevel.B_B].sign(signed[SignatureLevel.B_B])

    assert "已含 1 个签名" in caught.value.message


def test_signing_time_from_clock(signed):
    signature = _signature(signed[SignatureLevel.B_B])

    assert signature.self_reported_timestamp == SIGNED_AT


def test_timestamp_authority_down_raises(
    dev_pki, authorities, validation_data, sample_pdf
):
    url = closed_port_url("/pki/tsa")
    timestamper = HttpTimeStamper(url, timeout_seconds=2)
    signer = LicenseSigner(
        dev_pki.load_seal(authorities[0].code),
        level=SignatureLevel.B_T,
        timestamper=timestamper,
        validation_data=validation_data,
        clock=lambda: SIGNED_AT,
    )

    with pytest.raises(TimestampUnavailableError) as caught:
        signer.sign(sample_pdf)

    assert url in caught.value.message
    assert caught.value.fix


def test_http_timestamper_against_local_tsa(
    dev_pki, authorities, validation_data, sample_pdf, pki_server
):
    timestamper = HttpTimeStamper(f"{pki_server.base_url}/pki/tsa", timeout_seconds=5)
    signer = LicenseSigner(
        dev_pki.load_seal(authorities[0].code),
        level=SignatureLevel.B_LT,
        timestamper=timestamper,
        validation_data=validation_data,
        clock=lambda: SIGNED_AT,
    )

    pdf = signer.sign(sample_pdf)

    status = validate_pdf_signature(_signature(pdf), _strict_context(dev_pki))
    assert status.trusted
    assert status.timestamp_validity.trusted


def _sign_with_copy(pki: DevPki, authority: Authority, pdf: bytes) -> bytes:
    signer = LicenseSigner(
        pki.load_seal(authority.code),
        level=SignatureLevel.B_LT,
        timestamper=pki.load_timestamper(clock=lambda: SIGNED_AT),
        validation_data=pki.validation_data(PKI_CREATED_AT),
        clock=lambda: SIGNED_AT,
    )
    return signer.sign(pdf)


def _seal_certificate(pki: DevPki, authority: Authority) -> x509.Certificate:
    pem = (pki.seal_dir(authority.code) / "seal.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


@pytest.mark.parametrize(
    ("revoked_after_signing", "expect_trusted"),
    [(timedelta(days=1), True), (timedelta(hours=-1), False)],
    ids=["revoked-after-signing", "revoked-before-signing"],
)
def test_revocation_relative_to_signing_time(
    pki_copy, authorities, sample_pdf, revoked_after_signing, expect_trusted
):
    authority = authorities[1]
    pdf = _sign_with_copy(pki_copy, authority, sample_pdf)
    signing_time = SIGNED_AT  # the signature timestamp, checked above
    later = SIGNED_AT + timedelta(days=2)

    revoke_certificate(
        pki_copy,
        _seal_certificate(pki_copy, authority),
        revoked_at=signing_time + revoked_after_signing,
        reason=x509.ReasonFlags.key_compromise,
        now=later,
    )
    context = ValidationContext(
        trust_roots=pki_copy.trust_roots(),
        other_certs=pki_copy.ca_certificates(),
        crls=pki_copy.crls(later),
        allow_fetching=False,
        revocation_mode="hard-fail",
        moment=signing_time,
        retroactive_revinfo=True,
    )

    status = validate_pdf_signature(_signature(pdf), context)

    assert status.intact
    assert status.trusted is expect_trusted


def test_signing_with_revoked_seal_raises(pki_copy, authorities, sample_pdf):
    authority = authorities[2]
    revoke_certificate(
        pki_copy,
        _seal_certificate(pki_copy, authority),
        revoked_at=PKI_CREATED_AT,
        now=PKI_CREATED_AT + timedelta(minutes=5),
    )

    with pytest.raises(TrustError) as caught:
        _sign_with_copy(pki_copy, authority, sample_pdf)

    assert authority.name in caught.value.message


def test_new_authority_seal_signs(pki_copy, sample_pdf):
    authority = Authority(
        code="11152500MA0Q9X3N1X", name="锡林郭勒盟市场监督管理局", region_code="152500"
    )
    pki = ensure_dev_pki(
        pki_copy.data_dir,
        [authority],
        base_url=pki_copy.urls.base_url,
        passphrase=PASSPHRASE,
        now=PKI_CREATED_AT,
    )

    pdf = _sign_with_copy(pki, authority, sample_pdf)

    assert validate_pdf_signature(_signature(pdf), _strict_context(pki)).trusted


def test_level_requirements_checked(dev_pki, authorities):
    seal = dev_pki.load_seal(authorities[0].code)

    with pytest.raises(ValueError):
        LicenseSigner(seal, level=SignatureLevel.B_T)
    with pytest.raises(ValueError):
        LicenseSigner(seal, level=SignatureLevel.B_LT, timestamper=object())


def _flip_byte_in_signed_range(pdf: bytes) -> bytes:
    """Change one byte of page content, inside the first signed range."""
    position = pdf.index(b"Sample business license")
    data = bytearray(pdf)
    data[position] ^= 0x01
    return bytes(data)


def test_flip_helper_changes_signed_bytes(signed):
    pdf = signed[SignatureLevel.B_B]
    signature = _signature(pdf)
    start, length = signature.byte_range[0], signature.byte_range[1]
    position = pdf.index(b"Sample business license")

    assert start <= position < start + length


def test_callable_validation_data_sees_revocation(pki_copy, authorities, sample_pdf):
    authority = authorities[0]
    signer = LicenseSigner(
        pki_copy.load_seal(authority.code),
        level=SignatureLevel.B_LT,
        timestamper=pki_copy.load_timestamper(clock=lambda: SIGNED_AT),
        validation_data=lambda: pki_copy.validation_data(SIGNED_AT),
        clock=lambda: SIGNED_AT,
    )
    signer.sign(sample_pdf)

    revoke_certificate(
        pki_copy,
        _seal_certificate(pki_copy, authority),
        revoked_at=SIGNED_AT - timedelta(minutes=30),
        now=SIGNED_AT - timedelta(minutes=10),
    )

    with pytest.raises(TrustError):
        signer.sign(sample_pdf)


def test_pdfsig_reports_revocation_via_ocsp(
    pki_copy, authorities, sample_pdf, pki_server, nss_db, tmp_path
):
    authority = authorities[1]
    path = tmp_path / "revoked.pdf"
    path.write_bytes(_sign_with_copy(pki_copy, authority, sample_pdf))
    revoke_certificate(
        pki_copy,
        _seal_certificate(pki_copy, authority),
        revoked_at=SIGNED_AT + timedelta(days=1),
        reason=x509.ReasonFlags.key_compromise,
        now=SIGNED_AT + timedelta(days=1),
    )
    session_pki = pki_server.pki
    pki_server.pki = pki_copy  # the copy keeps the session base URL
    try:
        report = run_pdfsig(nss_db, path)
    finally:
        pki_server.pki = session_pki

    # pdfsig queries the OCSP responder for the present time, so a revocation
    # after the signing time still shows as revoked.
    assert "Signature is Valid" in report
    assert "Certificate has been Revoked" in report
