"""A4 page geometry, the decorative frame and the PDF canvas settings."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
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
    """Skip reportlab's ASCII85 stream filter and set the page stream zlib level.

    ASCII85 adds a quarter to every stream and reportlab encodes it in pure
    Python, which cost about 8 ms per license. Page streams are compressed
    at ``embedding.CONTENT_COMPRESSION_LEVEL``. Both settings are global, so
    the caller must hold the render lock.
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
    canvas.addLiteral(frame_operators())


@functools.cache
def frame_operators() -> str:
    """Return the frame as page operators, built once per process."""
    red, green, blue = FRAME_COLOR
    operators = [
        "q",
        f"{red} {green} {blue} RG",
        "2.2 w",
        _rect_inset(FRAME_OUTER) + " S",
        "0.6 w",
        _rect_inset(FRAME_INNER) + " S",
    ]
    for x, y in _corners(FRAME_INNER):
        operators += _ornament(x, y)
    operators.append("Q")
    return "\n".join(operators)


def _rect_inset(inset: float) -> str:
    width, height = PAGE_WIDTH - 2 * inset, PAGE_HEIGHT - 2 * inset
    return f"{inset:.2f} {inset:.2f} {width:.2f} {height:.2f} re"


def _corners(inset: float) -> list[tuple[float, float]]:
    right, top = PAGE_WIDTH - inset, PAGE_HEIGHT - inset
    return [(inset, inset), (right, inset), (inset, top), (right, top)]


def _ornament(x: float, y: float) -> list[str]:
    """Return a small diamond with a white square inside, at a frame corner."""
    size = 6.0
    red, green, blue = FRAME_COLOR
    diamond = (
        f"{x:.2f} {y - size:.2f} m {x + size:.2f} {y:.2f} l "
        f"{x:.2f} {y + size:.2f} l {x - size:.2f} {y:.2f} l h f"
    )
    return [
        f"{red} {green} {blue} rg",
        diamond,
        "1 1 1 rg",
        f"{x - 1.6:.2f} {y - 1.6:.2f} 3.2 3.2 re f",
    ]
