"""Map rows of a legacy paper-license export onto issuing records.

A mapping file (TOML) names, for each record field, the CSV column it comes
from, and may fix field values that the export lacks::

    [record]                 # fixed values
    license_type = "business_license"

    [columns]                # record field = CSV column
    uscc = "统一社会信用代码"
    name = "企业名称"

    [dates]                  # fields whose legacy dates are normalised
    fields = ["established_on", "term_from", "term_to", "issued_on"]

The CSV may be UTF-8 with or without a byte order mark, or GB18030.
``长期`` in a term end field means an open-ended term. Dates may be written
``2019-09-01``, ``2019/9/1``, ``2019.9.1``, ``2019年9月1日`` or ``20190901``.
"""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import InputError
from license_store.records import decode_csv_bytes, normalise_open_ended, repeated_columns
from license_store.repository import hash_request

_DATE_FORMS = (
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)
IDEMPOTENCY_PREFIX = "legacy:"


@dataclass(frozen=True)
class ColumnMapping:
    """CSV column of each record field, fixed field values and date fields."""

    columns: dict[str, str]
    fixed: dict[str, Any] = field(default_factory=dict)
    date_fields: tuple[str, ...] = ()

    def column_of(self, field_name: str | None) -> str:
        """Return the CSV column of a record field, or the field for a fixed one."""
        if field_name is None:
            return ""
        return self.columns.get(field_name, field_name)


@dataclass(frozen=True)
class LegacyRow:
    """One CSV row: the mapped record, or the problem that rejects it."""

    line_no: int
    record: dict[str, Any] | None = None
    error: InputError | None = None
    column: str = ""
    value: str = ""

    @property
    def idempotency_key(self) -> str:
        assert self.record is not None
        return IDEMPOTENCY_PREFIX + hash_request(self.record)


def load_mapping(path: str | Path) -> ColumnMapping:
    """Read a mapping file, or raise InputError naming what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InputError(
            f"无法读取映射文件：{error.strerror}",
            field="mapping",
            value=str(path),
            fix="请检查映射文件路径",
        ) from error
    except tomllib.TOMLDecodeError as error:
        raise InputError(
            f"映射文件不是有效的 TOML：{error}",
            field="mapping",
            value=str(path),
            fix="请按 examples 中的映射文件示例修改",
        ) from error
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise InputError(
            "映射文件缺少 [columns] 表",
            field="columns",
            value=str(path),
            fix="请在 [columns] 中写明“记录字段 = CSV 列名”",
        )
    dates = data.get("dates", {}).get("fields", [])
    return ColumnMapping(
        columns={str(k): str(v) for k, v in columns.items()},
        fixed=dict(data.get("record", {})),
        date_fields=tuple(str(name) for name in dates),
    )


def read_legacy_rows(data: bytes, mapping: ColumnMapping) -> Iterator[LegacyRow]:
    """Yield every data row of a legacy CSV mapped onto a record.

    Raises InputError when the encoding is unknown or the header lacks a
    mapped column; a bad row becomes a LegacyRow with its error.
    """
    reader = csv.reader(io.StringIO(decode_csv_bytes(data), newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    _check_header(header, mapping)
    line_no = reader.line_num + 1
    for row in reader:
        if any(cell.strip() for cell in row):
            yield _map_row(line_no, header, row, mapping)
        line_no = reader.line_num + 1


def _check_header(header: list[str], mapping: ColumnMapping) -> None:
    repeated = repeated_columns(header)
    if repeated:
        raise _header_error(
            f"CSV 表头中的列名重复：{'、'.join(repeated)}",
            header,
            "每个列名只能出现一次，请删除或改名重复的列后重新导入",
        )
    missing = [c for c in mapping.columns.values() if c not in header]
    if missing:
        raise _header_error(
            f"CSV 表头缺少映射文件中的列：{'、'.join(missing)}",
            header,
            "请核对映射文件 [columns] 中的列名与 CSV 第一行是否一致",
        )


def _header_error(message: str, header: list[str], fix: str) -> InputError:
    return InputError(message, field="header", value=",".join(header)[:200], fix=fix)


def _map_row(
    line_no: int, header: list[str], row: list[str], mapping: ColumnMapping
) -> LegacyRow:
    if len(row) != len(header):
        error = InputError(
            f"第 {line_no} 行应有 {len(header)} 列，实有 {len(row)} 列",
            field="line",
            value=line_no,
            fix="请检查该行是否缺少分隔符，或含逗号的字段是否加了双引号",
        )
        return LegacyRow(line_no, error=error)
    cells = dict(zip(header, row))
    record: dict[str, Any] = dict(mapping.fixed)
    for field_name, column in mapping.columns.items():
        record[field_name] = cells[column].strip()
    for field_name in mapping.date_fields:
        if isinstance(record.get(field_name), str):
            record[field_name] = normalise_date(record[field_name])
    return LegacyRow(line_no, record=normalise_open_ended(record))


def normalise_date(text: str) -> str:
    """Return a legacy date as YYYY-MM-DD, or the text unchanged if not a date."""
    compact = text.strip()
    for form in _DATE_FORMS:
        match = form.fullmatch(compact)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return f"{year:04d}-{month:02d}-{day:02d}"
    return compact
