"""Embed the shipped fonts as Type 0 fonts with two-byte glyph codes.

reportlab embeds a TrueType font as simple fonts of at most 256 characters
each, so a long business scope needs two subsets of the same font that both
carry the shared tables and composite components. Here each shipped font
becomes one Type 0 font (``/Identity-H``). While drawing, the two-byte
codes are the glyph IDs of the full font, so the operators of a line do not
depend on the document and can be prepared once and reused. When the
document is saved, :mod:`templates.subset` cuts the used glyphs out of the
font and the codes in the page streams are renumbered to the glyph IDs of
that subset, so no ``/CIDToGIDMap`` stream is needed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import struct
import threading
import weakref
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas

from templates import fontset
from templates.fontset import FontFile
from templates.subset import FontSubsetter

# A 56 KB WenQuanYi subset compressed to 35.7 KB in 1.8 ms at level 1 and to
# 33.2 KB in 4.6 ms at level 6. Over 200 business licenses, level 1 made the
# signed PDF 1.6 KB larger on average (69.0 KB instead of 67.3 KB). A 28 KB
# page stream compressed to 7,132 bytes in 0.9 ms at level 6 and to 7,120
# bytes in 1.8 ms at level 9. Measured with zlib of Debian 12 on a 2-core AMD
# EPYC virtual machine.
FONT_COMPRESSION_LEVEL = 1
CONTENT_COMPRESSION_LEVEL = 6
# Subsets kept in compressed form. The title font and the Mongolian labels use
# the same glyphs on every license of a template, so their fonts are built
# once. Each cached WenQuanYi subset takes about 35 KB.
SUBSET_CACHE_SIZE = 32
IDENTITY_SYSTEM_INFO = "<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
# The tokens of a page stream that select a shipped font or show its glyphs,
# as textrun writes them.
TEXT_TOKEN = re.compile(r"(/Elicense\w+) [0-9.]+ Tf|<([0-9a-f]*)> Tj")

_documents: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_documents_lock = threading.Lock()


class FlateFilter:
    """``/FlateDecode`` at a chosen zlib level (reportlab always uses 6)."""

    pdfname = "FlateDecode"

    def __init__(self, level: int) -> None:
        self.level = level

    def encode(self, text: str | bytes) -> bytes:
        data = text.encode("utf-8") if isinstance(text, str) else text
        return zlib.compress(data, self.level)

    def decode(self, encoded: bytes) -> bytes:
        return zlib.decompress(encoded)


FONT_FLATE = FlateFilter(FONT_COMPRESSION_LEVEL)
CONTENT_FLATE = FlateFilter(CONTENT_COMPRESSION_LEVEL)


def resource_name(font: FontFile) -> str:
    """Return the font resource name used in content streams, e.g. ``/ElicenseSans``."""
    return f"/{font.name}"


@functools.cache
def subsetter(font: FontFile) -> FontSubsetter:
    return FontSubsetter(fontset.load_font(font).face)


class DocumentFonts:
    """The glyphs one document uses, turned into font objects when it is saved."""

    def __init__(self) -> None:
        # Per font: glyph ID -> the character it stands for. Shaped Mongolian
        # glyphs stand for private-use characters; their text comes from the
        # ActualText of the span around them.
        self.used: dict[FontFile, dict[int, int]] = {}
        self._recordings: list[list[tuple[FontFile, tuple[tuple[int, int], ...]]]] = []

    def use(self, font: FontFile, glyphs: Iterable[tuple[int, int]]) -> None:
        """Record ``(glyph_id, code_point)`` pairs drawn with ``font``."""
        glyphs = tuple(glyphs)
        table = self.used.setdefault(font, {})
        for glyph_id, code in glyphs:
            table.setdefault(glyph_id, code)
        for recording in self._recordings:
            recording.append((font, glyphs))

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[tuple[FontFile, tuple[tuple[int, int], ...]]]]:
        """Collect the glyphs used inside the block, to replay them later."""
        recording: list[tuple[FontFile, tuple[tuple[int, int], ...]]] = []
        self._recordings.append(recording)
        try:
            yield recording
        finally:
            self._recordings.remove(recording)

    def addObjects(self, document: pdfdoc.PDFDocument) -> None:
        """Add the font objects and renumber the glyph codes of every page.

        reportlab calls this once while saving, before it formats the pages.
        """
        font_dict = document.idToObject["BasicFonts"].dict
        new_ids: dict[str, dict[str, str]] = {}
        for font in sorted(self.used, key=lambda font: font.name):
            order = subsetter(font).closure(self.used[font])
            renumbered = {old: new for new, old in enumerate(order)}
            new_ids[resource_name(font)] = {
                f"{old:04x}": f"{new:04x}" for old, new in renumbered.items()
            }
            glyphs = {renumbered[old]: code for old, code in self.used[font].items()}
            type0 = _type0_font(document, font, order, glyphs)
            name = resource_name(font)[1:]
            font_dict[name] = document.Reference(type0, f"elicense-font:{name}")
        for page in document.Pages.pages:
            page.stream = _renumber_glyphs(page.stream, new_ids)


def document_fonts(canvas: Canvas) -> DocumentFonts:
    """Return the glyph registry of the canvas's document, creating it once."""
    document = canvas._doc
    with _documents_lock:
        fonts = _documents.get(document)
        if fonts is None:
            fonts = _documents[document] = DocumentFonts()
            document.delayedFonts.append(fonts)
    return fonts


