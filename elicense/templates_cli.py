"""``elicense templates``: list the license templates and preview a face.

A preview is rendered without a seal and without signing. Its identifier
and QR text are dummies, and the page carries a preview notice in place of
the copy label, so it cannot pass for an issued license.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from common.errors import InputError
from elicense.cli_support import reports_errors

if TYPE_CHECKING:
    from templates import FaceContext, LicenseTemplate
    from templates.mongolian import MongolianTerm

logger = logging.getLogger(__name__)

PREVIEW_LABEL = "预览件 不作为证照使用"
PREVIEW_QR_TEXT = "HTTP://127.0.0.1/V/PREVIEW-NOT-A-LICENSE"
PREVIEW_SERIAL = "PREVIEW"
PREVIEW_DPI = 150


@click.group("templates")
def templates_group() -> None:
    """查看证照模板，生成不签名的样张。"""


@templates_group.command("list")
@reports_errors
def list_templates() -> None:
    """列出证照类型、名称、目录代码、签名级别和待审核的蒙古文术语。"""
    from templates import load_catalogue
    from templates.mongolian import load_terms

    for template in load_catalogue():
        click.echo(
            f"{template.license_type}\t{template.title}\t"
            f"{template.catalogue_code}\t{template.signature_level}"
        )
        for term in _terms_of(template, load_terms(template.mongolian_terms)):
            click.echo(f"  待审核蒙古文：{term}")


def _terms_of(
    template: LicenseTemplate, terms: Mapping[str, MongolianTerm]
) -> list[str]:
    """Return the face terms of a template whose Mongolian needs review."""
    from templates.sections import face_terms

    lines = []
    for chinese in face_terms(template):
        term = terms.get(chinese)
        if term is None:
            lines.append(f"{chinese}（术语表中没有，不印蒙古文）")
        elif term.mongolian is None:
            lines.append(f"{chinese}（无公开来源，不印蒙古文）")
        elif term.needs_review:
            lines.append(f"{chinese} = {term.mongolian}（{term.confidence}）")
    return lines


@templates_group.command("preview")
@click.argument("license_type")
@click.argument(
    "record_file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("preview.pdf"),
    show_default=True,
    help="输出文件；以 .png 结尾时输出第 1 页的 150 dpi 图片，否则输出 PDF。",
)
@reports_errors
def preview(license_type: str, record_file: Path, out: Path) -> None:
    """按模板渲染 RECORD_FILE（一条 JSON 记录）的样张，不盖章、不签名。"""
    from templates import load_catalogue, preview_png, render_license

    template = load_catalogue().get(license_type)
    record = _read_record(record_file)
    rendered = render_license(template, record, _preview_face(template, record))
    data = rendered.pdf
    if out.suffix.lower() == ".png":
        data = preview_png(rendered.pdf, dpi=PREVIEW_DPI)
    out.write_bytes(data)
    logger.debug("wrote preview of %s to %s", license_type, out)
    click.echo(f"样张：{out}（{rendered.pages} 页，{len(data)} 字节）")


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"记录文件 {path} 不是有效的 UTF-8 JSON：{error}",
            field="record_file",
            value=str(path),
            fix="请提供一条 JSON 对象记录，例如 examples/licenses-sample.jsonl 中的一行",
        ) from None
    if not isinstance(record, dict):
        raise InputError(
            f"记录文件 {path} 应包含一个 JSON 对象，实际是 {type(record).__name__}",
            field="record_file",
            value=str(path),
            fix="请只放一条记录，不要用数组",
        )
    return record


def _preview_face(template: LicenseTemplate, record: dict) -> FaceContext:
    from templates import FaceContext

    issued_on = record.get("issued_on")
    try:
        day = dt.date.fromisoformat(str(issued_on))
    except ValueError:
        day = dt.date.today()
    authority_code = str(record.get("authority_code", ""))
    return FaceContext(
        elicense_id=(
            f"1.2.156.3005.2.{template.catalogue_code}.{authority_code}."
            f"{PREVIEW_SERIAL}.001.X"
        ),
        version=1,
        qr_text=PREVIEW_QR_TEXT,
        authority_name=str(record.get("authority_name", "")),
        authority_code=authority_code,
        authority_region=str(record.get("authority_region", "")),
        issued_on=day,
        seal=None,
        copy_label=PREVIEW_LABEL,
    )
