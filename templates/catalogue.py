"""License templates read from ``templates/types/*.toml`` and their catalogue."""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.codes import validate_uscc
from common.errors import InputError
from templates import mongolian
from templates.schema import ENVELOPE_FIELDS, ENVELOPE_NAMES, FieldSpec, FieldType

logger = logging.getLogger(__name__)

TYPES_DIR = Path(__file__).resolve().parent / "types"
HOLDER_CODE_TYPES = {"001": FieldType.USCC, "111": FieldType.CITIZEN_ID}
SIGNATURE_LEVELS = frozenset({"B-B", "B-T", "B-LT", "B-LTA"})
TERM_ITEM = "term"
MONGOLIAN_DIRECTIONS = frozenset({"vertical", "horizontal"})


@dataclass(frozen=True)
class FaceLayout:
    """Content and order of the copy face; positions are computed at render time."""

    holder_code_label: str
    rows: tuple[tuple[str, ...], ...]
    block: str | None
    authority_label: str
    term_label: str | None = None
    qr_caption: str = ""
    footer: str = ""
    # How Mongolian labels and the Mongolian title are set: "vertical"
    # columns where they fit, or "horizontal" lines above the Chinese.
    mongolian_direction: str = "vertical"


@dataclass(frozen=True)
class LicenseTemplate:
    """A license type: identity in the catalogue, field schema and face layout."""

    license_type: str
    title: str
    catalogue_code: str
    holder_code_field: str
    holder_code_type: str
    holder_name_field: str
    valid_from_field: str
    valid_to_field: str | None
    signature_level: str
    fields: tuple[FieldSpec, ...]
    face: FaceLayout
    # Term table in templates/data with the Mongolian forms of the labels.
    mongolian_terms: str = mongolian.DEFAULT_TERMS
    source: str = field(default="", compare=False)

    def field_spec(self, name: str) -> FieldSpec:
        for spec in (*self.fields, *ENVELOPE_FIELDS):
            if spec.name == name:
                return spec
        raise KeyError(name)

    def validate(
        self, raw: Mapping[str, object], today: dt.date | None = None
    ) -> dict[str, object]:
        """Return the normalised record, or raise :class:`InputError`.

        Codes are folded to upper-case ASCII and checked, dates become
        :class:`datetime.date`, blank strings count as missing, and an end
        date before its start date is rejected.
        """
        self._check_type(raw.get("license_type"))
        self._check_unknown_fields(raw)
        record: dict[str, object] = {}
        for spec in (*ENVELOPE_FIELDS, *self.fields):
            record[spec.name] = spec.normalize(raw.get(spec.name), today)
        self._check_term(record)
        self._check_issue_date(record, today or dt.date.today())
        return record

    def _check_unknown_fields(self, raw: Mapping[str, object]) -> None:
        """Reject fields the template does not know, such as a misspelt term_to.

        A misspelt optional field would otherwise be dropped silently and,
        for an end date, turn the license into an open-ended one.
        """
        known = ENVELOPE_NAMES | {spec.name for spec in self.fields}
        unknown = sorted(str(key) for key in raw if key not in known)
        if unknown:
            raise InputError(
                f"{self.title}没有字段 {unknown[0]}",
                field=unknown[0],
                value=raw[unknown[0]],
                fix=f"请核对字段名；可用字段：{'、'.join(sorted(known))}",
            )

    def _check_issue_date(self, record: dict[str, object], today: dt.date) -> None:
        issued_on = record.get("issued_on")
        if isinstance(issued_on, dt.date) and issued_on > today:
            spec = ENVELOPE_FIELDS[1]
            raise spec.error(
                f"{issued_on.isoformat()} 晚于今天 {today.isoformat()}",
                issued_on.isoformat(),
                "证照只能在发证当日或之后签发，请核对发证日期",
            )
        established_on = record.get("established_on")
        if (
            isinstance(issued_on, dt.date)
            and isinstance(established_on, dt.date)
            and issued_on < established_on
        ):
            # A business license is issued on the day the holder is
            # established or later, never before.
            raise self.field_spec("established_on").error(
                f"{established_on.isoformat()} 晚于发证日期 {issued_on.isoformat()}",
                established_on.isoformat(),
                "成立日期不能晚于发证日期，请核对成立日期和发证日期",
            )

    def _check_type(self, value: object) -> None:
        if value != self.license_type:
            raise InputError(
                f"证照类型 {value!r} 与模板 {self.license_type} 不符",
                field="license_type",
                value=value,
                fix=f"请按证照类型选择模板，或将 license_type 改为 {self.license_type}",
            )

    def _check_term(self, record: dict[str, object]) -> None:
        start = record.get(self.valid_from_field)
        end = record.get(self.valid_to_field) if self.valid_to_field else None
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            spec = self.field_spec(self.valid_to_field)
            raise spec.error(
                f"{end.isoformat()} 早于起始日期 {start.isoformat()}",
                end.isoformat(),
                "请核对有效期起止日期",
            )


