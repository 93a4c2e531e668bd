"""Sign verification receipts with this deployment's receipt signer.

The receipt signer's key is read only when the first receipt is asked for,
so a deployment that never issues receipts never reads the passphrase.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from elicense.context import ServiceContext
from elicense.secrets import load_passphrase
from elicense.signed_documents import RECEIPT_SIGNER, sign_document
from esign.pki import DevPki
from verifier.receipts import receipt_payload
from verifier.verdict import Verdict

logger = logging.getLogger(__name__)
_lock = threading.Lock()


def make_receipt(context: ServiceContext, verdict: Verdict, document: bytes) -> bytes:
    """Return a DER CMS receipt for ``verdict`` on ``document``."""
    settings = context.settings
    payload = receipt_payload(
        verdict, document, settings.public_url, datetime.now(timezone.utc)
    )
    passphrase = load_passphrase(settings)
    pki = DevPki(context.data_dir, passphrase, settings.public_url)
    # Serialised so that two first requests do not both create the signer.
    with _lock:
        receipt = sign_document(pki, passphrase, RECEIPT_SIGNER, payload)
    logger.info("issued verification receipt outcome=%s", verdict.outcome.value)
    return receipt


def receipt_anchors(context: ServiceContext) -> list:
    """Roots whose receipts this deployment accepts: every recognised CA."""
    return context.trust.anchor_certificates()
