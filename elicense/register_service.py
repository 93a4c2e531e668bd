"""Register services of one data directory: lifecycle, event log, checks.

Shared by the ``elicense license`` commands and the lifecycle API. The
checkpoints of the event log are signed with the QR token signer's key
(ECDSA P-256), which the issuing stack already loads.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from esign.qrtoken import TokenSigner, key_id
from license_store.lifecycle import LifecycleService
from license_store.translog import EventLog

if TYPE_CHECKING:
    from elicense.context import ServiceContext

logger = logging.getLogger(__name__)

LOG_ORIGIN = "elicense register"


class TokenKeyCheckpointSigner:
    """Signs checkpoints with the token signer; ``key_id`` as in QR tokens."""

    def __init__(self, token_signer: TokenSigner) -> None:
        self._signer = token_signer
        self.key_id = key_id(token_signer.certificate).hex()

    def sign(self, data: bytes) -> bytes:
        return self._signer.key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify(self, data: bytes, signature: bytes) -> bool:
        public_key = self._signer.certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        try:
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


def event_log_for(context: ServiceContext) -> EventLog:
    """Return the event log of a data directory, able to sign checkpoints."""
    token_signer = context.issuing.pki.load_token_signer()
    return EventLog(
        context.repository, TokenKeyCheckpointSigner(token_signer), LOG_ORIGIN
    )


def lifecycle_for(context: ServiceContext) -> LifecycleService:
    """Return the lifecycle service on the issuing stack of a data directory."""
    return LifecycleService(context.issuing.service, event_log_for(context))
