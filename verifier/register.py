"""Register view of the verifier: facts and status, never keys."""

from __future__ import annotations

from typing import Protocol

from verifier.verdict import LicenseFacts


class RegisterLookup(Protocol):
    """Read-only view of the register that the verifier needs."""

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        """Return the facts of the version whose signed PDF has this hash."""

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        """Return the facts of the version with this e-license identifier."""
