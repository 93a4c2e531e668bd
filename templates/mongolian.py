"""Traditional Mongolian script: the term table and HarfBuzz shaping.

The term table ``data/mongolian-terms.tsv`` contains each term with its exact
code points (U+180E vowel separators and U+202F narrow no-break spaces
included). A term without a public source has no Mongolian text and is never
rendered. Every term not confirmed by several official sources is marked
``needs_review`` for a native speaker.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import uharfbuzz as hb

from common.errors import InputError
from templates import fontset

TERMS_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_TERMS = "mongolian-terms.tsv"


@dataclass(frozen=True)
class MongolianTerm:
    """A Chinese term and its Mongolian form, if one has a source."""

    chinese: str
    mongolian: str | None
    needs_review: bool
    confidence: str


@dataclass(frozen=True)
class ShapedGlyph:
    """One glyph of a shaped run, positions in font units."""

    glyph_id: int
    cluster: int
    x_advance: int
    x_offset: int
    y_offset: int


@functools.cache
def load_terms(table: str = DEFAULT_TERMS) -> dict[str, MongolianTerm]:
    """Read a term table of ``templates/data``, checking every text against
    its code points."""
    path = TERMS_DIR / table
    if not path.is_file():
        raise InputError(
            f"蒙古文术语表 {path} 不存在",
            field="mongolian_terms",
            value=table,
            fix=f"请使用 templates/data 中的术语表，例如 {DEFAULT_TERMS}",
        )
    terms: dict[str, MongolianTerm] = {}
    rows = path.read_text(encoding="utf-8").splitlines()
    for row in csv.DictReader(rows, delimiter="\t"):
        term = _term_from_row(row, table)
        terms[term.chinese] = term
    return terms


def _term_from_row(row: dict[str, str], table: str) -> MongolianTerm:
    mongolian = row["mongolian"] or None
    declared = "".join(
        chr(int(point.removeprefix("U+"), 16)) for point in row["codepoints"].split()
    )
    if (mongolian or "") != declared:
        raise InputError(
            f"蒙古文术语表 {table} 中「{row['chinese']}」的文字与其码位列不一致",
            field="mongolian",
            value=row["chinese"],
            fix="请按码位列重新录入蒙古文，保留 U+180E 和 U+202F",
        )
    needs_review = row["needs_review"] == "yes" or mongolian is None
    return MongolianTerm(row["chinese"], mongolian, needs_review, row["confidence"])


def term_mn(chinese: str, table: str = DEFAULT_TERMS) -> str | None:
    """Return the Mongolian form of a whole term, or None when it has none."""
    term = load_terms(table).get(chinese)
    return term.mongolian if term else None


def authority_name_mn(name_zh: str, table: str = DEFAULT_TERMS) -> str | None:
    """Compose a Mongolian name from table terms, or None if a part is unknown.

    The name is split greedily into the longest terms of the table (place
    names, 市, 盟, 旗, 区, 人民政府 …) and their Mongolian forms are joined
    with spaces.
    """
    terms = load_terms(table)
    parts: list[str] = []
    position = 0
    while position < len(name_zh):
        for end in range(len(name_zh), position, -1):
            term = terms.get(name_zh[position:end])
            if term is not None and term.mongolian:
                parts.append(term.mongolian)
                position = end
                break
        else:
            return None
    # NOTE: genitive suffixes (ᠤᠨ, ᠶᠢᠨ) between parts are not inserted, so a
    # name composed of several parts needs review by a native speaker.
    return " ".join(parts) if parts else None


def date_mn(day: dt.date, table: str = DEFAULT_TERMS) -> str | None:
    """Write a date with the Mongolian words for year, month and day."""
    year, month, day_word = (term_mn(word, table) for word in ("年", "月", "日"))
    if not (year and month and day_word):
        return None
    return f"{day.year} {year} {day.month} {month} {day.day} {day_word}"


@functools.cache
def _harfbuzz_font(font: fontset.FontFile) -> hb.Font:
    blob = hb.Blob((fontset.FONT_DIR / font.file).read_bytes())
    return hb.Font(hb.Face(blob, font.subfont_index))


def units_per_em(font: fontset.FontFile) -> int:
    return _harfbuzz_font(font).face.upem


@functools.lru_cache(maxsize=512)
def shape(
    text: str, font: fontset.FontFile = fontset.MONGOLIAN
) -> tuple[ShapedGlyph, ...]:
    """Shape ``text`` left to right with HarfBuzz.

    Vertical Mongolian is drawn by rotating this horizontal run 90° clockwise:
    HarfBuzz's top-to-bottom direction gave zero advances with Noto Sans
    Mongolian.
    """
    buffer = hb.Buffer()
    buffer.add_str(text)
    buffer.guess_segment_properties()
    buffer.direction = "ltr"
    hb.shape(_harfbuzz_font(font), buffer, {})
    return tuple(
        ShapedGlyph(
            info.codepoint, info.cluster, pos.x_advance, pos.x_offset, pos.y_offset
        )
        for info, pos in zip(buffer.glyph_infos, buffer.glyph_positions, strict=True)
    )
