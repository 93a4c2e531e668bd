"""Mongolian terms, composition of authority names and shaping."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import uharfbuzz as hb
from reportlab.pdfgen.canvas import Canvas

from common.errors import InputError
from templates import fontset, render_license, textrun
from templates.fontset import Face
from templates.mongolian import (
    _term_from_row,
    authority_name_mn,
    date_mn,
    load_terms,
    shape,
    term_mn,
)
from tests.templates.conftest import make_face
from tests.templates.pdfcontent import drawn_code_points

MONGOLIAN_FONT = fontset.FONT_DIR / fontset.MONGOLIAN.file


def harfbuzz_glyph_ids(text: str) -> list[int]:
    """Shape ``text`` with HarfBuzz directly, without the product's code."""
    font = hb.Font(hb.Face(hb.Blob(MONGOLIAN_FONT.read_bytes())))
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    buffer.direction = "ltr"
    hb.shape(font, buffer, {})
    return [info.codepoint for info in buffer.glyph_infos]


def glyph_ids_in_pdf(pdf: bytes) -> list[int]:
    char_to_glyph = fontset.load_font(fontset.MONGOLIAN).face.charToGlyph
    return [char_to_glyph[point] for point in drawn_code_points(pdf, "Mongolian")]


def draw_one_line(text: str, vertical: bool) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1, initialFontName=fontset.initial_font_name())
    with fontset.RENDER_LOCK:
        line = textrun.layout_line(text, Face.MONGOLIAN, 14.0, "test")
        textrun.draw_line(canvas, line, 100.0, 700.0, vertical=vertical)
        canvas.showPage()
        canvas.save()
    return buffer.getvalue()


MONGOLIAN_SAMPLES = ["内蒙古自治区", "月", "人民政府", "锡林郭勒盟", "名称"]


@pytest.mark.parametrize("chinese", MONGOLIAN_SAMPLES)
@pytest.mark.parametrize("vertical", [False, True])
def test_drawn_glyphs_equal_harfbuzz(chinese, vertical):
    text = term_mn(chinese)
    pdf = draw_one_line(text, vertical)
    assert glyph_ids_in_pdf(pdf) == harfbuzz_glyph_ids(text)


def test_columns_glyphs_equal_harfbuzz():
    words = [term_mn("内蒙古自治区"), term_mn("人民政府")]
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1, initialFontName=fontset.initial_font_name())
    with fontset.RENDER_LOCK:
        lines = [textrun.layout_line(w, Face.MONGOLIAN, 12.0, "test") for w in words]
        textrun.draw_columns(canvas, lines, 100.0, 700.0, 18.0)
        canvas.showPage()
        canvas.save()
    expected = harfbuzz_glyph_ids(words[0]) + harfbuzz_glyph_ids(words[1])
    assert glyph_ids_in_pdf(buffer.getvalue()) == expected


def test_license_glyphs_equal_harfbuzz(catalogue, sample_by_type):
    record = sample_by_type["business_license"]
    face = make_face(record, seal=False)
    pdf = render_license(catalogue.get("business_license"), record, face).pdf
    expected = harfbuzz_glyph_ids(term_mn("名称")) + harfbuzz_glyph_ids(term_mn("类型"))
    date_runs = fontset.split_runs(date_mn(face.issued_on), Face.MONGOLIAN, "date")
    for font, run in date_runs:
        if font is fontset.MONGOLIAN:
            expected += harfbuzz_glyph_ids(run)
    assert glyph_ids_in_pdf(pdf) == expected


def test_shaping_joins_letters():
    text = term_mn("内蒙古自治区")
    glyphs = shape(text)
    isolated = [
        fontset.load_font(fontset.MONGOLIAN).face.charToGlyph[ord(c)] for c in text
    ]
    assert [g.glyph_id for g in glyphs] != isolated
    assert all(glyph.x_advance >= 0 for glyph in glyphs)


def test_table_keeps_vowel_separator():
    assert term_mn("月") == "\u1830\u1820\u1837\u180e\u1820"


def test_lost_vowel_separator_rejected():
    row = {
        "chinese": "月",
        "mongolian": "\u1830\u1820\u1837\u1820",
        "codepoints": "U+1830 U+1820 U+1837 U+180E U+1820",
        "needs_review": "no",
        "confidence": "HIGH",
    }
    with pytest.raises(InputError, match="月"):
        _term_from_row(row, "test.tsv")


def test_table_text_matches_code_points():
    for term in load_terms().values():
        if term.mongolian:
            assert all(
                0x1800 <= ord(c) <= 0x18AF or c in " \u202f" for c in term.mongolian
            )


def test_not_found_terms_have_no_text():
    terms = load_terms()
    for chinese in ("市场监督管理局", "营业执照", "经营范围", "统一社会信用代码"):
        assert terms[chinese].mongolian is None
        assert terms[chinese].needs_review


def test_low_confidence_terms_need_review():
    terms = load_terms()
    assert terms["名称"].mongolian
    assert terms["名称"].needs_review
    assert not terms["年"].needs_review


def test_authority_name_single_term():
    assert (
        authority_name_mn("呼和浩特市")
        == "\u182c\u1825\u182c\u1821\u182c\u1823\u1832\u1820"
    )


def test_authority_name_composed():
    name = authority_name_mn("内蒙古自治区人民政府")
    assert name == f"{term_mn('内蒙古自治区')} {term_mn('人民政府')}"


def test_authority_name_unknown_part():
    assert authority_name_mn("呼和浩特市市场监督管理局") is None
    assert authority_name_mn("锡林郭勒盟锡林浩特市") is None
    assert authority_name_mn("") is None


def test_date_in_mongolian():
    text = date_mn(dt.date(2024, 5, 1))
    assert text.startswith("2024 \u1823\u1828 5 ")
    assert text.endswith(" 1 \u1821\u1833\u1826\u1837")
