"""Read the glyphs a PDF page draws, for tests that compare them to shaping."""

from __future__ import annotations

import io
import re

from pyhanko.pdf_utils.reader import PdfFileReader

FONT_OPERATOR = re.compile(rb"/(\S+) [0-9.]+ Tf")
SHOW_OPERATOR = re.compile(rb"<([0-9a-fA-F]*)> Tj")
CMAP_ENTRY = re.compile(r"<([0-9A-F]{4})> <([0-9A-F]+)>")


def page_contents(pdf: bytes, page: int = 0) -> bytes:
    reader = PdfFileReader(io.BytesIO(pdf))
    page_object = reader.root["/Pages"]["/Kids"][page]
    contents = page_object["/Contents"]
    if isinstance(contents, list):
        return b"\n".join(part.get_object().data for part in contents)
    return contents.data


def fonts_of_page(pdf: bytes, page: int = 0) -> dict[str, tuple[str, dict[int, int]]]:
    """Map each font resource name to its base font and ToUnicode table.

    The fonts are Type 0 fonts with two-byte codes.
    """
    reader = PdfFileReader(io.BytesIO(pdf))
    page_object = reader.root["/Pages"]["/Kids"][page]
    fonts = {}
    for name, reference in page_object["/Resources"]["/Font"].items():
        font = reference.get_object()
        if "/ToUnicode" not in font:
            continue
        to_unicode = font["/ToUnicode"].data.decode("latin-1")
        table = {
            int(code, 16): int(value, 16)
            for code, value in CMAP_ENTRY.findall(to_unicode)
        }
        fonts[str(name).lstrip("/")] = (str(font["/BaseFont"]), table)
    return fonts


def drawn_code_points(pdf: bytes, font_fragment: str, page: int = 0) -> list[int]:
    """Return, in drawing order, the code points shown with fonts whose base
    font name contains ``font_fragment``."""
    fonts = fonts_of_page(pdf, page)
    tokens = re.finditer(
        rb"/\S+ [0-9.]+ Tf|<[0-9a-fA-F]*> Tj", page_contents(pdf, page)
    )
    current = None
    points: list[int] = []
    for token in tokens:
        text = token.group(0)
        font_match = FONT_OPERATOR.fullmatch(text)
        if font_match:
            current = fonts.get(font_match.group(1).decode())
            continue
        if current is None or font_fragment not in current[0]:
            continue
        data = bytes.fromhex(SHOW_OPERATOR.fullmatch(text).group(1).decode())
        codes = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        points.extend(current[1][code] for code in codes)
    return points
