"""Certificate revocation: CRLs and an OCSP responder for the development CAs.

Each CA keeps a small JSON state file next to its CRL with the serial numbers
it issued, the ones it revoked and the last CRL number. The CRL is issued
again whenever that state changes or half of its validity has passed.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from common.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from esign.certificates import Issuer
    from esign.pki import DevPki

logger = logging.getLogger(__name__)

CRL_VALIDITY = timedelta(days=7)
OCSP_VALIDITY = timedelta(hours=12)
MAX_OCSP_REQUEST_BYTES = 64 * 1024


@dataclass
class RevocationState:
    """Issued and revoked serial numbers of one CA, persisted as JSON."""

    crl_number: int = 0
    issued: set[int] = field(default_factory=set)
    revoked: dict[int, tuple[datetime, x509.ReasonFlags]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> RevocationState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text(encoding="utf-8"))
        revoked = {
            int(entry["serial"], 16): (
                datetime.fromisoformat(entry["revoked_at"]),
                x509.ReasonFlags(entry["reason"]),
            )
            for entry in raw["revoked"]
        }
        issued = {int(serial, 16) for serial in raw["issued"]}
        return cls(raw["crl_number"], issued, revoked)

    def save(self, path: Path) -> None:
        revoked = [
            {"serial": f"{serial:x}", "revoked_at": at.isoformat(), "reason": r.value}
            for serial, (at, r) in sorted(self.revoked.items())
        ]
        raw = {
            "crl_number": self.crl_number,
            "issued": [f"{serial:x}" for serial in sorted(self.issued)],
            "revoked": revoked,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(raw, indent=1).encode("utf-8"))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers never see a partial file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def issue_crl(issuer: Issuer, state: RevocationState, now: datetime) -> bytes:
    """Sign a new CRL of ``state`` with the next CRL number; return its DER."""
    state.crl_number += 1
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(state.crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for serial, (revoked_at, reason) in sorted(state.revoked.items()):
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revoked_at)
        )
        # RFC 5280 5.3.1: omit the reason code rather than write "unspecified".
        if reason is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(issuer.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


def crl_due_at(crl_der: bytes) -> datetime:
    """Return when a CRL is due for re-issue: half-way through its validity."""
    crl = x509.load_der_x509_crl(crl_der)
    next_update = crl.next_update_utc
    if next_update is None:
        return crl.last_update_utc
    return crl.last_update_utc + (next_update - crl.last_update_utc) / 2


def revoke_certificate(
    pki: DevPki,
    certificate: x509.Certificate,
    *,
    revoked_at: datetime,
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    now: datetime | None = None,
) -> None:
    """Revoke ``certificate`` as of ``revoked_at`` and re-issue its CA's CRL.

    ``revoked_at`` may lie before ``now``: a key compromise is dated back to
    when it happened. Raises NotFoundError when no development CA issued the
    certificate.
    """
    issuer = pki.issuer_of(certificate)
    if issuer is None:
        raise NotFoundError(
            f"证书（序列号 {certificate.serial_number:x}）不是本开发 PKI 签发的",
            fix="只能吊销本系统 CA 签发的证书",
        )
    state = pki.revocation_state(issuer.name)
    state.revoked[certificate.serial_number] = (revoked_at.astimezone(UTC), reason)
    pki.publish_crl(issuer, state, now or datetime.now(UTC))
    logger.info(
        "revoked certificate serial=%x issuer=%s revoked_at=%s",
        certificate.serial_number,
        issuer.name,
        revoked_at.isoformat(),
    )


def answer_ocsp_request(
    pki: DevPki, body: bytes, *, now: datetime | None = None
) -> bytes:
    """Build the DER OCSP response to a DER OCSP request body.

    A malformed or oversized request gets a MALFORMED_REQUEST response and a
    request about a CA of another PKI gets UNAUTHORIZED, so the HTTP layer
    can always send the returned bytes with status 200.
    """
    moment = now or datetime.now(UTC)
    try:
        request = _parse_ocsp_request(body)
    except InputError as error:
        logger.info("rejected OCSP request: %s", error.message)
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    issuer = pki.issuer_by_key_hash(request.issuer_key_hash, request.hash_algorithm)
    if issuer is None:
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    state = pki.revocation_state(issuer.name)
    response = _single_response(issuer, state, request, moment)
    logger.info(
        "built OCSP response serial=%x issuer=%s",
        request.serial_number,
        issuer.name,
    )
    return response.public_bytes(serialization.Encoding.DER)


def _parse_ocsp_request(body: bytes) -> ocsp.OCSPRequest:
    if len(body) > MAX_OCSP_REQUEST_BYTES:
        raise InputError(
            f"OCSP 请求过大：{len(body)} 字节",
            field="body",
            fix=f"请求不应超过 {MAX_OCSP_REQUEST_BYTES} 字节",
        )
    try:
        request = ocsp.load_der_ocsp_request(body)
        # Touch the lazily parsed fields so that a damaged request fails here.
        _ = (request.serial_number, request.issuer_key_hash, request.hash_algorithm)
    except (ValueError, UnsupportedAlgorithm, x509.UnsupportedGeneralNameType) as error:
        raise InputError(f"OCSP 请求无法解析：{error}", field="body") from error
    if request.serial_number < 0:
        raise InputError(
            f"OCSP 请求中的证书序列号为负数：{request.serial_number}", field="body"
        )
    return request


def _single_response(
    issuer: Issuer,
    state: RevocationState,
    request: ocsp.OCSPRequest,
    moment: datetime,
) -> ocsp.OCSPResponse:
    serial = request.serial_number
    revoked = state.revoked.get(serial)
    if revoked is not None and revoked[0] <= moment:
        status = ocsp.OCSPCertStatus.REVOKED
        revocation_time, reason = revoked
    elif serial in state.issued:
        status, revocation_time, reason = ocsp.OCSPCertStatus.GOOD, None, None
    else:
        status, revocation_time, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
        issuer_name_hash=request.issuer_name_hash,
        issuer_key_hash=request.issuer_key_hash,
        serial_number=serial,
        algorithm=request.hash_algorithm,
        cert_status=status,
        this_update=moment,
        next_update=moment + OCSP_VALIDITY,
        revocation_time=revocation_time,
        revocation_reason=reason,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate)
    builder = builder.certificates([issuer.certificate])
    for extension in request.extensions:
        if isinstance(extension.value, x509.OCSPNonce):
            builder = builder.add_extension(extension.value, critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    response = ocsp.OCSPResponseBuilder.build_unsuccessful(status)
    return response.public_bytes(serialization.Encoding.DER)
