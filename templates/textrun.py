"""Lay out and draw lines of text with font fallback, shaping and ActualText.

A line is split into runs of one font each. Mongolian runs are shaped with
HarfBuzz and drawn glyph by glyph at the shaped positions; other runs are
drawn as plain strings. Every drawn line or paragraph sits inside a
``/Span`` marked-content sequence whose ``/ActualText`` is the input string,
so text extraction returns the input and not private-use code points.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from reportlab.pdfgen.canvas import Canvas

from templates import embedding, fontset, mongolian
from templates.fontset import Face, FontFile

# Characters that must not start a line (GB/T 15834 punctuation rules).
NO_LINE_START = set("，。；：、？！）》」』】〕〉”’%,.;:!?)")
# Characters that must not end a line.
NO_LINE_END = set("（《「『【〔〈“‘(")


@dataclass(frozen=True)
class Glyph:
    """A glyph placed on a line, ``x``/``y`` in points from the line origin."""

    font: FontFile
    code: int
    x: float
    y: float
    # True when the glyph sits where the previous glyph's advance in the same
    # font leaves the pen, so the PDF text position needs no move.
    follows: bool = False


@dataclass(frozen=True)
class Line:
    """A laid-out line of text in one size."""

    text: str
    size: float
    glyphs: tuple[Glyph, ...]
    width: float
    char_space: float = 0.0

    def __hash__(self) -> int:
        # Lines are cache keys of glyph_operators; hashing every glyph on each
        # lookup cost more than drawing a short line.
        cached = self.__dict__.get("_hash")
        if cached is None:
            fields = (self.text, self.size, self.glyphs, self.width, self.char_space)
            cached = hash(fields)
            object.__setattr__(self, "_hash", cached)
        return cached


def layout_line(
    text: str, face: Face, size: float, field: str, char_space: float = 0.0
) -> Line:
    """Place every glyph of ``text``; raise if a character has no glyph."""
    glyphs: list[Glyph] = []
    pen = 0.0
    for font, run in fontset.split_runs(text, face, field):
        if font is fontset.MONGOLIAN:
            pen = _place_shaped(run, font, size, pen, char_space, glyphs)
        else:
            pen = _place_plain(run, font, size, pen, char_space, glyphs)
    width = pen - char_space if glyphs else 0.0
    return Line(text, size, tuple(glyphs), width, char_space)


def _place_plain(
    run: str, font: FontFile, size: float, pen: float, space: float, out: list[Glyph]
) -> float:
    for index, char in enumerate(run):
        follows = index > 0 and space == 0.0
        out.append(Glyph(font, ord(char), pen, 0.0, follows))
        pen += fontset.font_advance(font, char) * size + space
    return pen


def _place_shaped(
    run: str, font: FontFile, size: float, pen: float, space: float, out: list[Glyph]
) -> float:
    tt_font = fontset.load_font(font)
    scale = size / mongolian.units_per_em(font)
    for glyph in mongolian.shape(run, font):
        code = fontset.glyph_code(tt_font, glyph.glyph_id)
        out.append(
            Glyph(font, code, pen + glyph.x_offset * scale, glyph.y_offset * scale)
        )
        pen += glyph.x_advance * scale + space
    return pen


def line_width(text: str, face: Face, size: float, field: str) -> float:
    return layout_line(text, face, size, field).width


def wrap(text: str, face: Face, size: float, width: float, field: str) -> list[str]:
    """Break CJK text into lines no wider than ``width`` points.

    Breaks fall between any two characters, also inside Latin words, except
    that closing punctuation never starts a line and opening punctuation never
    ends one: the character before the break then moves down too. Widths are
    unshaped, so Mongolian text must not be wrapped here.
    """
    fontset.check_coverage(text, face, field)
    lines: list[str] = []
    current = ""
    current_width = 0.0
    for char in text:
        _, advance = fontset.char_advance(char, face)
        advance *= size
        if current and current_width + advance > width:
            current, carried = _split_before_punctuation(current, char)
            lines.append(current)
            current = carried
            current_width = line_width(current, face, size, field) if current else 0.0
        current += char
        current_width += advance
    if current:
        lines.append(current)
    return lines


def _split_before_punctuation(line: str, next_char: str) -> tuple[str, str]:
    moves_down = next_char in NO_LINE_START or line[-1] in NO_LINE_END
    if moves_down and len(line) > 1:
        return line[:-1], line[-1]
    return line, ""


def begin_actual_text(canvas: Canvas, text: str) -> None:
    """Open a marked-content span whose extracted text is ``text``."""
    encoded = ("\ufeff" + text).encode("utf-16-be").hex().upper()
    canvas.addLiteral(f"/Span <</ActualText <{encoded}>>> BDC")


def end_actual_text(canvas: Canvas) -> None:
    canvas.addLiteral("EMC")


def draw_line(
    canvas: Canvas, line: Line, x: float, y: float, *, vertical: bool = False
) -> None:
    """Draw a line with its baseline origin at (x, y), inside its own span.

    A vertical line is the horizontal line turned 90° clockwise, so it runs
    from top to bottom with the tops of the glyphs facing right.
    """
    begin_actual_text(canvas, line.text)
    draw_glyphs(canvas, line, x, y, vertical=vertical)
    end_actual_text(canvas)


def draw_columns(
    canvas: Canvas, lines: list[Line], x: float, top: float, column_width: float
) -> None:
    """Draw lines as vertical columns, left to right, each read top to bottom.

    Column ``i`` has its baseline at ``x + i * column_width``; the glyphs of a
    turned line extend to the right of their baseline.
    """
    for index, line in enumerate(lines):
        draw_line(canvas, line, x + index * column_width, top, vertical=True)


def draw_glyphs(
    canvas: Canvas, line: Line, x: float, y: float, *, vertical: bool = False
) -> None:
    """Draw the glyphs of a line without a span of its own.

    The operators of a line at a position do not depend on the document, so
    labels and other fixed text are encoded once per process.
    """
    operators, used = glyph_operators(line, round(x, 3), round(y, 3), vertical)
    fonts = embedding.document_fonts(canvas)
    for font, glyphs in used:
        fonts.use(font, glyphs)
    canvas.addLiteral(operators)


@functools.lru_cache(maxsize=1024)
def glyph_operators(
    line: Line, x: float, y: float, vertical: bool
) -> tuple[str, tuple[tuple[FontFile, tuple[tuple[int, int], ...]], ...]]:
    """Return the text operators of a line and the glyphs they use, per font.

    Shaped glyphs are each placed with their own text matrix; runs of plain
    glyphs share one matrix and one ``Tj`` per font.
    """
    operators = ["BT"]
    current_font = None
    pending: list[int] = []
    used: dict[FontFile, list[tuple[int, int]]] = {}
    for glyph in line.glyphs:
        glyph_id = _glyph_id(glyph)
        used.setdefault(glyph.font, []).append((glyph_id, glyph.code))
        moves = not glyph.follows
        if (moves or glyph.font is not current_font) and pending:
            operators.append(_show(pending))
            pending = []
        if moves:
            operators.append(_matrix(x, y, glyph.x, glyph.y, vertical))
        if glyph.font is not current_font:
            operators.append(
                f"{embedding.resource_name(glyph.font)} {line.size:.2f} Tf"
            )
            current_font = glyph.font
        pending.append(glyph_id)
    if pending:
        operators.append(_show(pending))
    operators.append("ET")
    fonts = tuple((font, tuple(glyphs)) for font, glyphs in used.items())
    return "\n".join(operators), fonts


def _show(glyph_ids: list[int]) -> str:
    return f"<{struct.pack(f'>{len(glyph_ids)}H', *glyph_ids).hex()}> Tj"


def _matrix(x: float, y: float, dx: float, dy: float, vertical: bool) -> str:
    if vertical:
        return f"0 -1 1 0 {x + dy:.3f} {y - dx:.3f} Tm"
    return f"1 0 0 1 {x + dx:.3f} {y + dy:.3f} Tm"


def _glyph_id(glyph: Glyph) -> int:
    glyph_id = fontset.load_font(glyph.font).face.charToGlyph.get(glyph.code)
    if not glyph_id:
        # Never draw glyph 0 (the empty box) without a trace.
        raise fontset.missing_glyph_error(chr(glyph.code), "text", chr(glyph.code))
    return glyph_id
