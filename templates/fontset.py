"""Fonts shipped in ``templates/fonts`` and the fallback chains that use them.

Each chain lists fonts in order of preference. A character goes to the first
font whose character map contains it. A character no shipped font contains
raises :class:`InputError` before anything is drawn, because reportlab would
otherwise draw glyph 0 (the empty box) without any error.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from common.errors import InputError

logger = logging.getLogger(__name__)

FONT_DIR = Path(__file__).resolve().parent / "fonts"

# Every render holds this lock, because it swaps reportlab's global stream
# settings (see page.plain_flate_streams).
RENDER_LOCK = threading.RLock()

# First private-use code point given to glyphs that have no character of their
# own (Mongolian positional forms), so every drawn glyph has a code point.
PRIVATE_USE_START = 0xE000
PRIVATE_USE_END = 0xF8FF


@dataclass(frozen=True)
class FontFile:
    """A font file in ``templates/fonts`` and its reportlab name."""

    name: str
    file: str
    subfont_index: int = 0


SANS = FontFile("ElicenseSans", "wqy-microhei.ttc")
SERIF = FontFile("ElicenseSerif", "UMingCN-GB2312.ttf")
HAN_EXT_A = FontFile("ElicenseHanA", "HanaMinA-Fallback.ttf")
HAN_EXT_B = FontFile("ElicenseHanB", "HanaMinB-ExtB.ttf")
MONGOLIAN = FontFile("ElicenseMongolian", "NotoSansMongolian-Regular.ttf")

ALL_FONTS = (SANS, SERIF, HAN_EXT_A, HAN_EXT_B, MONGOLIAN)


class Face(enum.Enum):
    """A typeface role on the license face, mapped to a fallback chain."""

    SANS = "sans"
    SERIF = "serif"
    MONGOLIAN = "mongolian"

    @property
    def chain(self) -> tuple[FontFile, ...]:
        return FALLBACK_CHAINS[self]


FALLBACK_CHAINS = {
    Face.SANS: (SANS, HAN_EXT_A, HAN_EXT_B),
    Face.SERIF: (SERIF, SANS, HAN_EXT_A, HAN_EXT_B),
    Face.MONGOLIAN: (MONGOLIAN, SANS, HAN_EXT_A, HAN_EXT_B),
}


_loaded: dict[FontFile, TTFont] = {}


def load_font(font: FontFile) -> TTFont:
    """Load and register one shipped font; later calls reuse the object."""
    loaded = _loaded.get(font)
    if loaded is not None:
        return loaded
    with RENDER_LOCK:
        if font not in _loaded:
            _loaded[font] = _read_font(font)
        return _loaded[font]


def _read_font(font: FontFile) -> TTFont:
    path = FONT_DIR / font.file
    if not path.is_file():
        raise InputError(
            f"字体文件 {path} 不存在",
            field="font",
            value=font.file,
            fix="请重新安装软件包，或运行 templates/fonts/build_subsets.py 生成子集字体",
        )
    tt_font = TTFont(font.name, str(path), subfontIndex=font.subfont_index)
    if font is MONGOLIAN:
        _map_unencoded_glyphs(tt_font)
    pdfmetrics.registerFont(tt_font)
    logger.debug("loaded font %s from %s", font.name, path)
    return tt_font


def _map_unencoded_glyphs(tt_font: TTFont) -> None:
    """Give every glyph without a character a private-use code point.

    Shaping returns positional forms that no character maps to; reportlab can
    only embed glyphs it reaches through a character. Assigning the code
    points once, in glyph order, keeps the PDF bytes independent of which
    licenses a process rendered before.
    """
    face = tt_font.face
    code = PRIVATE_USE_START
    for glyph_id in range(1, len(face.hmetrics)):
        if glyph_id in face.glyphToChar:
            continue
        while code in face.charToGlyph:
            code += 1
        if code > PRIVATE_USE_END:
            raise InputError(
                f"字体 {tt_font.fontName} 的未编码字形多于私用区容量",
                field="font",
                value=tt_font.fontName,
                fix="请换用字形更少的蒙古文字体",
            )
        face.charToGlyph[code] = glyph_id
        face.glyphToChar[glyph_id] = [code]
        face.charWidths[code] = tt_font.pdfScale(face.hmetrics[glyph_id][0])
        code += 1


def glyph_code(tt_font: TTFont, glyph_id: int) -> int:
    """Return the code point reportlab must be given to draw ``glyph_id``."""
    codes = tt_font.face.glyphToChar.get(glyph_id)
    if not codes:
        raise InputError(
            f"字体 {tt_font.fontName} 中没有字形 {glyph_id}",
            field="font",
            value=glyph_id,
            fix="字形编号应来自同一字体的排版结果",
        )
    return min(codes)


def initial_font_name() -> str:
    """Return the font a new canvas should start with, loading it first.

    reportlab's default (Helvetica) is never embedded; starting with a shipped
    font keeps unembedded fonts out of the PDF.
    """
    return load_font(SANS).fontName


def load_all() -> None:
    """Load every shipped font, so the first render does not pay for it."""
    for font in ALL_FONTS:
        load_font(font)


@functools.lru_cache(maxsize=65536)
def font_for_char(char: str, face: Face) -> FontFile | None:
    """Return the first font of the chain that has ``char``, or None."""
    code = ord(char)
    for font in face.chain:
        if load_font(font).face.charToGlyph.get(code):
            return font
    return None


@functools.lru_cache(maxsize=65536)
def char_advance(char: str, face: Face) -> tuple[FontFile, float] | None:
    """Return the font that draws ``char`` and its advance width at 1 pt."""
    font = font_for_char(char, face)
    if font is None:
        return None
    return font, font_advance(font, char)


@functools.lru_cache(maxsize=65536)
def font_advance(font: FontFile, char: str) -> float:
    """Return the advance width of ``char`` in ``font`` at 1 pt."""
    return load_font(font).face.getCharWidth(ord(char)) / 1000.0


def split_runs(text: str, face: Face, field: str) -> list[tuple[FontFile, str]]:
    """Split text into runs of one font each, or raise naming the code point."""
    runs: list[tuple[FontFile, str]] = []
    for char in text:
        font = font_for_char(char, face)
        if font is None:
            raise missing_glyph_error(char, field, text)
        if runs and runs[-1][0] is font:
            runs[-1] = (font, runs[-1][1] + char)
        else:
            runs.append((font, char))
    return runs


def check_coverage(text: str, face: Face, field: str) -> None:
    """Raise :class:`InputError` if any character of ``text`` has no glyph."""
    for char in text:
        if font_for_char(char, face) is None:
            raise missing_glyph_error(char, field, text)


def missing_glyph_error(char: str, field: str, text: str) -> InputError:
    code_point = f"U+{ord(char):04X}"
    return InputError(
        f"字段 {field} 含有随附字体都没有的字符 {char}（{code_point}）",
        field=field,
        value=text,
        fix=f"请改用规范汉字，或在 templates/fonts 中加入含有 {code_point} 的字体",
    )
