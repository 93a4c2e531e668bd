"""National identifier checks.

* Unified social credit code (统一社会信用代码), GB 32100-2015.
* Citizen ID number (公民身份号码), GB 11643-1999, ISO 7064 MOD 11-2.
* E-license identifier (电子证照标识), GB/T 36904-2018, ISO/IEC 7064 MOD 37,36.

Every check returns nothing and raises :class:`~common.errors.InputError`
naming the field and the value, so callers can pass the error on unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

from common.errors import InputError

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
USCC_AUTHORITIES = frozenset("123456789ANY")
# Category characters (position 2) per registration authority, GB 32100-2015
# annex; authorities not listed accept the digits 1-9.
USCC_CATEGORIES = {"1": "1239", "5": "1239", "9": "123", "N": "1239", "Y": "1"}

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

ELICENSE_ROOT = "1.2.156.3005.2"
MOD_37_36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SERIAL = re.compile(r"[0-9A-Z]{7,32}")
_VERSION = re.compile(r"[0-9]{3}")


def normalize_code(value: str) -> str:
    """Fold full-width forms to ASCII, drop surrounding blanks, upper-case.

    Registration systems send codes typed on Chinese input methods, so
    ``９１１５…`` and `` 91115…m `` are the same code as ``91115…M``.
    """
    return unicodedata.normalize("NFKC", value).strip().upper()


def uscc_check_char(first17: str) -> str:
    """Compute the 18th character of a unified social credit code."""
    total = sum(
        USCC_ALPHABET.index(char) * weight
        for char, weight in zip(first17, USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_char(first8: str) -> str:
    """Compute the check character of a GB 11714 organisation code."""
    total = sum(
        int(char, 36) * weight
        for char, weight in zip(first8, ORG_CODE_WEIGHTS, strict=True)
    )
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def validate_uscc(value: str, field: str = "uscc") -> str:
    """Return the normalised code, or raise naming the field and value.

    Checks length, alphabet, the registration authority character and the
    check character. The embedded organisation code check (position 17) is
    not enforced because codes of some authorities (for example 民政
    registrations) carry organisation codes that do not satisfy it.
    """
    code = normalize_code(value)
    if len(code) != 18:
        raise InputError(
            f"统一社会信用代码应为 18 位，收到 {len(code)} 位",
            field=field,
            value=value,
            fix="请核对代码位数",
        )
    bad = [char for char in code if char not in USCC_ALPHABET]
    if bad:
        raise InputError(
            f"统一社会信用代码含有不允许的字符 {bad[0]!r}（不使用 I、O、S、V、Z）",
            field=field,
            value=value,
            fix="请核对代码中的字母",
        )
    if code[0] not in USCC_AUTHORITIES:
        raise InputError(
            f"统一社会信用代码第 1 位登记管理部门代码 {code[0]!r} 不存在",
            field=field,
            value=value,
            fix="请核对代码第 1 位",
        )
    _check_uscc_structure(code, value, field)
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InputError(
            f"统一社会信用代码校验位错误：应为 {expected}，收到 {code[17]}",
            field=field,
            value=value,
            fix="请核对代码是否录入有误",
        )
    return code


def _check_uscc_structure(code: str, value: str, field: str) -> None:
    """Check the category character and the division code.

    A citizen ID number or other 18-character string can satisfy the check
    character by coincidence, so the structure is checked as well.
    """
    categories = USCC_CATEGORIES.get(code[0], "123456789")
    if code[1] not in categories:
        raise InputError(
            f"统一社会信用代码第 2 位机构类别 {code[1]!r} 与登记管理部门 "
            f"{code[0]!r} 不匹配",
            field=field,
            value=value,
            fix="请核对代码前两位",
        )
    if not code[2:8].isdigit():
        raise InputError(
            "统一社会信用代码第 3 至 8 位应为行政区划代码（6 位数字）",
            field=field,
            value=value,
            fix="请核对代码第 3 至 8 位",
        )


def validate_citizen_id(
    value: str, field: str = "id_number", today: dt.date | None = None
) -> str:
    """Return the normalised citizen ID number, or raise naming the field.

    The birth date must be a real calendar date and not in the future. The
    error messages never repeat the full number because it is personal data.
    """
    number = normalize_code(value)
    masked = mask_citizen_id(number)
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        raise InputError(
            "公民身份号码应为 17 位数字加 1 位校验码（数字或 X）",
            field=field,
            value=masked,
            fix="请核对号码位数和字符",
        )
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InputError(
            "公民身份号码中的出生日期不是有效日期",
            field=field,
            value=masked,
            fix="请核对号码第 7 至 14 位",
        ) from None
    if birth > (today or dt.date.today()):
        raise InputError(
            "公民身份号码中的出生日期晚于今天",
            field=field,
            value=masked,
            fix="请核对号码第 7 至 14 位",
        )
    total = sum(int(char) * weight for char, weight in zip(number, ID_WEIGHTS))
    if number[17] != ID_CHECK_CHARS[total % 11]:
        raise InputError(
            "公民身份号码校验码错误",
            field=field,
            value=masked,
            fix="请核对号码是否录入有误",
        )
    return number


def mask_citizen_id(number: str) -> str:
    """Mask the birth date and sequence: ``150102********1237``."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mod_37_36_check_char(text: str) -> str:
    """Compute the ISO/IEC 7064 MOD 37,36 check character of ``text``."""
    product = 36
    for char in text:
        value = MOD_37_36_ALPHABET.index(char)
        product = (((product + value) % 36) or 36) * 2 % 37
    return MOD_37_36_ALPHABET[(37 - product) % 36]


