"""A4 page geometry, the decorative frame and the PDF canvas settings."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

from reportlab import rl_config
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import TimeStamp
from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas

from templates import embedding, fontset

PAGE_WIDTH, PAGE_HEIGHT = A4
FRAME_OUTER = 24.0  # points from the page edge
FRAME_INNER = 31.0
CONTENT_LEFT = 50.0
CONTENT_RIGHT = PAGE_WIDTH - 50.0
CONTENT_TOP = PAGE_HEIGHT - 50.0
CONTENT_BOTTOM = 44.0
FRAME_COLOR = (0.66, 0.27, 0.16)
INK = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Box:
    """A rectangle on one page, in PDF points from the lower left corner."""

    page: int
    name: str
    x0: float
    y0: float
    x1: float
    y1: float

    def as_tuple(self) -> tuple[int, float, float, float, float]:
        return (self.page, self.x0, self.y0, self.x1, self.y1)

    def overlaps(self, other: Box) -> bool:
        return (
            self.page == other.page
            and self.x0 < other.x1
            and other.x0 < self.x1
            and self.y0 < other.y1
            and other.y0 < self.y1
        )


def new_canvas(buffer: io.BytesIO, created_on: dt.date) -> Canvas:
    """Create an A4 canvas whose output depends only on what is drawn.

    reportlab's invariant mode fixes the document ID; the creation date is
    set to the issue date, so rendering the same record twice gives the
    same bytes.
    """
    canvas = Canvas(
        buffer,
        pagesize=A4,
        invariant=1,
        pageCompression=1,
        initialFontName=fontset.initial_font_name(),
    )
    canvas._doc._timeStamp = _time_stamp(created_on)
    return canvas


@contextlib.contextmanager
def plain_flate_streams() -> Iterator[None]:
    """Skip reportlab's ASCII85 stream filter and compress page content harder.

    ASCII85 adds a quarter to every stream and reportlab encodes it in pure
    Python, which cost about 8 ms per license. Page streams get zlib level 9
    instead of reportlab's 6. Both settings are global, so the caller must
    hold the render lock.
    """
    saved = rl_config.useA85, pdfdoc.PDFZCompress
    rl_config.useA85 = 0
    pdfdoc.PDFZCompress = embedding.CONTENT_FLATE
    try:
        yield
    finally:
        rl_config.useA85, pdfdoc.PDFZCompress = saved


def _time_stamp(day: dt.date) -> TimeStamp:
    stamp = TimeStamp(invariant=1)
    seconds = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    stamp.t = seconds
    stamp.lt = time.gmtime(seconds)
    stamp.YMDhms = tuple(stamp.lt)[:6]
    return stamp


def draw_frame(canvas: Canvas) -> None:
    """Draw the double border with corner ornaments of a paper license."""
    canvas.saveState()
    canvas.setStrokeColorRGB(*FRAME_COLOR)
    canvas.setLineWidth(2.2)
    _rect_inset(canvas, FRAME_OUTER)
    canvas.setLineWidth(0.6)
    _rect_inset(canvas, FRAME_INNER)
    for x, y in _corners(FRAME_INNER):
        _ornament(canvas, x, y)
    canvas.restoreState()


def _rect_inset(canvas: Canvas, inset: float) -> None:
    canvas.rect(inset, inset, PAGE_WIDTH - 2 * inset, PAGE_HEIGHT - 2 * inset)


def _corners(inset: float) -> list[tuple[float, float]]:
    right, top = PAGE_WIDTH - inset, PAGE_HEIGHT - inset
    return [(inset, inset), (right, inset), (inset, top), (right, top)]


def _ornament(canvas: Canvas, x: float, y: float) -> None:
    """Draw a small diamond with a square inside at a frame corner."""
    size = 6.0
    path = canvas.beginPath()
    path.moveTo(x, y - size)
    path.lineTo(x + size, y)
    path.lineTo(x, y + size)
    path.lineTo(x - size, y)
    path.close()
    canvas.setFillColorRGB(*FRAME_COLOR)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x - 1.6, y - 1.6, 3.2, 3.2, stroke=0, fill=1)
