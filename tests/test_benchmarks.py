"""Keep the benchmark script working: run its tiny version end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import need_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_writes_report(tmp_path):
    need_tool("wrk")
    need_tool("pdfsig")
    need_tool("certutil")
    report = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--no-postgres",
         "--output", str(report)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = report.read_text(encoding="utf-8")
    assert "| issuance, B-LT" in text
    assert "PDF verification of one license" in text
    assert "QR verify page over HTTP" in text
    assert "query by USCC over HTTP" in text
    assert "judged by pyhanko (adesverify) and pdfsig: all valid" in text