@dataclass(frozen=True)
class ElicenseIdentifier:
    """A GB/T 36904 e-license identifier, split into its parts."""

    type_code: str
    issuer_code: str
    serial: str
    version: int

    def __post_init__(self) -> None:
        if len(self.type_code) != 21:
            raise InputError(
                "证照类型代码应为 21 位",
                field="type_code",
                value=self.type_code,
                fix="类型代码由定义该证照类型的机构代码加 3 位数字组成",
            )
        if not _SERIAL.fullmatch(self.serial):
            raise InputError(
                "流水号应为 7 至 32 位大写字母或数字",
                field="serial",
                value=self.serial,
            )
        if not 1 <= self.version <= 999:
            raise InputError(
                "版本号应在 001 至 999 之间", field="version", value=self.version
            )

    @property
    def body(self) -> str:
        return f"{self.type_code}{self.issuer_code}{self.serial}{self.version:03d}"

    @property
    def check_char(self) -> str:
        return mod_37_36_check_char(self.body)

    def __str__(self) -> str:
        return ".".join(
            (
                ELICENSE_ROOT,
                self.type_code,
                self.issuer_code,
                self.serial,
                f"{self.version:03d}",
                self.check_char,
            )
        )

    def with_version(self, version: int) -> ElicenseIdentifier:
        return ElicenseIdentifier(self.type_code, self.issuer_code, self.serial, version)


@dataclass(frozen=True)
class ParsedIdentifier:
    """An identifier read from outside, with the outcome of its check."""

    identifier: ElicenseIdentifier
    check_char_found: str

    @property
    def check_char_matches(self) -> bool:
        return self.check_char_found == self.identifier.check_char


def parse_elicense_id(value: str, field: str = "elicense_id") -> ParsedIdentifier:
    """Split an identifier into its parts without rejecting a check mismatch.

    At least one vendor computes a different check character, so a verifier
    reading foreign identifiers must warn on a mismatch rather than reject:
    callers read :attr:`ParsedIdentifier.check_char_matches`.
    """
    text = normalize_code(value)
    prefix = ELICENSE_ROOT + "."
    if not text.startswith(prefix):
        raise InputError(
            f"电子证照标识应以 {ELICENSE_ROOT} 开头", field=field, value=value
        )
    parts = text[len(prefix):].split(".")
    if len(parts) != 5 or not _VERSION.fullmatch(parts[3]) or len(parts[4]) != 1:
        raise InputError(
            "电子证照标识应为 根.类型代码.颁发机构代码.流水号.版本号.校验位",
            field=field,
            value=value,
        )
    type_code, issuer, serial, version, check = parts
    identifier = ElicenseIdentifier(type_code, issuer, serial, int(version))
    return ParsedIdentifier(identifier, check)
