"""Legacy CSV mapping: dates, open-ended terms, encodings and bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError
from license_store.legacy import (
    ColumnMapping,
    load_mapping,
    normalise_date,
    read_legacy_rows,
)

MAPPING = ColumnMapping(
    columns={
        "uscc": "代码",
        "name": "名称",
        "term_to": "期限至",
        "issued_on": "发证日期",
    },
    fixed={"license_type": "business_license"},
    date_fields=("term_to", "issued_on"),
)
HEADER = "代码,名称,期限至,发证日期\r\n"


@pytest.mark.parametrize(
    "text",
    ["2019-09-01", "2019/9/1", "2019.9.1", "2019年9月1日", "20190901", " 2019-9-01 "],
)
def test_legacy_dates_normalised(text: str) -> None:
    assert normalise_date(text) == "2019-09-01"


def test_non_date_left_unchanged() -> None:
    assert normalise_date("九月一日") == "九月一日"


def test_rows_mapped_with_fixed_values() -> None:
    data = (HEADER + "91350100M000100Y43,甲公司,长期,2019年9月1日\r\n").encode(
        "gb18030"
    )

    rows = list(read_legacy_rows(data, MAPPING))

    assert rows[0].line_no == 2
    assert rows[0].record == {
        "license_type": "business_license",
        "uscc": "91350100M000100Y43",
        "name": "甲公司",
        "term_to": None,
        "issued_on": "2019-09-01",
    }


def test_utf8_with_bom_read() -> None:
    data = (
        "\ufeff" + HEADER + "91350100M000100Y43,乙公司,2030-01-01,2020-01-01\n"
    ).encode()

    rows = list(read_legacy_rows(data, MAPPING))

    assert rows[0].record["name"] == "乙公司"
    assert rows[0].record["term_to"] == "2030-01-01"


def test_short_row_rejected_with_line() -> None:
    data = (HEADER + "\n91350100M000100Y43,丙公司\n").encode()

    rows = list(read_legacy_rows(data, MAPPING))

    assert rows[0].line_no == 3
    assert rows[0].error is not None
    assert "应有 4 列" in rows[0].error.message


def test_same_row_same_idempotency_key() -> None:
    data = (HEADER + "91350100M000100Y43,甲公司,长期,2019-09-01\n").encode()

    first = next(read_legacy_rows(data, MAPPING)).idempotency_key
    second = next(read_legacy_rows(data, MAPPING)).idempotency_key

    assert first == second
    assert first.startswith("legacy:")


def test_missing_column_rejected() -> None:
    with pytest.raises(InputError) as caught:
        list(read_legacy_rows("代码,名称\n".encode(), MAPPING))

    assert caught.value.field == "header"
    assert "期限至" in caught.value.message


def test_repeated_column_rejected() -> None:
    data = "代码,名称,名称,期限至,发证日期\n".encode()

    with pytest.raises(InputError) as caught:
        list(read_legacy_rows(data, MAPPING))

    assert caught.value.field == "header"
    assert "名称" in caught.value.message
    assert "重复" in caught.value.message


def test_mapping_file_needs_columns(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text('[record]\nlicense_type = "business_license"\n', encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_mapping(path)

    assert caught.value.field == "columns"


def test_invalid_toml_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text("[columns\n", encoding="utf-8")

    with pytest.raises(InputError) as caught:
        load_mapping(path)

    assert caught.value.field == "mapping"


def test_example_mapping_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "examples"
    mapping = load_mapping(example / "business-licenses-legacy.mapping.toml")

    assert mapping.fixed == {"license_type": "business_license"}
    assert mapping.column_of("uscc") == "uscc"
    assert "term_to" in mapping.date_fields
