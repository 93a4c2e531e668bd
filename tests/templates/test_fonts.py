"""Shipped fonts: format, licences, size and coverage of the sample data."""

from __future__ import annotations

import json

import pytest
from fontTools.ttLib import TTCollection, TTFont

from common.errors import InputError
from templates import fontset
from templates.fontset import Face
from tests.templates.conftest import read_samples

MAX_TOTAL_BYTES = 60 * 1024 * 1024


def open_font(font: fontset.FontFile) -> TTFont:
    path = fontset.FONT_DIR / font.file
    if path.suffix == ".ttc":
        return TTCollection(path, lazy=True).fonts[font.subfont_index]
    return TTFont(path, lazy=True)


@pytest.mark.parametrize("font", fontset.ALL_FONTS, ids=lambda f: f.file)
def test_font_has_truetype_outlines(font):
    tt_font = open_font(font)
    assert "glyf" in tt_font
    assert "CFF " not in tt_font


def test_every_font_file_has_licence():
    readme = (fontset.FONT_DIR / "README.md").read_text(encoding="utf-8")
    for font in fontset.ALL_FONTS:
        assert font.file in readme
    licences = sorted(path.name for path in fontset.FONT_DIR.glob("LICENSE-*"))
    assert "LICENSE-arphic-uming.txt" in licences
    assert "LICENSE-hanazono.txt" in licences
    assert "LICENSE-noto.txt" in licences
    assert "LICENSE-wqy-microhei.txt" in licences


def test_fonts_total_size_is_modest():
    total = sum(path.stat().st_size for path in fontset.FONT_DIR.iterdir())
    assert total < MAX_TOTAL_BYTES


def test_every_sample_character_has_glyph():
    characters = set()
    for record in read_samples():
        for value in record.values():
            if isinstance(value, str):
                characters |= set(value)
    missing = [c for c in characters if fontset.font_for_char(c, Face.SANS) is None]
    assert missing == []


@pytest.mark.parametrize(
    ("char", "font"),
    [
        ("营", fontset.SANS),
        ("䶮", fontset.HAN_EXT_A),
        ("㛃", fontset.HAN_EXT_A),
        ("𠀾", fontset.HAN_EXT_B),
        ("\u1830", fontset.MONGOLIAN),
    ],
)
def test_fallback_order(char, font):
    face = Face.MONGOLIAN if font is fontset.MONGOLIAN else Face.SANS
    assert fontset.font_for_char(char, face) is font


def test_title_font_falls_back_outside_gb2312():
    assert fontset.font_for_char("营", Face.SERIF) is fontset.SERIF
    assert fontset.font_for_char("營", Face.SERIF) is fontset.SANS
    assert fontset.font_for_char("䶮", Face.SERIF) is fontset.HAN_EXT_A


def test_missing_character_names_code_point():
    with pytest.raises(InputError) as raised:
        fontset.check_coverage("张\U0002a6d6\U00030000", Face.SANS, "operator")
    assert raised.value.field == "operator"
    assert "U+30000" in str(raised.value)


def test_split_runs_groups_fonts():
    runs = fontset.split_runs("李㛃张𠀾", Face.SANS, "name")
    assert [(font.name, text) for font, text in runs] == [
        (fontset.SANS.name, "李"),
        (fontset.HAN_EXT_A.name, "㛃"),
        (fontset.SANS.name, "张"),
        (fontset.HAN_EXT_B.name, "𠀾"),
    ]


def test_unencoded_mongolian_glyphs_mapped():
    face = fontset.load_font(fontset.MONGOLIAN).face
    for glyph_id in range(1, len(face.hmetrics)):
        assert glyph_id in face.glyphToChar


def test_sample_file_is_json_lines():
    assert all(isinstance(record, dict) for record in read_samples())
    assert json.dumps(read_samples()[0], ensure_ascii=False)
