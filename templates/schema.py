"""Field schema of a license template and the checks of one field value."""

from __future__ import annotations

import datetime as dt
import enum
import re
import unicodedata
from dataclasses import dataclass

from common.codes import normalize_code, validate_citizen_id, validate_uscc
from common.errors import InputError

OPEN_ENDED_WORDS = frozenset({"长期", "永久", "长期有效"})


class FieldType(enum.StrEnum):
    """Kind of a record field; decides normalisation and checks."""

    TEXT = "text"
    DATE = "date"
    USCC = "uscc"
    CITIZEN_ID = "citizen_id"
    LICENSE_NO = "license_no"
    MONEY = "money"
    REGION_CODE = "region_code"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record: its label on the face and its checks."""

    name: str
    label: str
    type: FieldType
    required: bool = True
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    # A date field that may be null or 长期, meaning no end.
    open_ended: bool = False

    def normalize(self, raw: object, today: dt.date | None = None) -> object:
        """Return the normalised value, None for a missing one, or raise."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self._missing(raw)
        if self.type is FieldType.DATE:
            return self._normalize_date(raw)
        if not isinstance(raw, str):
            raise self.error(
                f"应为文字，收到 {type(raw).__name__}", raw, "请以字符串提供"
            )
        value = self._normalize_text(raw, today)
        self._check_length(value, raw)
        self._check_pattern(value, raw)
        return value

    def error(self, problem: str, value: object, fix: str) -> InputError:
        return InputError(
            f"{self.label}（{self.name}）{problem}",
            field=self.name,
            value=value,
            fix=fix,
        )

    def _missing(self, raw: object) -> None:
        if self.required and not self.open_ended:
            raise self.error("缺失或为空", raw, f"请填写{self.label}")

    def _normalize_date(self, raw: object) -> dt.date | None:
        if isinstance(raw, dt.datetime):
            raise self.error("应为日期而不是时间", raw, "请使用 YYYY-MM-DD 格式")
        if isinstance(raw, dt.date):
            return raw
        if not isinstance(raw, str):
            raise self.error("应为日期", raw, "请使用 YYYY-MM-DD 格式")
        text = unicodedata.normalize("NFKC", raw).strip()
        if self.open_ended and text in OPEN_ENDED_WORDS:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise self.error(
                f"不是有效的日期：{raw}", raw, "请使用 YYYY-MM-DD 格式并核对月、日"
            ) from None

    def _normalize_text(self, raw: str, today: dt.date | None) -> str:
        if self.type is FieldType.USCC:
            return validate_uscc(raw, field=self.name)
        if self.type is FieldType.CITIZEN_ID:
            return validate_citizen_id(raw, field=self.name, today=today)
        if self.type in (FieldType.LICENSE_NO, FieldType.REGION_CODE):
            return normalize_code(raw)
        # NFC composes base letters with their marks where Unicode can, so the
        # register stores what the face prints.
        value = unicodedata.normalize("NFC", raw).strip()
        marks = [char for char in value if unicodedata.category(char) in ("Mn", "Me")]
        if marks and not self._marks_allowed(value):
            raise self.error(
                f"含有无法单独排印的组合符号 U+{ord(marks[0]):04X}",
                raw,
                "请删除组合符号，或改用预组合字符",
            )
        control = [char for char in value if unicodedata.category(char) in ("Cc", "Cf")]
        if control:
            raise self.error(
                f"含有控制字符 U+{ord(control[0]):04X}",
                raw,
                "请删除换行、制表符等控制字符",
            )
        return value

    @staticmethod
    def _marks_allowed(value: str) -> bool:
        # Traditional Mongolian uses free variation selectors and vowel
        # separators that are marks by category; Chinese text has none.
        return all(
            "\u1800" <= char <= "\u18af"
            for char in value
            if unicodedata.category(char) in ("Mn", "Me")
        )

    def _check_length(self, value: str, raw: str) -> None:
        if self.max_length is not None and len(value) > self.max_length:
            raise self.error(
                f"长度 {len(value)} 超过上限 {self.max_length}",
                raw,
                f"请缩短到 {self.max_length} 个字符以内",
            )

    def _check_pattern(self, value: str, raw: str) -> None:
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise self.error(
                f"格式不符合要求（{self.pattern.pattern}）：{value}",
                raw,
                f"请按{self.label}的规定格式填写",
            )


ENVELOPE_FIELDS = (
    FieldSpec("license_type", "证照类型", FieldType.TEXT, max_length=64),
    FieldSpec("issued_on", "发证日期", FieldType.DATE),
    FieldSpec("authority_name", "颁发机构名称", FieldType.TEXT, max_length=60),
    FieldSpec(
        "authority_code",
        "颁发机构代码",
        FieldType.USCC,
        pattern=re.compile("1[1-9][0-9A-Z]{16}"),
    ),
    FieldSpec(
        "authority_region",
        "颁发机构行政区划代码",
        FieldType.REGION_CODE,
        pattern=re.compile("[1-8][0-9]{5}"),
    ),
)
ENVELOPE_NAMES = frozenset(spec.name for spec in ENVELOPE_FIELDS)
