"""Service certificates and CMS signing for exchanged documents.

Two documents leave this service signed: the exported trust list and the
verification receipt. Each is a CMS SignedData (RFC 5652) that encapsulates
the JSON text, signed by a dedicated certificate of the development PKI:

    pki/trust-list-signer.key.p8, .pem     signs exported trust lists
    pki/receipt-signer.key.p8, .pem        signs verification receipts

Both are issued by the issuing CA, so another deployment checks them against
this deployment's root. ``verifier.signed_document`` checks the signatures.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

from esign import certificates as profiles
from esign.keystore import load_private_key
from esign.pki import ISSUING_CA, LEAF_LIFETIME, ROOT_CA, DevPki

logger = logging.getLogger(__name__)

TRUST_LIST_SIGNER = "trust-list-signer"
RECEIPT_SIGNER = "receipt-signer"
SERVICE_SIGNER_NAMES = {
    TRUST_LIST_SIGNER: "内蒙古自治区电子证照信任列表签名 (开发)",
    RECEIPT_SIGNER: "内蒙古自治区电子证照核验回执签名 (开发)",
}


def ensure_service_signer(pki: DevPki, name: str, now: datetime | None = None) -> None:
    """Issue the key and certificate of a service signer unless both exist.

    The certificate is recorded as issued in the issuing CA's revocation
    state, so the CA can later revoke it like any other certificate.
    """
    if pki.certificate_path(name).exists() and pki.key_path(name).exists():
        return
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = pki.issuer(ISSUING_CA)
    subject = profiles.ca_name(SERVICE_SIGNER_NAMES[name])
    certificate = profiles.build_end_entity(
        subject, key, issuer, pki.urls, moment, LEAF_LIFETIME, document_signing=False
    )
    state = pki.revocation_state(ISSUING_CA)
    state.issued.add(certificate.serial_number)
    state.save(pki.crl_path(ISSUING_CA).with_suffix(".json"))
    pki.write_key(pki.key_path(name), key)
    pki.certificate_path(name).write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
    )
    logger.info("created %s certificate serial=%x", name, certificate.serial_number)


def sign_document(pki: DevPki, passphrase: bytes, name: str, content: bytes) -> bytes:
    """Return DER CMS SignedData that encapsulates ``content``.

    The signer's certificate and the issuing CA certificate travel inside,
    so a checker needs only the root of this deployment.
    """
    ensure_service_signer(pki, name)
    key = load_private_key(pki.key_path(name), passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{pki.key_path(name)} is not an EC key")
    certificate = pki.certificate(name)
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(certificate, key, hashes.SHA256())
        .add_certificate(pki.certificate(ISSUING_CA))
    )
    return builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])


def root_certificate(pki: DevPki) -> x509.Certificate:
    return pki.certificate(ROOT_CA)
