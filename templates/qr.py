"""QR code of the license face, drawn as vector rectangles.

The error correction level (M) and the mask are fixed: letting ``qrcode``
evaluate all eight masks costs about 20 ms per code. The verification URL is
upper-case so it encodes in alphanumeric mode, which needs a smaller version
than byte mode. ``qrcode`` lays out the function patterns and the order of
the data modules once per version, so placing the codewords of each license
costs one pass over the data modules.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import qrcode
from qrcode.util import MODE_ALPHA_NUM, QRData
from reportlab.pdfgen.canvas import Canvas

from common.errors import InputError
from templates import qrdata

ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
QUIET_ZONE_MODULES = 4
MASK_PATTERN = 0


@functools.lru_cache(maxsize=64)
def qr_matrix(text: str) -> tuple[tuple[bool, ...], ...]:
    """Encode ``text`` in alphanumeric mode; return the modules without border."""
    bad = sorted(set(text) - ALPHANUMERIC)
    if bad:
        raise InputError(
            f"二维码内容含有字母数字模式之外的字符 {bad[0]!r}",
            field="qr_text",
            value=text,
            fix="二维码网址应全部大写，且只含 0-9、A-Z、空格和 $%*+-./:",
        )
    version = version_for_length(len(text))
    return place_codewords(version, qrdata.codewords(text, version))


def place_codewords(
    version: int, data: list[int]
) -> tuple[tuple[bool, ...], ...]:
    """Return the modules of a code with these codewords, mask applied.

    Data bits fill the data modules most significant bit first, and modules
    past the last codeword take the value of the mask alone, as in
    ``qrcode``'s ``map_data``.
    """
    layout = _layout(version)
    count = len(layout.positions)
    value = int.from_bytes(bytes(data), "big")
    # Cut extra bits or pad with zero bits, so each bit has one data module.
    spare = count - 8 * len(data)
    value = value << spare if spare >= 0 else value >> -spare
    dark = f"{value ^ layout.mask:0{count}b}"
    modules = list(layout.function_modules)
    for position, bit in zip(layout.positions, dark, strict=True):
        modules[position] = bit == "1"
    size = layout.size
    return tuple(
        tuple(modules[start : start + size]) for start in range(0, size * size, size)
    )


@dataclass(frozen=True)
class _Layout:
    """Function patterns of one version and the data modules in placement order."""

    size: int
    # Modules row by row, with None at the data modules.
    function_modules: tuple[bool | None, ...]
    # Index into ``function_modules`` of each data module, in placement order.
    positions: tuple[int, ...]
    # Mask bits of the data modules as one integer, first module most significant.
    mask: int


class _RecordingRow(list):
    """A row of modules that records each module ``qrcode`` assigns."""

    def __init__(self, values: list, index: int, log: list) -> None:
        super().__init__(values)
        self._index = index
        self._log = log

    def __setitem__(self, column, value) -> None:  # type: ignore[override]
        self._log.append((self._index, column, value))
        super().__setitem__(column, value)


class _LayoutProbe(qrcode.QRCode):
    """A code whose ``map_data`` records the data modules instead of filling them.

    With no data, ``qrcode`` sets every data module to the value of the
    mask, so the record contains both the order and the mask of each module.
    """

    def map_data(self, data, mask_pattern) -> None:  # type: ignore[override]
        self.function_rows = tuple(tuple(row) for row in self.modules)
        self.log: list[tuple[int, int, bool]] = []
        self.modules = [
            _RecordingRow(row, index, self.log)
            for index, row in enumerate(self.modules)
        ]
        super().map_data([], mask_pattern)


@functools.lru_cache(maxsize=41)
def _layout(version: int) -> _Layout:
    probe = _LayoutProbe(
        version=version,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=0,
        mask_pattern=MASK_PATTERN,
    )
    probe.data_cache = []
    probe.makeImpl(False, MASK_PATTERN)
    size = probe.modules_count
    mask_bits = "".join("1" if masked else "0" for _, _, masked in probe.log)
    return _Layout(
        size=size,
        function_modules=tuple(itertools.chain.from_iterable(probe.function_rows)),
        positions=tuple(row * size + column for row, column, _ in probe.log),
        mask=int(mask_bits, 2),
    )


@functools.lru_cache(maxsize=64)
def version_for_length(length: int) -> int:
    """Return the smallest version with room for ``length`` alphanumeric characters.

    The bits of alphanumeric data depend only on its length, so each length
    is fitted once. Fitting writes the data a second time, which cost about
    2 ms per code with ``qrcode`` 8.2.
    """
    code = _new_code(None)
    code.add_data(QRData("0" * length, mode=MODE_ALPHA_NUM))
    return code.best_fit()


def _new_code(version: int | None) -> qrcode.QRCode:
    return qrcode.QRCode(
        version=version,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=0,
        mask_pattern=MASK_PATTERN,
    )


def module_count_with_quiet_zone(matrix: tuple[tuple[bool, ...], ...]) -> int:
    return len(matrix) + 2 * QUIET_ZONE_MODULES


def draw_qr(
    canvas: Canvas,
    matrix: tuple[tuple[bool, ...], ...],
    x: float,
    y: float,
    size: float,
) -> None:
    """Fill the dark modules inside the square (x, y, size) with its quiet zone.

    Adjacent dark modules of a row are merged into one rectangle, so a
    version 10 code needs about 1,000 rectangles instead of 1,700. The
    rectangles are written in module units with the origin at the top left
    module, so every number is a small integer.
    """
    module = size / module_count_with_quiet_zone(matrix)
    left = x + QUIET_ZONE_MODULES * module
    top = y + size - QUIET_ZONE_MODULES * module
    canvas.addLiteral(_operators(matrix, module, left, top))


@functools.lru_cache(maxsize=64)
def _operators(
    matrix: tuple[tuple[bool, ...], ...], module: float, left: float, top: float
) -> str:
    # Written as operators directly: reportlab's path objects format every
    # number through a slow pure-Python routine.
    operators = [
        "q",
        "0 0 0 rg",
        f"{module:.4f} 0 0 {-module:.4f} {left:.3f} {top:.3f} cm",
    ]
    for row_index, row in enumerate(matrix):
        for start, length in _dark_runs(row):
            operators.append(f"{start} {row_index} {length} 1 re")
    operators.extend(["f", "Q"])
    return "\n".join(operators)


def _dark_runs(row: tuple[bool, ...]) -> list[tuple[int, int]]:
    runs = []
    start = None
    for index, dark in enumerate((*row, False)):
        if dark and start is None:
            start = index
        elif not dark and start is not None:
            runs.append((start, index - start))
            start = None
    return runs
