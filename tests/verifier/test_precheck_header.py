"""The PDF header check accepts exactly what ``bytes.lstrip()`` would."""

from __future__ import annotations

import pytest

from verifier.limits import VerificationLimits
from verifier.prechecks import precheck_problem

LIMITS = VerificationLimits(max_bytes=1_000_000, max_revisions=32, max_objects=1000)
BODY = b"%PDF-1.7\n1 0 obj null endobj\n"


@pytest.mark.parametrize(
    "prefix", [b"", b" ", b"\t\n\r", b"\x0b\x0c", b"\r\n" * 100, b"\x00", b"\xa0", b"x"]
)
def test_header_check_matches_lstrip(prefix):
    data = prefix + BODY
    header_found = data.lstrip()[:5] == b"%PDF-"

    problem = precheck_problem(data, LIMITS)

    assert (problem is None) is header_found
