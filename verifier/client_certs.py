"""Check a client certificate against the trust list.

A department's system may authenticate with a client certificate (mutual
TLS) instead of an API key. The certificate must chain to a CA of the trust
list that is recognised now, and be valid now. Revocation is checked
against the CRLs that the trust list contains and fails soft, because a client
certificate's CRL may not be reachable offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime, timezone

from asn1crypto import pem, x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from common.errors import TrustError
from verifier.trustlist import TrustList

logger = logging.getLogger(__name__)

MAX_CERTIFICATE_BYTES = 16 * 1024


def load_client_certificate(data: bytes) -> x509.Certificate:
    """Parse a PEM or DER certificate; raise TrustError when it is damaged."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise TrustError(f"客户端证书 {len(data)} 字节超过上限 {MAX_CERTIFICATE_BYTES}")
    try:
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        certificate = x509.Certificate.load(data)
        _ = certificate.native  # parse now so a damaged certificate fails here
    except (ValueError, TypeError, KeyError) as error:
        raise TrustError(
            f"客户端证书无法解析（{type(error).__name__}）",
            fix="请提供 PEM 或 DER 格式的 X.509 证书",
        ) from error
    return certificate


def certificate_fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.dump()).hexdigest()


def check_client_certificate(
    trust: TrustList, certificate: x509.Certificate, now: datetime | None = None
) -> str:
    """Return the name of the recognised CA behind ``certificate``.

    Raises TrustError when no path leads to a recognised CA, the
    certificate is expired or revoked, or its CA is not recognised now.
    """
    moment = now or datetime.now(timezone.utc)
    context = ValidationContext(
        trust_roots=trust.anchor_certificates(),
        other_certs=trust.intermediate_certificates(),
        crls=trust.current_crls(),
        allow_fetching=False,
        revocation_mode="soft-fail",
        moment=moment,
    )
    validator = CertificateValidator(certificate, validation_context=context)
    try:
        path = asyncio.run(
            validator.async_validate_usage(key_usage={"digital_signature"})
        )
    except (PathBuildingError, PathValidationError) as error:
        logger.info("client certificate rejected: %s", type(error).__name__)
        raise TrustError(
            f"客户端证书「{certificate.subject.human_friendly}」未通过校验：{error}",
            fix="请使用信任列表中互认 CA 签发、在有效期内且未被吊销的证书",
        ) from error
    ca = trust.ca_of_path(path)
    status = ca.status_at(moment) if ca else None
    if ca is None or status is None or status.status != "recognised":
        name = ca.name if ca else "未知 CA"
        raise TrustError(
            f"签发客户端证书的 CA「{name}」当前不在互认范围内",
            fix="请使用当前互认 CA 签发的证书",
        )
    return ca.name
