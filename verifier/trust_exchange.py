"""Exchange trust lists between deployments (CA互认).

A deployment exports the entries of its own CAs as JSON inside a CMS
SignedData document, signed by its trust-list signer certificate. Another
deployment imports that document only after the signature chains to the
exporter's root, which the importing operator configures as the anchor.

Only entries whose certificates contain the anchor are taken over: an
exporter can vouch for its own CA, never for a third one, so recognition
does not spread transitively.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from asn1crypto import x509
from cryptography import x509 as crypto_x509
from cryptography.exceptions import InvalidSignature

from common.errors import TrustError
from verifier.signed_document import verify_signed_document
from verifier.trustlist import RecognisedCA, TrustList, _ca_from_json, _ca_to_json

logger = logging.getLogger(__name__)

EXPORT_KIND = "elicense-trust-list"
WHAT = "信任列表"


@dataclass(frozen=True)
class ImportReport:
    """Result of an import: ids of the entries added, updated and skipped."""

    added: tuple[str, ...]
    updated: tuple[str, ...]
    skipped: tuple[str, ...]
    issued_at: str


def export_payload(trust: TrustList, publisher: str, now: datetime) -> bytes:
    """Return the JSON text of this deployment's own entries, to be signed."""
    own = [ca for ca in trust.cas if ca.imported_from is None]
    document = {
        "kind": EXPORT_KIND,
        "format": 1,
        "publisher": publisher,
        "issued_at": now.astimezone(timezone.utc).isoformat(),
        "cas": [_ca_to_json(ca) for ca in own],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")


def import_signed_list(
    trust: TrustList, data: bytes, anchor: x509.Certificate
) -> ImportReport:
    """Merge the entries of a signed list into ``trust`` and return a report.

    Raises TrustError when the signature does not chain to ``anchor``, the
    list is older than the last one imported from the same anchor, or no
    entry belongs to the anchor.
    """
    signed = verify_signed_document(data, [anchor], document_name=WHAT)
    document = _read_document(signed.content)
    anchor_id = anchor.sha256.hex()
    _reject_replay(trust, anchor_id, document["issued_at"])
    added: list[str] = []
    updated: list[str] = []
    skipped: list[str] = []
    for entry in document["cas"]:
        ca = _entry_for_anchor(entry, anchor, anchor_id)
        if ca is None:
            skipped.append(str(entry.get("id")))
            continue
        existing = next((known for known in trust.cas if known.id == ca.id), None)
        if existing is None:
            trust.cas.append(ca)
            added.append(ca.id)
        else:
            # Local decisions (scope, withdrawal) survive a re-import.
            trust.replace(
                replace(
                    existing,
                    name=ca.name,
                    certificates=ca.certificates,
                    token_signers=ca.token_signers,
                )
            )
            updated.append(ca.id)
    if not added and not updated:
        raise TrustError(
            f"{WHAT}中没有属于指定根证书的 CA",
            fix="请确认 --anchor 是导出方自己的根证书",
        )
    trust.imports[anchor_id] = document["issued_at"]
    logger.info(
        "imported trust list anchor=%s added=%d updated=%d skipped=%d",
        anchor_id[:16],
        len(added),
        len(updated),
        len(skipped),
    )
    return ImportReport(
        tuple(added), tuple(updated), tuple(skipped), document["issued_at"]
    )


def _read_document(content: bytes) -> dict[str, Any]:
    try:
        document = json.loads(content.decode("utf-8"))
        if document.get("kind") != EXPORT_KIND or not isinstance(document["cas"], list):
            raise ValueError(f"kind={document.get('kind')!r}")
        datetime.fromisoformat(document["issued_at"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise TrustError(
            f"{WHAT}内容格式错误：{error}",
            fix="请使用 elicense trust export 导出的文件",
        ) from error
    return document


def _reject_replay(trust: TrustList, anchor_id: str, issued_at: str) -> None:
    last = trust.imports.get(anchor_id)
    if last is None:
        return
    if datetime.fromisoformat(issued_at) < datetime.fromisoformat(last):
        raise TrustError(
            f"{WHAT}的导出时间 {issued_at} 早于上次导入的 {last}，可能是旧文件",
            fix="请向对方索取最新导出的信任列表",
        )


def _entry_for_anchor(
    entry: dict[str, Any], anchor: x509.Certificate, anchor_id: str
) -> RecognisedCA | None:
    try:
        ca = _ca_from_json(entry)
    except (KeyError, TypeError, ValueError) as error:
        logger.info("skipped malformed trust list entry: %r", error)
        return None
    if anchor.sha256 not in ca.fingerprints:
        logger.info("skipped entry %s: not under the anchor", ca.id)
        return None
    issuers = [crypto_x509.load_der_x509_certificate(c.dump()) for c in ca.certificates]
    for signer in ca.token_signers:
        if not _issued_by_any(signer, issuers):
            logger.info("skipped entry %s: token signer not issued by its CA", ca.id)
            return None
    return replace(ca, id=f"{ca.id}-{anchor_id[:12]}", imported_from=anchor_id)


def _issued_by_any(
    certificate: x509.Certificate, issuers: list[crypto_x509.Certificate]
) -> bool:
    subject = crypto_x509.load_der_x509_certificate(certificate.dump())
    for issuer in issuers:
        try:
            subject.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False
