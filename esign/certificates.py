"""X.509 certificate profiles of the development PKI.

Seal certificates name the authority in CN and O and carry its unified social
credit code in organizationIdentifier (2.5.4.97) as ``NTRCN-<code>``, the
ETSI EN 319 412-1 form for national trade register numbers. Readers strip
the ``NTRCN-`` prefix; no other attribute carries the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

from common.authority import Authority
from esign.keystore import PrivateKey

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
# A key pair's private half or its public key: certificates need only the latter.
SubjectKey = PrivateKey | PublicKey

USCC_PREFIX = "NTRCN-"
REGION_NAME = "内蒙古自治区"
CLOCK_SKEW = timedelta(hours=1)
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


@dataclass(frozen=True)
class PublicationUrls:
    """Publication URLs of the CRLs, the OCSP responder and the CA certificates."""

    base_url: str

    def crl(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/crl/{ca_name}.crl"

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/pki/ocsp"

    def ca_certificate(self, ca_name: str) -> str:
        return f"{self.base_url}/pki/ca/{ca_name}.cer"


@dataclass(frozen=True)
class Issuer:
    """A CA that signs certificates: its name in URLs, certificate and key."""

    name: str
    certificate: x509.Certificate
    key: PrivateKey


def ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, REGION_NAME),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, f"{REGION_NAME}电子证照开发环境"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def seal_name(authority: Authority) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, REGION_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, authority.name),
            x509.NameAttribute(
                NameOID.ORGANIZATION_IDENTIFIER, USCC_PREFIX + authority.code
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, authority.name),
        ]
    )


def uscc_from_subject(certificate: asn1_x509.Certificate) -> str | None:
    """Return the USCC a seal certificate carries, or None."""
    value = certificate.subject.native.get("organization_identifier")
    if isinstance(value, str) and value.startswith(USCC_PREFIX):
        return value[len(USCC_PREFIX) :]
    return None


def build_root(
    common_name: str, key: PrivateKey, now: datetime, lifetime: timedelta
) -> x509.Certificate:
    """Build a self-signed root CA certificate."""
    name = ca_name(common_name)
    builder = (
        _base_builder(name, name, key, now, lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
            critical=False,
        )
    )
    return builder.sign(key, hashes.SHA256())


def build_issuing_ca(
    common_name: str,
    key: PrivateKey,
    issuer: Issuer,
    urls: PublicationUrls,
    now: datetime,
    lifetime: timedelta,
) -> x509.Certificate:
    builder = _issued_builder(ca_name(common_name), key, issuer, urls, now, lifetime)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    ).add_extension(_ca_key_usage(), critical=True)
    return builder.sign(issuer.key, hashes.SHA256())


def build_tsa(
    common_name: str,
    key: PrivateKey,
    issuer: Issuer,
    urls: PublicationUrls,
    now: datetime,
    lifetime: timedelta,
) -> x509.Certificate:
    """Build a time-stamping certificate; RFC 3161 wants its EKU critical."""
    builder = _issued_builder(ca_name(common_name), key, issuer, urls, now, lifetime)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(_signing_key_usage(), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    )
    return builder.sign(issuer.key, hashes.SHA256())


def build_end_entity(
    subject: x509.Name,
    key: SubjectKey,
    issuer: Issuer,
    urls: PublicationUrls,
    now: datetime,
    lifetime: timedelta,
    *,
    document_signing: bool = True,
) -> x509.Certificate:
    """Build a seal or token signer certificate.

    ``key`` is the subject's private key or, for a certificate signing
    request, its public key. Key usage is digitalSignature and
    nonRepudiation. The extended key usage of a ``document_signing``
    certificate lists emailProtection, without which NSS (and so poppler's
    ``pdfsig``) rejects it for document signatures, and documentSigning
    (RFC 9336).
    """
    builder = _issued_builder(subject, key, issuer, urls, now, lifetime)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    ).add_extension(_signing_key_usage(), critical=True)
    if document_signing:
        usages = [ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(
        certificate.public_bytes(serialization.Encoding.DER)
    )


def _base_builder(
    subject: x509.Name,
    issuer_name: x509.Name,
    key: SubjectKey,
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(_public_key(key))
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + lifetime)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(_public_key(key)),
            critical=False,
        )
    )


def _public_key(key: SubjectKey) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return key.public_key()
    return key


def _issued_builder(
    subject: x509.Name,
    key: SubjectKey,
    issuer: Issuer,
    urls: PublicationUrls,
    now: datetime,
    lifetime: timedelta,
) -> x509.CertificateBuilder:
    # A certificate must not outlive its issuer.
    lifetime = min(lifetime, issuer.certificate.not_valid_after_utc - now)
    issuer_ski = issuer.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    distribution_point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(urls.crl(issuer.name))],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP,
            x509.UniformResourceIdentifier(urls.ocsp),
        ),
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(urls.ca_certificate(issuer.name)),
        ),
    ]
    return (
        _base_builder(subject, issuer.certificate.subject, key, now, lifetime)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski),
            critical=False,
        )
        .add_extension(x509.CRLDistributionPoints([distribution_point]), False)
        .add_extension(x509.AuthorityInformationAccess(access), critical=False)
    )


def _ca_key_usage() -> x509.KeyUsage:
    # digitalSignature lets the CA sign OCSP responses itself.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _signing_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
