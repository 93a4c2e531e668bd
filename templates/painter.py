"""Draw text lines on a canvas and record the box each one occupies."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from reportlab.pdfgen.canvas import Canvas

from templates import fontset, mongolian, textrun
from templates.fontset import Face
from templates.page import Box

# Share of the font size above and below the baseline that glyphs reach:
# CJK glyphs of WenQuanYi, and Noto Sans Mongolian shaped horizontally.
ASCENT = 0.9
DESCENT = 0.25
MONGOLIAN_ASCENT = 1.0
MONGOLIAN_DESCENT = 0.3


@functools.lru_cache(maxsize=4096)
def cached_line(
    text: str, face: Face, size: float, field_name: str, char_space: float = 0.0
) -> textrun.Line:
    """Lay out a line once per process; labels and titles repeat on every render."""
    return textrun.layout_line(text, face, size, field_name, char_space)


def fit_line(
    text: str, face: Face, size: float, width: float, field_name: str, min_size: float
) -> textrun.Line:
    """Lay out ``text`` at ``size``, shrinking it until it fits ``width``."""
    line = cached_line(text, face, size, field_name)
    while line.width > width and size > min_size:
        size = max(min_size, round(size - 0.5, 2))
        line = cached_line(text, face, size, field_name)
    return line


def mongolian_label(
    chinese: str, table: str, size: float, width: float
) -> textrun.Line | None:
    """Lay out the Mongolian form of a term, or None when the table has none."""
    text = mongolian.term_mn(chinese, table)
    if text is None:
        return None
    return fit_line(text, Face.MONGOLIAN, size, width, "mongolian", 5.0)


def column_width(size: float) -> float:
    """Return the width of a vertical Mongolian column at ``size`` points."""
    return (MONGOLIAN_ASCENT + MONGOLIAN_DESCENT) * size


@dataclass
class Painter:
    """A canvas plus the boxes of everything drawn on it."""

    canvas: Canvas
    page: int = 0
    boxes: list[Box] = field(default_factory=list)

    def line(self, line: textrun.Line, x: float, baseline: float, name: str) -> Box:
        textrun.draw_line(self.canvas, line, x, baseline)
        return self.record(name, x, baseline, line)

    def column(self, line: textrun.Line, x: float, top: float, name: str) -> Box:
        """Draw a Mongolian line as a vertical column read top to bottom.

        ``x`` is the left edge of the column. The line is turned 90°
        clockwise, so the tops of the glyphs face right.
        """
        baseline_x = x + MONGOLIAN_DESCENT * line.size
        textrun.draw_line(self.canvas, line, baseline_x, top, vertical=True)
        box = Box(
            self.page, name, x, top - line.width, x + column_width(line.size), top
        )
        self.boxes.append(box)
        return box

    def centered(
        self, line: textrun.Line, center: float, baseline: float, name: str
    ) -> Box:
        return self.line(line, center - line.width / 2, baseline, name)

    def paragraph(
        self, lines: list[textrun.Line], x: float, baselines: list[float], name: str
    ) -> None:
        """Draw wrapped lines in one span, so their text extracts unbroken."""
        textrun.begin_actual_text(self.canvas, "".join(line.text for line in lines))
        for line, baseline in zip(lines, baselines, strict=True):
            textrun.draw_glyphs(self.canvas, line, x, baseline)
            self.record(name, x, baseline, line)
        textrun.end_actual_text(self.canvas)

    def record(self, name: str, x: float, baseline: float, line: textrun.Line) -> Box:
        ascent, descent = ASCENT, DESCENT
        if any(glyph.font is fontset.MONGOLIAN for glyph in line.glyphs):
            ascent, descent = MONGOLIAN_ASCENT, MONGOLIAN_DESCENT
        box = Box(
            self.page,
            name,
            x,
            baseline - descent * line.size,
            x + line.width,
            baseline + ascent * line.size,
        )
        self.boxes.append(box)
        return box

    def add_box(self, box: Box) -> Box:
        self.boxes.append(box)
        return box

    def next_page(self) -> None:
        self.canvas.showPage()
        self.page += 1


def union(name: str, boxes: list[Box]) -> Box:
    """Return the smallest box around ``boxes`` (all on one page)."""
    return Box(
        boxes[0].page,
        name,
        min(box.x0 for box in boxes),
        min(box.y0 for box in boxes),
        max(box.x1 for box in boxes),
        max(box.y1 for box in boxes),
    )