def _renumber_glyphs(stream: str, new_ids: dict[str, dict[str, str]]) -> str:
    """Replace full-font glyph IDs in ``Tj`` strings by subset glyph IDs.

    ``new_ids`` maps each font resource name to a table from the four hex
    digits of a full-font glyph ID to those of its subset glyph ID.
    """
    current: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        nonlocal current
        if match.group(1):
            current = new_ids.get(match.group(1), {})
            return match.group(0)
        old = match.group(2)
        new = "".join(current[old[i : i + 4]] for i in range(0, len(old), 4))
        return f"<{new}> Tj"

    return TEXT_TOKEN.sub(replace, stream)


@dataclass(frozen=True)
class SubsetParts:
    """The parts of an embedded subset that depend only on its glyphs."""

    base_name: str
    program_length: int
    compressed_program: bytes
    widths: str


@functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)
def subset_parts(font: FontFile, order: tuple[int, ...]) -> SubsetParts:
    """Build and compress the subset of ``order``, glyph IDs from ``closure``."""
    face = fontset.load_font(font).face
    program = subsetter(font).make_subset(list(order))
    return SubsetParts(
        base_name=f"{_subset_tag(order)}+{face.name.decode('latin-1')}",
        program_length=len(program),
        compressed_program=FONT_FLATE.encode(program),
        widths=_widths(font, order),
    )


@functools.lru_cache(maxsize=SUBSET_CACHE_SIZE)
def compressed_to_unicode(glyphs: tuple[tuple[int, int], ...]) -> bytes:
    """Return the compressed ToUnicode CMap of (subset glyph ID, code point) pairs."""
    return CONTENT_FLATE.encode(_to_unicode_cmap(dict(glyphs)).encode("ascii"))


def _type0_font(
    document: pdfdoc.PDFDocument,
    font: FontFile,
    order: list[int],
    glyphs: dict[int, int],
) -> pdfdoc.PDFDictionary:
    """Build the Type 0 font; ``glyphs`` maps subset glyph IDs to characters."""
    face = fontset.load_font(font).face
    parts = subset_parts(font, tuple(order))
    descendant = pdfdoc.PDFDictionary(
        {
            "Type": "/Font",
            "Subtype": "/CIDFontType2",
            "BaseFont": pdfdoc.PDFName(parts.base_name),
            "CIDSystemInfo": IDENTITY_SYSTEM_INFO,
            "FontDescriptor": _descriptor(document, font, parts),
            "DW": round(face.defaultWidth),
            "W": parts.widths,
            "CIDToGIDMap": "/Identity",
        }
    )
    to_unicode = _compressed_stream(
        compressed_to_unicode(tuple(sorted(glyphs.items()))), CONTENT_FLATE
    )
    return pdfdoc.PDFDictionary(
        {
            "Type": "/Font",
            "Subtype": "/Type0",
            "BaseFont": pdfdoc.PDFName(parts.base_name),
            "Encoding": "/Identity-H",
            "DescendantFonts": pdfdoc.PDFArray([document.Reference(descendant)]),
            "ToUnicode": document.Reference(to_unicode),
        }
    )


def _descriptor(
    document: pdfdoc.PDFDocument, font: FontFile, parts: SubsetParts
) -> pdfdoc.PDFObjectReference:
    face = fontset.load_font(font).face
    font_file = _compressed_stream(parts.compressed_program, FONT_FLATE)
    font_file.dictionary["Length1"] = parts.program_length
    descriptor = pdfdoc.PDFDictionary(
        {
            "Type": "/FontDescriptor",
            "FontName": pdfdoc.PDFName(parts.base_name),
            "Flags": (face.flags & ~32) | 4,  # symbolic, not non-symbolic
            "FontBBox": pdfdoc.PDFArray([round(value) for value in face.bbox]),
            "ItalicAngle": face.italicAngle,
            "Ascent": round(face.ascent),
            "Descent": round(face.descent),
            "CapHeight": round(face.capHeight),
            "StemV": face.stemV,
            "FontFile2": document.Reference(font_file),
        }
    )
    return document.Reference(descriptor)


def _compressed_stream(data: bytes, flate: FlateFilter) -> pdfdoc.PDFStream:
    """Return a stream of ``data`` that ``flate`` has already compressed.

    reportlab applies no filter to a stream whose dictionary names one, so
    the ``/Filter`` entry is the one reportlab writes for ``filters=[flate]``.
    """
    stream = pdfdoc.PDFStream(content=data)
    stream.dictionary["Filter"] = pdfdoc.PDFArray([pdfdoc.PDFName(flate.pdfname)])
    return stream


def _subset_tag(order: Sequence[int]) -> str:
    """Six capital letters derived from the glyph set, as PDF subsets need."""
    digest = hashlib.sha256(struct.pack(f">{len(order)}H", *order)).digest()
    return "".join(chr(ord("A") + byte % 26) for byte in digest[:6])


def _widths(font: FontFile, order: Sequence[int]) -> str:
    """Return the ``/W`` array of the subset glyphs whose width is not ``/DW``."""
    face = fontset.load_font(font).face
    default = round(face.defaultWidth)
    scale = 1000.0 / face.unitsPerEm
    advance = subsetter(font).advance
    parts = []
    for new_id, old_id in enumerate(order):
        width = round(advance(old_id) * scale)
        if width != default:
            parts.append(f"{new_id} [{width}]")
    return "[" + " ".join(parts) + "]"


def _to_unicode_cmap(glyphs: dict[int, int]) -> str:
    entries = [
        f"<{glyph_id:04X}> <{_utf16_hex(code)}>"
        for glyph_id, code in sorted(glyphs.items())
    ]
    lines = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    for start in range(0, len(entries), 100):
        chunk = entries[start : start + 100]
        lines += [f"{len(chunk)} beginbfchar", *chunk, "endbfchar"]
    lines.append("endcmap CMapName currentdict /CMap defineresource pop end end")
    return "\n".join(lines)


def _utf16_hex(code: int) -> str:
    return chr(code).encode("utf-16-be").hex().upper()
