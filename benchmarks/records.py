"""Synthetic license records with unique, valid holder codes."""

from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path

from common.codes import USCC_ALPHABET, org_code_check_char, uscc_check_char

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "licenses-sample.jsonl"


def holder_code(region: str, number: int) -> str:
    """Build a valid enterprise USCC (authority 9, category 1) from a counter."""
    letters = ""
    value = number
    for _ in range(6):
        value, digit = divmod(value, 31)
        letters = USCC_ALPHABET[digit] + letters
    org_code = "MA" + letters
    body = "91" + region + org_code + org_code_check_char(org_code)
    return body + uscc_check_char(body)


def business_records(count: int, offset: int = 0) -> list[dict]:
    """Return ``count`` business-license records cycling over the samples."""
    samples = [
        json.loads(line)
        for line in SAMPLE.read_text(encoding="utf-8").splitlines()
        if '"business_license"' in line
    ]
    records = []
    for index, sample in zip(range(count), cycle(samples)):
        record = dict(sample)
        record["uscc"] = holder_code(sample["authority_region"], offset + index)
        # Some samples carry issue dates in the future, which issuing rejects.
        record["issued_on"] = min(record["issued_on"], "2025-06-30")
        records.append(record)
    return records


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.write_text(
        "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records),
        encoding="utf-8",
    )
    return path
