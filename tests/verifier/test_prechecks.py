"""Byte-level checks that reject hostile files before parsing."""

from __future__ import annotations

import time

import pytest

from verifier.limits import VerificationLimits
from verifier.prechecks import precheck_problem

LIMITS = VerificationLimits(max_bytes=1_000_000, max_revisions=32, max_objects=1000)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "文件为空"),
        (b"GIF89a" + b"\0" * 100, "不是 PDF 文件"),
        (b"PK\x03\x04zipfile", "不是 PDF 文件"),
        (b"%PDF-1.7\n" + b"0" * 1_000_000, "文件大小"),
        (b"%PDF-1.7\n" + b"startxref\n0\n%%EOF\n" * 33, "修订版本数 33"),
        (b"%PDF-1.7\n" + b"1 0 obj null endobj\n" * 1001, "对象数 1001"),
    ],
)
def test_precheck_rejects(data, expected):
    problem = precheck_problem(data, LIMITS)
    assert problem is not None
    assert expected in problem


def test_precheck_accepts_small_pdf():
    assert precheck_problem(b"%PDF-1.7\n1 0 obj null endobj\n", LIMITS) is None


def test_precheck_is_fast_on_limit_sized_input():
    data = b"%PDF-1.7\n" + b"12 0 ob " * (999_000 // 8)
    started = time.monotonic()
    precheck_problem(data, LIMITS)
    assert time.monotonic() - started < 1
