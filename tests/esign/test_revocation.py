"""CRLs after revocation and the OCSP responder."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from conftest import PKI_CREATED_AT
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from common.errors import NotFoundError
from esign.revocation import answer_ocsp_request, revoke_certificate

REVOKED_AT = PKI_CREATED_AT + timedelta(days=1)
LATER = PKI_CREATED_AT + timedelta(days=2)


def _seal(pki, authority) -> x509.Certificate:
    return x509.load_pem_x509_certificate(
        (pki.seal_dir(authority.code) / "seal.pem").read_bytes()
    )


def _request(
    certificate: x509.Certificate, issuer: x509.Certificate, nonce=None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        certificate, issuer, hashes.SHA256()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _answer(pki, body: bytes, now=LATER) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(answer_ocsp_request(pki, body, now=now))


def test_revoked_seal_listed_in_crl(pki_copy, authorities):
    seal = _seal(pki_copy, authorities[0])

    revoke_certificate(
        pki_copy,
        seal,
        revoked_at=REVOKED_AT,
        reason=x509.ReasonFlags.key_compromise,
        now=LATER,
    )

    crl = x509.load_der_x509_crl(pki_copy.crl_path("issuing-ca").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(seal.serial_number)
    assert entry is not None
    assert entry.revocation_date_utc == REVOKED_AT
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.last_update_utc == LATER
    assert crl.is_signature_valid(pki_copy.certificate("issuing-ca").public_key())


def test_unspecified_reason_omitted(pki_copy, authorities):
    seal = _seal(pki_copy, authorities[0])

    revoke_certificate(pki_copy, seal, revoked_at=REVOKED_AT, now=LATER)

    crl = x509.load_der_x509_crl(pki_copy.crl_path("issuing-ca").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(seal.serial_number)
    assert len(entry.extensions) == 0


def test_revoking_foreign_certificate_raises(pki_copy):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "外部证书")])
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(PKI_CREATED_AT)
        .not_valid_after(LATER)
        .sign(key, hashes.SHA256())
    )

    with pytest.raises(NotFoundError):
        revoke_certificate(pki_copy, foreign, revoked_at=REVOKED_AT, now=LATER)


def test_ocsp_good(dev_pki, authorities):
    seal = _seal(dev_pki, authorities[0])
    body = _request(seal, dev_pki.certificate("issuing-ca"), nonce=b"0123456789abcdef")

    response = _answer(dev_pki, body)

    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == seal.serial_number
    nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"
    issuing_key = dev_pki.certificate("issuing-ca").public_key()
    issuing_key.verify(
        response.signature,
        response.tbs_response_bytes,
        ec.ECDSA(hashes.SHA256()),
    )


def test_ocsp_revoked_after_revocation_time(pki_copy, authorities):
    seal = _seal(pki_copy, authorities[0])
    revoke_certificate(pki_copy, seal, revoked_at=REVOKED_AT, now=LATER)
    body = _request(seal, pki_copy.certificate("issuing-ca"))

    response = _answer(pki_copy, body, now=LATER)
    before = _answer(pki_copy, body, now=REVOKED_AT - timedelta(hours=1))

    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == REVOKED_AT
    assert before.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_issuing_ca_checked_against_root(dev_pki):
    body = _request(dev_pki.certificate("issuing-ca"), dev_pki.certificate("root-ca"))

    response = _answer(dev_pki, body)

    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_ocsp_unknown_serial(dev_pki, authorities):
    seal = _seal(dev_pki, authorities[0])
    issuing = dev_pki.certificate("issuing-ca")
    body = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            _name_hash(issuing), _key_hash(issuing), 12345, hashes.SHA256()
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )

    response = _answer(dev_pki, body)

    assert seal.serial_number != 12345
    assert response.certificate_status == ocsp.OCSPCertStatus.UNKNOWN


def test_ocsp_foreign_issuer_unauthorized(dev_pki):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "外部 CA")])
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(9)
        .not_valid_before(PKI_CREATED_AT)
        .not_valid_after(LATER)
        .sign(key, hashes.SHA256())
    )

    response = _answer(dev_pki, _request(foreign, foreign))

    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    "body",
    [b"", b"\x30\x00", b"garbage", b"\x30" * 70000],
    ids=["empty", "empty-seq", "text", "huge"],
)
def test_ocsp_malformed_request(dev_pki, body):
    response = _answer(dev_pki, body)

    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_over_http(dev_pki, authorities, pki_server):
    body = _request(_seal(dev_pki, authorities[0]), dev_pki.certificate("issuing-ca"))
    request = urllib.request.Request(
        f"{pki_server.base_url}/pki/ocsp",
        data=body,
        headers={"Content-Type": "application/ocsp-request"},
    )

    with urllib.request.urlopen(request, timeout=10) as reply:
        response = ocsp.load_der_ocsp_response(reply.read())

    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def _name_hash(certificate: x509.Certificate) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(certificate.subject.public_bytes())
    return digest.finalize()


def _key_hash(certificate: x509.Certificate) -> bytes:
    # For EC keys the subjectPublicKey bits are the uncompressed point.
    public_key = certificate.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(public_key)
    return digest.finalize()


# A request for serial 5 with zero hashes, as cryptography's builder writes it.
_REQUEST_HEX = (
    "30423040303e303c303a300906052b0e03021a0500041400000000000000000000000000"
    "0000000000000004140000000000000000000000000000000000000000020105"
)


@pytest.mark.parametrize(
    ("old", "new"),
    [("020105", "0201fb"), ("2b0e03021a", "2b0e030265")],
    ids=["negative-serial", "unknown-hash-algorithm"],
)
def test_ocsp_damaged_request_malformed(dev_pki, old, new):
    body = bytes.fromhex(_REQUEST_HEX.replace(old, new))

    response = _answer(dev_pki, body)

    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
