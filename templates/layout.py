"""Fit a long text (business scope and the like) into a box.

The text wraps in the box and shrinks in steps of 0.5 pt between the largest
and the smallest allowed size. If it does not fit at the smallest size, the
caller draws the first ``lines_per_box`` lines and continues the rest on the
next page, so nothing is clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from templates import textrun
from templates.fontset import Face

LEADING = 1.45  # line distance as a multiple of the font size
SIZE_STEP = 0.5


@dataclass(frozen=True)
class BlockFit:
    """Wrapped lines at one size and how many of them the box holds."""

    size: float
    leading: float
    lines: list[str]
    lines_per_box: int

    @property
    def fits(self) -> bool:
        return len(self.lines) <= self.lines_per_box


def fit_block(
    text: str, width: float, height: float, field: str, sizes: tuple[float, float]
) -> BlockFit:
    """Return the largest size in ``sizes`` at which ``text`` fits the box.

    When even the smallest size does not fit, the result has more lines than
    ``lines_per_box``.
    """
    largest, smallest = sizes
    size = max(smallest, min(largest, _estimate(text, width, height, largest)))
    while True:
        fit = _wrap_at(text, width, height, field, size)
        if fit.fits or size <= smallest:
            return fit
        size = max(smallest, size - SIZE_STEP)


def _estimate(text: str, width: float, height: float, largest: float) -> float:
    """Start near the size at which square glyphs would fill the box exactly."""
    if not text:
        return largest
    size = math.sqrt(width * height / (len(text) * LEADING))
    return math.floor(size / SIZE_STEP) * SIZE_STEP + SIZE_STEP


def _wrap_at(
    text: str, width: float, height: float, field: str, size: float
) -> BlockFit:
    lines = textrun.wrap(text, Face.SANS, size, width, field) if text else []
    leading = size * LEADING
    # The first line needs one font size, every further line one leading.
    lines_per_box = max(1, int((height - size) // leading) + 1)
    return BlockFit(size, leading, lines, lines_per_box)


def paragraph_text(lines: list[str]) -> str:
    """Join wrapped lines back into the text they came from."""
    return "".join(lines)
