"""Read license records from JSON Lines or CSV files.

JSON Lines files are UTF-8, one object a line. CSV files are UTF-8, with or
without a byte order mark, or GB18030 as exported by older registration
systems; the first row names the fields. In either format the term end fields
take ``长期`` or an empty value for an open-ended term, which becomes None.

A bad line becomes a :class:`RecordLine` with an error naming the line, and
reading goes on with the next line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError

OPEN_ENDED_FIELDS = ("term_to", "valid_until", "valid_to")
OPEN_ENDED_WORDS = frozenset({"", "长期"})
JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})


@dataclass(frozen=True)
class RecordLine:
    """One record read from a file: either ``raw`` or ``error`` is set."""

    line_no: int
    raw: dict[str, Any] | None = None
    error: InputError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def read_records(path: str | Path) -> Iterator[RecordLine]:
    """Yield the records of a JSON Lines or CSV file with their line numbers.

    The format comes from the suffix (``.jsonl``, ``.ndjson``, ``.json`` or
    ``.csv``), or from the first character for other names. Raises InputError
    only when the whole file cannot be read.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"无法读取记录文件：{error.strerror}",
            field="path",
            value=str(path),
            fix="请检查文件路径和读取权限",
        ) from error
    if _is_json_lines(path, data):
        return read_json_lines(data)
    return read_csv(data, source=str(path))


def _is_json_lines(path: Path, data: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix in JSON_LINES_SUFFIXES:
        return True
    if suffix == ".csv":
        return False
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def read_json_lines(data: bytes) -> Iterator[RecordLine]:
    """Yield one record per non-blank line of UTF-8 JSON Lines."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    for line_no, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        yield _parse_json_line(line_no, line)


def _parse_json_line(line_no: int, line: bytes) -> RecordLine:
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        return _bad_line(line_no, f"不是 UTF-8 编码（第 {error.start + 1} 字节）")
    except json.JSONDecodeError as error:
        return _bad_line(line_no, f"不是有效的 JSON：{error.msg}，第 {error.colno} 列")
    if not isinstance(value, dict):
        return _bad_line(line_no, f"应为 JSON 对象，收到 {type(value).__name__}")
    return RecordLine(line_no, raw=normalise_open_ended(value))


def read_csv(data: bytes, source: str = "CSV") -> Iterator[RecordLine]:
    """Yield one record per CSV row after the header row.

    ``line_no`` is the file line where the row starts, so a quoted field with
    line breaks does not shift the numbers of later rows.
    """
    text = decode_csv_bytes(data, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as error:
        yield _bad_line(1, f"表头无法解析：{error}")
        return
    repeated = repeated_columns(header)
    if repeated:
        yield _bad_line(
            1,
            f"表头中的列名重复：{'、'.join(repeated)}",
            fix="每个列名只能出现一次，请删除或改名重复的列",
        )
        return
    yield from _csv_rows(reader, header)


def repeated_columns(header: list[str]) -> list[str]:
    """Return the column names that occur more than once, in header order.

    A row is read into a dict by column name, so a repeated column would
    silently keep only its last cell.
    """
    seen: set[str] = set()
    repeated: list[str] = []
    for name in header:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def _csv_rows(reader: Iterable[list[str]], header: list[str]) -> Iterator[RecordLine]:
    rows = iter(reader)
    line_no = reader.line_num + 1  # type: ignore[attr-defined]
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as error:
            yield _bad_line(line_no, f"CSV 格式错误：{error}")
        else:
            if any(cell.strip() for cell in row):
                yield _csv_record(line_no, header, row)
        line_no = reader.line_num + 1  # type: ignore[attr-defined]


def _csv_record(line_no: int, header: list[str], row: list[str]) -> RecordLine:
    if len(row) != len(header):
        return _bad_line(
            line_no,
            f"应有 {len(header)} 列（与表头一致），实有 {len(row)} 列",
            fix="请检查该行是否缺少分隔符，或含逗号的字段是否加了双引号",
        )
    return RecordLine(line_no, raw=normalise_open_ended(dict(zip(header, row))))


def decode_csv_bytes(data: bytes, source: str = "CSV") -> str:
    """Decode CSV bytes as UTF-8 (BOM optional), else as GB18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as error:
        line_no = data.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"{source} 第 {line_no} 行既不是 UTF-8 也不是 GB18030 编码",
            field="encoding",
            value=data[error.start : error.start + 4].hex(" "),
            fix="请将文件另存为 UTF-8 编码的 CSV",
        ) from error


def normalise_open_ended(raw: dict[str, Any]) -> dict[str, Any]:
    """Replace ``长期`` and empty term ends by None (an open-ended term)."""
    record = dict(raw)
    for field in OPEN_ENDED_FIELDS:
        value = record.get(field)
        if isinstance(value, str) and value.strip() in OPEN_ENDED_WORDS:
            record[field] = None
    return record


def _bad_line(line_no: int, problem: str, fix: str | None = None) -> RecordLine:
    error = InputError(
        f"第 {line_no} 行{problem}",
        field="line",
        value=line_no,
        fix=fix or "请修正该行后重新提交",
    )
    return RecordLine(line_no, error=error)
