"""Verification receipts: a signed record of one verdict on one document.

A receipt is CMS SignedData over JSON text with the verdict, the SHA-256 of
the verified document, its size, the verification time and the service
that verified it. Another department keeps the receipt and checks it later
against the verifying deployment's root, without the document itself or
with it to compare hashes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import x509

from common.errors import InputError
from verifier.signed_document import verify_signed_document
from verifier.verdict import Verdict

RECEIPT_KIND = "elicense-verification-receipt"
WHAT = "核验回执"


def receipt_payload(
    verdict: Verdict, document: bytes, service_url: str, moment: datetime
) -> bytes:
    """Return the JSON text that a receipt signs."""
    body = {
        "kind": RECEIPT_KIND,
        "format": 1,
        "service": service_url,
        "verified_at": moment.isoformat(),
        "document_sha256": hashlib.sha256(document).hexdigest(),
        "document_bytes": len(document),
        "outcome": verdict.outcome.value,
        "verdict": verdict.to_json(),
    }
    return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


@dataclass(frozen=True)
class CheckedReceipt:
    """A receipt whose signature chains to an anchor, and what it states."""

    body: dict[str, Any]
    signer_subject: str
    document_matches: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "signature_valid": True,
            "signer": self.signer_subject,
            "document_matches": self.document_matches,
            "receipt": self.body,
        }


def check_receipt(
    data: bytes, anchors: list[x509.Certificate], document: bytes | None = None
) -> CheckedReceipt:
    """Check a receipt's signature and, when given, the document's hash.

    Raises TrustError when the signature is invalid or untrusted, and
    InputError when the signed content is not a receipt.
    """
    signed = verify_signed_document(data, anchors, document_name=WHAT)
    try:
        body = json.loads(signed.content.decode("utf-8"))
        if body.get("kind") != RECEIPT_KIND:
            raise ValueError(f"kind={body.get('kind')!r}")
        expected = str(body["document_sha256"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            f"签名内容不是核验回执：{error}", fix="请提供核验服务出具的回执文件"
        ) from error
    matches = None
    if document is not None:
        matches = hashlib.sha256(document).hexdigest() == expected
    return CheckedReceipt(body, signed.signer_subject, matches)