class Catalogue:
    """All license templates, keyed by license type."""

    def __init__(self, templates: list[LicenseTemplate]) -> None:
        self._by_type = {template.license_type: template for template in templates}

    def get(self, license_type: str) -> LicenseTemplate:
        try:
            return self._by_type[license_type]
        except (KeyError, TypeError):
            known = "、".join(self.types())
            raise InputError(
                f"未知的证照类型 {license_type!r}",
                field="license_type",
                value=license_type,
                fix=f"可用的证照类型：{known}",
            ) from None

    def types(self) -> list[str]:
        return sorted(self._by_type)

    def __iter__(self):
        return iter(self._by_type[name] for name in self.types())


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Read every ``*.toml`` template of ``directory``, by default the packaged ones."""
    directory = directory or TYPES_DIR
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise InputError(
            f"目录 {directory} 中没有证照模板",
            field="directory",
            value=str(directory),
            fix="模板文件应以 .toml 结尾",
        )
    templates = [load_template(path) for path in paths]
    duplicates = _duplicate_types(templates)
    if duplicates:
        raise InputError(
            f"证照类型 {duplicates[0]} 在多个模板文件中定义",
            field="license_type",
            value=duplicates[0],
            fix="每种证照类型只保留一个模板文件",
        )
    logger.debug("loaded %d license templates from %s", len(templates), directory)
    return Catalogue(templates)


def _duplicate_types(templates: list[LicenseTemplate]) -> list[str]:
    seen: set[str] = set()
    duplicates = []
    for template in templates:
        if template.license_type in seen:
            duplicates.append(template.license_type)
        seen.add(template.license_type)
    return duplicates


def load_template(path: Path) -> LicenseTemplate:
    """Read and check one template file; raise naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        template = _template_from_data(data, str(path))
        _check_template(template)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise _template_error(path, _describe(error)) from error
    except TemplateProblem as problem:
        raise _template_error(path, str(problem)) from None
    return template


class TemplateProblem(Exception):
    """A template file is readable but inconsistent."""


def _template_error(path: Path, problem: str) -> InputError:
    return InputError(
        f"证照模板 {path} 格式错误：{problem}",
        field="template",
        value=str(path),
        fix="请对照 templates/types 中现有模板修正该文件",
    )


def _describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"缺少键 {error.args[0]!r}"
    return str(error)


