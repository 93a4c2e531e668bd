"""Build compact TrueType subsets of the shipped fonts for embedding in a PDF.

A subset keeps the outlines of the requested glyphs and of the components
they refer to, in ascending order of their glyph IDs in the full font. It
drops what a PDF viewer does not use: hinting (``cvt``, ``fpgm``, ``prep``
and the instructions inside each glyph), layout tables and long name
records. The full licence texts ship beside the fonts in ``templates/fonts``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from reportlab.pdfbase.ttfonts import TTFontFace, TTFontMaker

# Composite glyph flags (OpenType 'glyf' table).
ARG_1_AND_2_ARE_WORDS = 0x0001
WE_HAVE_A_SCALE = 0x0008
MORE_COMPONENTS = 0x0020
WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
WE_HAVE_A_TWO_BY_TWO = 0x0080
WE_HAVE_INSTRUCTIONS = 0x0100

# Name records kept: copyright, family, subfamily, unique ID, full name,
# version, PostScript name, trademark, description (which carries the
# modification notice of our subset files) and the licence URL.
KEPT_NAME_IDS = (0, 1, 2, 3, 4, 5, 6, 7, 10, 13, 14)
# A licence description longer than this is the full licence text, which
# ships as a file beside the font. The embedded subset leaves it out.
MAX_NAME_RECORD_BYTES = 1024
WINDOWS_ENGLISH = (3, 1, 0x409)


@dataclass(frozen=True)
class GlyphData:
    """Outline bytes of one glyph without instructions, and its components."""

    data: bytes
    components: tuple[int, ...]
    # Offsets in ``data`` of the component glyph IDs, for renumbering.
    component_offsets: tuple[int, ...]


class FontSubsetter:
    """Subset maker for one parsed font that decodes each glyph only once."""

    def __init__(self, face: TTFontFace) -> None:
        self._face = face
        start, length = face.get_table_pos("glyf")
        self._glyf = memoryview(face._ttf_data)[start : start + length]
        self._glyphs: dict[int, GlyphData] = {}
        self._metrics = _horizontal_metrics(face)
        self._tables = {
            "head": face.get_table("head"),
            "hhea": face.get_table("hhea"),
            "maxp": face.get_table("maxp"),
            "OS/2": face.get_table("OS/2"),
            "post": face.get_table("post"),
            "name": _compact_name_table(face),
        }

    def glyph(self, glyph_id: int) -> GlyphData:
        cached = self._glyphs.get(glyph_id)
        if cached is None:
            start = self._face.glyphPos[glyph_id]
            end = self._face.glyphPos[glyph_id + 1]
            cached = _strip_instructions(bytes(self._glyf[start:end]))
            self._glyphs[glyph_id] = cached
        return cached

    def advance(self, glyph_id: int) -> int:
        """Return the advance width of a glyph in font units."""
        return self._metrics[glyph_id][0]

    def closure(self, glyph_ids: Iterable[int]) -> list[int]:
        """Return the glyphs with every component they use, ascending, with 0."""
        found = {0, *glyph_ids}
        # Only composite glyphs add glyphs, so only they are visited again.
        pending = [glyph_id for glyph_id in found if self.glyph(glyph_id).components]
        while pending:
            for component in self.glyph(pending.pop()).components:
                if component not in found:
                    found.add(component)
                    pending.append(component)
        return sorted(found)

    def make_subset(self, glyph_ids: list[int]) -> bytes:
        """Return a font whose glyph ``i`` is ``glyph_ids[i]`` of the full font.

        ``glyph_ids`` must come from :meth:`closure`, so every component is
        present.
        """
        new_ids = {old: new for new, old in enumerate(glyph_ids)}
        glyf, loca = self._glyf_and_loca(glyph_ids, new_ids)
        long_loca = len(glyf) > 0x1FFFE
        maker = TTFontMaker()
        maker.add("glyf", glyf)
        maker.add("loca", _pack_loca(loca, long_loca))
        maker.add("head", _set_ushort(self._tables["head"], 50, int(long_loca)))
        hmtx, metric_count = self._hmtx(glyph_ids)
        maker.add("hmtx", hmtx)
        maker.add("hhea", _set_ushort(self._tables["hhea"], 34, metric_count))
        maker.add("maxp", _set_ushort(self._tables["maxp"], 4, len(glyph_ids)))
        maker.add("OS/2", self._tables["OS/2"])
        maker.add("name", self._tables["name"])
        maker.add("post", b"\x00\x03\x00\x00" + self._tables["post"][4:16] + bytes(16))
        maker.add("cmap", EMPTY_CMAP)
        return maker.makeStream()

    def _glyf_and_loca(
        self, glyph_ids: list[int], new_ids: dict[int, int]
    ) -> tuple[bytes, list[int]]:
        parts: list[bytes] = []
        loca = [0]
        position = 0
        for glyph_id in glyph_ids:
            glyph = self.glyph(glyph_id)
            data = _renumber(glyph, new_ids) if glyph.components else glyph.data
            parts.append(data)
            position += len(data)
            # Short loca offsets count 2-byte words, so glyphs start on even
            # offsets.
            if len(data) % 2:
                parts.append(b"\x00")
                position += 1
            loca.append(position)
        return b"".join(parts), loca

    def _hmtx(self, glyph_ids: list[int]) -> tuple[bytes, int]:
        metrics = [self._metrics[glyph_id] for glyph_id in glyph_ids]
        values = []
        for advance, side_bearing in metrics:
            values += [int(advance), int(side_bearing)]
        return struct.pack(">" + "Hh" * len(metrics), *values), len(metrics)


# A format 4 cmap with only the closing segment. The PDF reaches glyphs by
# glyph ID (``/CIDToGIDMap /Identity``), never through character codes.
EMPTY_CMAP = struct.pack(
    ">HHHHI" + "HHHHHHHHHHHH",
    0, 1, 3, 1, 12,
    4, 24, 0, 2, 2, 0, 0, 0xFFFF, 0, 0xFFFF, 1, 0,
)  # fmt: skip


def _horizontal_metrics(face: TTFontFace) -> list[tuple[int, int]]:
    """Read ``hmtx``: glyphs past ``numberOfHMetrics`` repeat the last advance."""
    (count,) = struct.unpack_from(">H", face.get_table("hhea"), 34)
    (glyph_count,) = struct.unpack_from(">H", face.get_table("maxp"), 4)
    table = face.get_table("hmtx")
    pairs = list(struct.iter_unpack(">Hh", table[: 4 * count]))
    extra = glyph_count - count
    side_bearings = struct.unpack_from(f">{extra}h", table, 4 * count)
    last_advance = pairs[-1][0]
    return pairs + [(last_advance, bearing) for bearing in side_bearings]


def _strip_instructions(data: bytes) -> GlyphData:
    if len(data) < 10:
        return GlyphData(b"", (), ())
    (contours,) = struct.unpack_from(">h", data)
    if contours >= 0:
        length_at = 10 + 2 * contours
        (length,) = struct.unpack_from(">H", data, length_at)
        stripped = data[:length_at] + b"\x00\x00" + data[length_at + 2 + length :]
        return GlyphData(stripped, (), ())
    return _strip_composite(data)


def _strip_composite(data: bytes) -> GlyphData:
    position = 10
    components: list[int] = []
    offsets: list[int] = []
    output = bytearray(data)
    while True:
        flags, glyph_id = struct.unpack_from(">HH", data, position)
        components.append(glyph_id)
        offsets.append(position + 2)
        if flags & WE_HAVE_INSTRUCTIONS:
            struct.pack_into(">H", output, position, flags & ~WE_HAVE_INSTRUCTIONS)
        position += 4 + _component_argument_size(flags)
        if not flags & MORE_COMPONENTS:
            break
    return GlyphData(bytes(output[:position]), tuple(components), tuple(offsets))


def _component_argument_size(flags: int) -> int:
    size = 4 if flags & ARG_1_AND_2_ARE_WORDS else 2
    if flags & WE_HAVE_A_SCALE:
        size += 2
    elif flags & WE_HAVE_AN_X_AND_Y_SCALE:
        size += 4
    elif flags & WE_HAVE_A_TWO_BY_TWO:
        size += 8
    return size


def _renumber(glyph: GlyphData, new_ids: dict[int, int]) -> bytes:
    if not glyph.components:
        return glyph.data
    output = bytearray(glyph.data)
    for old, offset in zip(glyph.components, glyph.component_offsets, strict=True):
        struct.pack_into(">H", output, offset, new_ids[old])
    return bytes(output)


def _pack_loca(offsets: list[int], long_format: bool) -> bytes:
    if long_format:
        return struct.pack(f">{len(offsets)}L", *offsets)
    return struct.pack(f">{len(offsets)}H", *(offset // 2 for offset in offsets))


def _set_ushort(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + struct.pack(">H", value) + data[offset + 2 :]


def _compact_name_table(face: TTFontFace) -> bytes:
    """Keep one Windows English record of each kept name ID, or the first one."""
    records = _name_records(face.get_table("name"))
    chosen: dict[int, tuple[tuple[int, int, int], bytes]] = {}
    for key, name_id, text in records:
        if name_id not in KEPT_NAME_IDS or len(text) > MAX_NAME_RECORD_BYTES:
            continue
        if name_id not in chosen or key == WINDOWS_ENGLISH:
            chosen[name_id] = (key, text)
    return _pack_name_table(chosen)


def _name_records(table: bytes) -> list[tuple[tuple[int, int, int], int, bytes]]:
    _, count, strings = struct.unpack_from(">HHH", table)
    records = []
    for index in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(
            ">6H", table, 6 + 12 * index
        )
        text = table[strings + offset : strings + offset + length]
        records.append(((platform, encoding, language), name_id, text))
    return records


def _pack_name_table(chosen: dict[int, tuple[tuple[int, int, int], bytes]]) -> bytes:
    ordered = sorted((key, name_id, text) for name_id, (key, text) in chosen.items())
    header = struct.pack(">HHH", 0, len(ordered), 6 + 12 * len(ordered))
    entries = []
    strings = b""
    for (platform, encoding, language), name_id, text in ordered:
        entries.append(
            struct.pack(
                ">6H", platform, encoding, language, name_id, len(text), len(strings)
            )
        )
        strings += text
    return header + b"".join(entries) + strings
