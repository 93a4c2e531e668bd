"""``elicense templates``: the list of templates and unsigned previews."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner
from PIL import Image

from elicense.cli import main
from tests.templates.conftest import pdf_text, require_tool


def run(*arguments: str):
    return CliRunner().invoke(main, ["templates", *arguments])


def test_list_names_types_and_codes():
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "business_license\t营业执照\t11150000MA7XQ0CB8J001\tB-LT" in result.output
    assert "food_safety_manager_certificate" in result.output


def test_list_names_terms_to_review():
    result = run("list")
    assert "名称 = ᠨᠡᠷᠡᠶᠢᠳᠦᠯ" in result.output
    assert "经营范围（无公开来源，不印蒙古文）" in result.output


def test_preview_pdf_is_marked(tmp_path, sample_by_type):
    record = tmp_path / "record.json"
    record.write_text(json.dumps(sample_by_type["business_license"]), "utf-8")
    out = tmp_path / "preview.pdf"
    result = run("preview", "business_license", str(record), "--out", str(out))
    assert result.exit_code == 0, result.output
    text = pdf_text(out.read_bytes(), tmp_path)
    assert "预览件" in text
    assert sample_by_type["business_license"]["name"] in text
    assert "PREVIEW" in text


def test_preview_png(tmp_path, sample_by_type):
    require_tool("pdftoppm")
    record = tmp_path / "record.json"
    record.write_text(json.dumps(sample_by_type["food_business_license"]), "utf-8")
    out = tmp_path / "preview.png"
    result = run("preview", "food_business_license", str(record), "--out", str(out))
    assert result.exit_code == 0, result.output
    image = Image.open(io.BytesIO(out.read_bytes()))
    assert image.size == (1241, 1754)  # A4 at 150 dpi, as pdftoppm rounds it


def test_preview_rejects_invalid_json(tmp_path):
    record = tmp_path / "record.json"
    record.write_text("{not json", "utf-8")
    result = run("preview", "business_license", str(record))
    assert result.exit_code == 1
    assert "不是有效的 UTF-8 JSON" in result.output


def test_preview_names_invalid_field(tmp_path, sample_by_type):
    raw = dict(sample_by_type["business_license"], uscc="123")
    record = tmp_path / "record.json"
    record.write_text(json.dumps(raw), "utf-8")
    result = run("preview", "business_license", str(record))
    assert result.exit_code == 1
    assert "统一社会信用代码" in result.output
    assert "18 位" in result.output
