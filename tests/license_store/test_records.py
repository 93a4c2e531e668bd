"""Reading license records from JSON Lines and CSV files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import InputError
from license_store.records import read_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE_JSONL = EXAMPLES / "licenses-sample.jsonl"
LEGACY_CSV = EXAMPLES / "business-licenses-legacy.csv"


def test_sample_jsonl_reads_every_record() -> None:
    lines = list(read_records(SAMPLE_JSONL))

    assert len(lines) == 200
    assert all(line.ok for line in lines)
    assert [line.line_no for line in lines] == list(range(1, 201))
    assert lines[0].raw["license_type"] == "business_license"


def test_legacy_csv_reads_with_bom() -> None:
    lines = list(read_records(LEGACY_CSV))

    assert len(lines) == 60
    assert all(line.ok for line in lines)
    assert "license_type" in lines[0].raw
    assert lines[0].raw["uscc"] == "93152921MA09AW0K03"


def test_legacy_csv_long_term_becomes_none() -> None:
    first = next(iter(read_records(LEGACY_CSV)))

    assert first.raw["term_to"] is None


def test_csv_matches_jsonl_records() -> None:
    by_code = {line.raw["uscc"]: line.raw for line in read_records(SAMPLE_JSONL)}

    for line in read_records(LEGACY_CSV):
        expected = by_code[line.raw["uscc"]]
        assert line.raw["name"] == expected["name"]
        assert line.raw["business_scope"] == expected["business_scope"]
        assert line.raw["term_to"] == expected["term_to"]


def test_gb18030_copy_reads_the_same(tmp_path: Path) -> None:
    text = LEGACY_CSV.read_text(encoding="utf-8-sig")
    copy = tmp_path / "legacy-gb18030.csv"
    copy.write_bytes(text.encode("gb18030"))

    original = [line.raw for line in read_records(LEGACY_CSV)]
    converted = [line.raw for line in read_records(copy)]

    assert converted == original


def test_csv_without_bom(tmp_path: Path) -> None:
    copy = tmp_path / "no-bom.csv"
    copy.write_text(LEGACY_CSV.read_text(encoding="utf-8-sig"), encoding="utf-8")

    assert len([line for line in read_records(copy) if line.ok]) == 60


def test_jsonl_bad_lines_do_not_stop(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"uscc": "A", "term_to": "\xe9\x95\xbf\xe6\x9c\x9f"}\n'
        b"{not json\n"
        b"\n"
        b"[1, 2]\n"
        b'{"uscc": "\xff"}\n'
        b'{"uscc": "B", "valid_until": ""}\n'
    )

    lines = list(read_records(path))

    assert [line.line_no for line in lines] == [1, 2, 4, 5, 6]
    assert [line.ok for line in lines] == [True, False, False, False, True]
    assert lines[0].raw["term_to"] is None
    assert lines[4].raw["valid_until"] is None
    assert "第 2 行" in lines[1].error.message
    assert "JSON 对象" in lines[2].error.message
    assert "UTF-8" in lines[3].error.message
    assert lines[1].error.field == "line"
    assert lines[1].error.value == 2


def test_csv_short_row_names_line(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text(
        'uscc,name,term_to\nA,"名称\n跨行",长期\nB,缺一列\nC,正常,2030-01-01\n',
        encoding="utf-8",
    )

    lines = list(read_records(path))

    assert [line.line_no for line in lines] == [2, 4, 5]
    assert lines[0].raw == {"uscc": "A", "name": "名称\n跨行", "term_to": None}
    assert not lines[1].ok
    assert "第 4 行" in lines[1].error.message
    assert "3 列" in lines[1].error.message
    assert lines[2].raw["term_to"] == "2030-01-01"


def test_csv_repeated_column_rejected(tmp_path: Path) -> None:
    path = tmp_path / "twice.csv"
    path.write_text("uscc,name,name\nA,第一,第二\n", encoding="utf-8")

    lines = list(read_records(path))

    assert len(lines) == 1
    assert not lines[0].ok
    assert "name" in lines[0].error.message
    assert "重复" in lines[0].error.message


def test_csv_bad_quoting_does_not_stop(tmp_path: Path) -> None:
    path = tmp_path / "nul.csv"
    path.write_bytes(b"uscc,name\nA,\x00bad\nB,ok\n")

    lines = list(read_records(path))

    assert lines[-1].raw == {"uscc": "B", "name": "ok"}


def test_empty_files_yield_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "empty.jsonl").write_bytes(b"\n\n")

    assert list(read_records(tmp_path / "empty.csv")) == []
    assert list(read_records(tmp_path / "empty.jsonl")) == []


def test_format_sniffed_without_suffix(tmp_path: Path) -> None:
    path = tmp_path / "records.txt"
    path.write_text(json.dumps({"uscc": "A"}) + "\n", encoding="utf-8")

    assert [line.raw for line in read_records(path)] == [{"uscc": "A"}]


def test_missing_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="无法读取"):
        read_records(tmp_path / "missing.csv")


def test_undecodable_csv_raises(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"uscc,name\nA,\x81\x20\n")

    with pytest.raises(InputError, match="第 2 行"):
        list(read_records(path))
