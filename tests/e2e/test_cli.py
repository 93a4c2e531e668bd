"""The command line as a user runs it: init, issue, rejected records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.codes import normalize_code

from tests.e2e.conftest import IssuedSet, copy_data_dir, run_cli

SHARED_INVALID = Path(__file__).resolve().parents[3] / "shared" / "data" / "licenses-invalid.jsonl"


def test_init_writes_root_certificate(issued: IssuedSet):
    text = issued.root_pem.read_text()
    assert text.startswith("-----BEGIN CERTIFICATE-----")


def test_init_twice_keeps_pki(issued: IssuedSet):
    root_before = issued.root_pem.read_bytes()
    seal = next((issued.data_dir / "pki" / "seals").glob("*/seal.pem"))
    seal_before = seal.read_bytes()
    run_cli("init", data_dir=issued.data_dir)
    assert issued.root_pem.read_bytes() == root_before
    assert seal.read_bytes() == seal_before


def test_private_keys_encrypted(issued: IssuedSet):
    keys = list((issued.data_dir / "pki").rglob("*.key.p8"))
    assert keys
    for key in keys:
        assert b"ENCRYPTED PRIVATE KEY" in key.read_bytes()


def test_issue_summary_and_files(issued: IssuedSet):
    assert f"签发 {len(issued.records)} 张" in issued.issue_stdout
    assert "拒绝 0 条" in issued.issue_stdout
    assert len(issued.pdfs) == len(issued.records)
    for pdf in issued.pdfs:
        assert pdf.name.startswith("1.2.156.3005.2.")


def test_issue_same_file_twice_issues_nothing(issued: IssuedSet, tmp_path):
    records = tmp_path / "again.jsonl"
    records.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in issued.records) + "\n",
        encoding="utf-8",
    )
    result = run_cli("issue", str(records), data_dir=issued.data_dir)
    assert "签发 0 张" in result.stdout
    assert f"已签发过 {len(issued.records)} 张" in result.stdout


@pytest.mark.skipif(not SHARED_INVALID.exists(), reason="shared sample data not beside the checkout")
def test_invalid_records_outcomes(issued: IssuedSet, tmp_path):
    cases = [json.loads(line) for line in SHARED_INVALID.read_text(encoding="utf-8").splitlines()]
    records = tmp_path / "invalid.jsonl"
    records.write_text(
        "\n".join(json.dumps(case["record"], ensure_ascii=False) for case in cases) + "\n",
        encoding="utf-8",
    )
    result = run_cli("issue", str(records), data_dir=issued.data_dir, check=False)
    assert result.returncode == 1, "a batch with rejected lines exits 1"
    rejections = {
        int(line.split("第 ", 1)[1].split(" 行", 1)[0]): line
        for line in result.stderr.splitlines()
        if line.startswith("拒绝 第")
    }
    for number, case in enumerate(cases, start=1):
        if case["expect"] == "reject":
            assert number in rejections, f"line {number} ({case['why']}) was accepted"
            continue
        # The normalised code may belong to a holder issued earlier in the
        # session: then the only acceptable refusal is the duplicate, which
        # names the normalised code.
        line = rejections.get(number)
        if line is not None:
            assert "已有有效的" in line, f"line {number} ({case['why']}): {line}"
            assert normalize_code(case["record"]["uscc"]) in line


def test_rejection_names_line_field_value(issued: IssuedSet, tmp_path):
    record = dict(issued.records[0])
    record["uscc"] = "91152502MAOUC9QR9G"
    records = tmp_path / "one.jsonl"
    records.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    result = run_cli("issue", str(records), data_dir=issued.data_dir, check=False)
    assert "拒绝 第 1 行：字段 uscc" in result.stderr
    assert "91152502MAOUC9QR9G" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_without_init_explains(tmp_path):
    result = run_cli("verify", str(tmp_path / "x.pdf"), data_dir=tmp_path / "none", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_init_on_file_path_explains(tmp_path):
    blocker = tmp_path / "file.csv"
    blocker.write_text("x")
    result = run_cli("init", data_dir=blocker / "sub", check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "错误" in result.stderr


def test_verify_with_corrupt_trust_list_explains(issued: IssuedSet, tmp_path):
    copy = tmp_path / "data"
    copy_data_dir(issued.data_dir, copy)
    (copy / "trust" / "trust-list.json").write_text("{broken", encoding="utf-8")
    result = run_cli("verify", str(issued.pdfs[0]), data_dir=copy, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "错误" in result.stderr


def test_verify_writes_receipt_that_checks(issued: IssuedSet, tmp_path):
    receipt = tmp_path / "receipt.p7m"
    result = run_cli(
        "verify", str(issued.pdfs[0]), "--receipt", str(receipt),
        data_dir=issued.data_dir, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert receipt.stat().st_size > 0
    checked = run_cli(
        "trust", "check-receipt", str(receipt), "--document", str(issued.pdfs[0]),
        data_dir=issued.data_dir, check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert '"valid"' in checked.stdout
