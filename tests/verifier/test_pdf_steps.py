"""How the seven verification steps hand results to each other."""

from __future__ import annotations

import pytest

from verifier import pdf_check
from verifier.verdict import Outcome, StepStatus


def test_genuine_license_names_signer(context, issued):
    verdict = context.verify_pdf_sync(issued[1])

    assert verdict.outcome == Outcome.VALID, verdict.to_json()
    assert verdict.signer is not None
    assert verdict.signer.organization_code == verdict.license.authority_code
    assert verdict.signer.timestamp_time is not None


def test_pyhanko_error_skips_dependent_steps(context, issued, monkeypatch):
    def raising_validation(*args, **kwargs):
        raise ValueError("unreadable SignedData")

    monkeypatch.setattr(pdf_check, "validate_pdf_signature", raising_validation)

    verdict = context.verify_pdf_sync(issued[1])

    assert verdict.outcome == Outcome.INVALID
    assert verdict.step("trust").status == StepStatus.FAILED
    assert "unreadable SignedData" in verdict.step("trust").reasons[0]
    assert verdict.step("changes").status == StepStatus.SKIPPED
    assert verdict.step("seal").status == StepStatus.SKIPPED
    # The signer is still named, read from the signature directly.
    assert verdict.signer is not None


@pytest.mark.parametrize("offset", [200, -200])
def test_flipped_byte_fails_integrity(context, issued, offset):
    data = bytearray(issued[1])
    # One byte near the start or near the end. The signature covers both.
    data[offset] ^= 0x01

    verdict = context.verify_pdf_sync(bytes(data))

    assert verdict.outcome == Outcome.INVALID