def _template_from_data(data: dict, source: str) -> LicenseTemplate:
    face = data["face"]
    layout = FaceLayout(
        holder_code_label=face["holder_code_label"],
        rows=tuple(tuple(row) for row in face["rows"]),
        block=face.get("block"),
        authority_label=face["authority_label"],
        term_label=face.get("term_label"),
        qr_caption=face.get("qr_caption", ""),
        footer=face.get("footer", ""),
        mongolian_direction=face.get("mongolian_direction", "vertical"),
    )
    return LicenseTemplate(
        license_type=data["license_type"],
        title=data["title"],
        catalogue_code=data["catalogue_code"],
        holder_code_field=data["holder_code_field"],
        holder_code_type=data["holder_code_type"],
        holder_name_field=data["holder_name_field"],
        valid_from_field=data["valid_from_field"],
        valid_to_field=data.get("valid_to_field"),
        signature_level=data["signature_level"],
        fields=tuple(_field_from_data(entry) for entry in data["fields"]),
        face=layout,
        mongolian_terms=data.get("mongolian_terms", mongolian.DEFAULT_TERMS),
        source=source,
    )


def _field_from_data(entry: dict) -> FieldSpec:
    pattern = entry.get("pattern")
    return FieldSpec(
        name=entry["name"],
        label=entry["label"],
        type=FieldType(entry["type"]),
        required=bool(entry.get("required", True)),
        max_length=entry.get("max_length"),
        pattern=re.compile(pattern) if pattern else None,
        open_ended=bool(entry.get("open_ended", False)),
    )


def _check_template(template: LicenseTemplate) -> None:
    names = [spec.name for spec in template.fields]
    _require(len(names) == len(set(names)), "字段名重复")
    clash = ENVELOPE_NAMES.intersection(names)
    _require(not clash, f"字段 {sorted(clash)} 与公共字段重名")
    _require(len(template.catalogue_code) == 21, "catalogue_code 应为 21 位")
    _require(template.catalogue_code[18:].isdigit(), "catalogue_code 末 3 位应为数字")
    try:
        validate_uscc(template.catalogue_code[:18], field="catalogue_code")
    except InputError as error:
        raise TemplateProblem(f"catalogue_code 前 18 位：{error.message}") from None
    _require(template.signature_level in SIGNATURE_LEVELS, "signature_level 无效")
    try:
        mongolian.load_terms(template.mongolian_terms)
    except InputError as error:
        raise TemplateProblem(f"mongolian_terms：{error.message}") from None
    _check_holder(template, names)
    _check_term_fields(template)
    _check_layout(template, names)


def _check_holder(template: LicenseTemplate, names: list[str]) -> None:
    expected = HOLDER_CODE_TYPES.get(template.holder_code_type)
    _require(expected is not None, "holder_code_type 应为 001 或 111")
    _require(template.holder_code_field in names, "holder_code_field 不是已定义字段")
    code_spec = template.field_spec(template.holder_code_field)
    _require(
        code_spec.type is expected, "holder_code_field 的类型与 holder_code_type 不符"
    )
    _require(template.holder_name_field in names, "holder_name_field 不是已定义字段")


def _check_term_fields(template: LicenseTemplate) -> None:
    term_names = [template.valid_from_field]
    if template.valid_to_field is not None:
        term_names.append(template.valid_to_field)
    for name in term_names:
        try:
            spec = template.field_spec(name)
        except KeyError:
            raise TemplateProblem(f"有效期字段 {name} 未定义") from None
        _require(spec.type is FieldType.DATE, f"有效期字段 {name} 应为 date 类型")


def _check_layout(template: LicenseTemplate, names: list[str]) -> None:
    face = template.face
    for row in face.rows:
        _require(1 <= len(row) <= 2, "face.rows 每行应有 1 或 2 项")
        for item in row:
            known = item in names or (item == TERM_ITEM and face.term_label)
            _require(bool(known), f"face.rows 中的 {item} 不是已定义字段")
    _require(face.block is None or face.block in names, "face.block 不是已定义字段")
    _require(
        face.mongolian_direction in MONGOLIAN_DIRECTIONS,
        "face.mongolian_direction 应为 vertical 或 horizontal",
    )


def _require(condition: bool, problem: str) -> None:
    if not condition:
        raise TemplateProblem(problem)
