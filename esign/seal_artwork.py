"""Vector artwork of a round official seal (公章) for license faces.

The seal is a red ring with the authority name along the upper arc, a
five-pointed star in the centre, the purpose (e.g. 证照专用章) below the star
and the seal code along the lower arc. For Inner Mongolia with a Mongolian
name, the Mongolian name runs on the outer ring and the Chinese name on the
inner ring, at equal size.

The same glyph placement feeds the PDF drawing (text operators with the
shipped fonts) and the SVG export (glyph outlines as paths), so both show the
same artwork.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fontTools.pens.svgPathPen import SVGPathPen
from fontTools.ttLib import TTFont
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from common.errors import InputError
from templates import fontset, textrun
from templates.fontset import Face, FontFile

SEAL_RED = (0.86, 0.08, 0.08)
RING_WIDTH = 0.035  # share of the diameter
STAR_RADIUS = 0.25  # share of the radius, single-ring seal
BILINGUAL_STAR_RADIUS = 0.19
NAME_SIZE = 0.13  # largest character size, share of the diameter
PNG_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class PlacedGlyph:
    """A glyph at (x, y) relative to the seal centre, turned by ``angle``.

    Units are shares of the diameter; ``angle`` is in degrees
    counter-clockwise, 0 meaning upright.
    """

    font: FontFile
    code: int
    x: float
    y: float
    angle: float
    size: float


@dataclass(frozen=True)
class VectorSeal:
    """A round red seal drawn from vector shapes and the shipped fonts."""

    authority_name: str
    authority_name_mn: str | None = None
    purpose: str = "证照专用章"
    seal_code: str = ""

    def __post_init__(self) -> None:
        if not self.authority_name.strip():
            raise InputError(
                "印章的机构名称为空",
                field="authority_name",
                value=self.authority_name,
                fix="请提供颁发机构全称",
            )
        fontset.check_coverage(self.authority_name, Face.SERIF, "authority_name")
        fontset.check_coverage(self.purpose, Face.SERIF, "purpose")
        fontset.check_coverage(self.seal_code, Face.SANS, "seal_code")
        if self.authority_name_mn:
            fontset.check_coverage(
                self.authority_name_mn, Face.MONGOLIAN, "authority_name_mn"
            )

    @property
    def bilingual(self) -> bool:
        return bool(self.authority_name_mn)

    def draw(
        self, canvas: Canvas, center_x: float, center_y: float, diameter: float
    ) -> None:
        """Draw the seal centred on (center_x, center_y), ``diameter`` in points.

        The seal sits in a span with empty ActualText, so text extraction of
        the page does not repeat the authority name character by character.
        """
        canvas.saveState()
        textrun.begin_actual_text(canvas, "")
        canvas.setFillColorRGB(*SEAL_RED)
        canvas.setStrokeColorRGB(*SEAL_RED)
        canvas.translate(center_x, center_y)
        canvas.saveState()
        canvas.scale(diameter, diameter)
        self._draw_shapes(canvas)
        canvas.restoreState()
        for glyph in self.glyphs():
            _draw_glyph(canvas, glyph, diameter)
        textrun.end_actual_text(canvas)
        canvas.restoreState()

    def _draw_shapes(self, canvas: Canvas) -> None:
        canvas.setLineWidth(RING_WIDTH)
        canvas.circle(0, 0, 0.5 - RING_WIDTH / 2, stroke=1, fill=0)
        path = canvas.beginPath()
        points = star_points(self._star_radius())
        path.moveTo(*points[0])
        for point in points[1:]:
            path.lineTo(*point)
        path.close()
        canvas.drawPath(path, stroke=0, fill=1)

    def _star_radius(self) -> float:
        share = BILINGUAL_STAR_RADIUS if self.bilingual else STAR_RADIUS
        return 0.5 * share

    def glyphs(self) -> list[PlacedGlyph]:
        """Place every glyph of the seal, in units of the diameter."""
        return _layout(self)

    def to_svg(self) -> str:
        """Return the seal as a standalone SVG, text converted to outlines."""
        color = _svg_color()
        ring = 0.5 - RING_WIDTH / 2
        header = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" '
            'viewBox="-0.5 -0.5 1 1">'
        )
        circle = (
            f'<circle cx="0" cy="0" r="{ring:.4f}" fill="none" stroke="{color}" '
            f'stroke-width="{RING_WIDTH:.4f}"/>'
        )
        parts = [
            header,
            f'<g fill="{color}" stroke="none">',
            circle,
            _svg_star(self._star_radius()),
        ]
        parts.extend(_svg_glyph(glyph) for glyph in self.glyphs())
        parts.append("</g></svg>")
        return "\n".join(parts)

    def to_png(self, size_px: int) -> bytes:
        """Render the seal to a PNG of ``size_px`` square with a transparent
        background, through poppler's ``pdftoppm``."""
        if not 16 <= size_px <= 4096:
            raise InputError(
                f"印章图片尺寸 {size_px} 像素超出范围",
                field="size_px",
                value=size_px,
                fix="请使用 16 至 4096 之间的像素数",
            )
        opaque = _rasterize(self._single_page_pdf(), size_px)
        return _make_background_transparent(opaque)

    def _single_page_pdf(self) -> bytes:
        buffer = io.BytesIO()
        side = 200.0
        canvas = Canvas(
            buffer,
            pagesize=(side, side),
            invariant=1,
            initialFontName=fontset.initial_font_name(),
        )
        with fontset.RENDER_LOCK:
            self.draw(canvas, side / 2, side / 2, side)
            canvas.showPage()
            canvas.save()
        return buffer.getvalue()


def star_points(radius: float) -> list[tuple[float, float]]:
    """Return the ten corners of a five-pointed star with one point up."""
    inner = radius * math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for index in range(10):
        length = radius if index % 2 == 0 else inner
        angle = math.radians(90 + index * 36)
        points.append((length * math.cos(angle), length * math.sin(angle)))
    return points


MONGOLIAN_ARC_DEGREES = 300.0
CHINESE_ARC_DEGREES = 240.0
INNER_CHINESE_ARC_DEGREES = 220.0
RING_TEXT_INSET = RING_WIDTH + 0.02  # from the seal edge to the top of the text
RING_GAP = 1.2  # distance between the two rings of text, in character sizes


def _layout(seal: VectorSeal) -> list[PlacedGlyph]:
    ring_inner = 0.5 - RING_TEXT_INSET
    chinese = textrun.layout_line(seal.authority_name, Face.SERIF, 1.0, "seal")
    mongolian = None
    if seal.bilingual:
        mongolian = textrun.layout_line(
            seal.authority_name_mn, Face.MONGOLIAN, 1.0, "seal"
        )
    size = _name_size(chinese, mongolian)
    glyphs: list[PlacedGlyph] = []
    baseline = ring_inner - 0.9 * size
    chinese_degrees = CHINESE_ARC_DEGREES
    if mongolian is not None:
        glyphs += _on_upper_arc(mongolian, baseline, size, MONGOLIAN_ARC_DEGREES)
        baseline -= RING_GAP * size
        chinese_degrees = INNER_CHINESE_ARC_DEGREES
    glyphs += _on_upper_arc(chinese, baseline, size, chinese_degrees)
    glyphs += _purpose(seal)
    if seal.seal_code:
        code = textrun.layout_line(seal.seal_code, Face.SANS, 1.0, "seal")
        glyphs += _on_lower_arc(code, ring_inner - 0.045, 0.045, 80.0)
    return glyphs


def _name_size(chinese: textrun.Line, mongolian: textrun.Line | None) -> float:
    """Pick one character size for both rings so each name fits its arc.

    Both rings use the same size, as the regional rule on bilingual seals
    requires, so a long Mongolian name makes the Chinese name smaller too.
    """
    ring_inner = 0.5 - RING_TEXT_INSET
    size = NAME_SIZE
    for _ in range(60):
        outer = ring_inner - 0.9 * size
        if mongolian is None:
            fits = chinese.width * size <= math.radians(CHINESE_ARC_DEGREES) * outer
        else:
            inner = outer - RING_GAP * size
            fits = (
                mongolian.width * size <= math.radians(MONGOLIAN_ARC_DEGREES) * outer
                and chinese.width * size
                <= math.radians(INNER_CHINESE_ARC_DEGREES) * inner
            )
        if fits:
            break
        size *= 0.96
    return size


def _advances(line: textrun.Line) -> list[float]:
    positions = [glyph.x for glyph in line.glyphs] + [line.width]
    return [b - a for a, b in itertools.pairwise(positions)]


def _on_upper_arc(
    line: textrun.Line, radius: float, size: float, max_degrees: float
) -> list[PlacedGlyph]:
    """Spread ``line`` clockwise over the top of a circle, glyph tops outward.

    Characters of one size are spaced evenly; a shaped Mongolian line keeps
    its own advances, scaled down if it is longer than the arc.
    """
    advances = _advances(line)
    natural = sum(advances) * size
    limit = math.radians(max_degrees) * radius
    scale = min(1.0, limit / natural) if natural else 1.0
    total = natural * scale
    spread = (
        total if line.glyphs[0].font is fontset.MONGOLIAN else min(limit, total * 1.15)
    )
    stretch = spread / total if total else 1.0
    start = math.pi / 2 + spread / radius / 2
    glyphs = []
    pen = 0.0
    for glyph, advance in zip(line.glyphs, advances):
        width = advance * size * scale
        middle = (pen + width / 2) * stretch
        angle = start - middle / radius
        glyphs.append(
            _at_angle(glyph, radius, angle, size * scale, width, glyph.y * size)
        )
        pen += width
    return glyphs


def _on_lower_arc(
    line: textrun.Line, radius: float, size: float, max_degrees: float
) -> list[PlacedGlyph]:
    """Set ``line`` left to right along the bottom, glyph tops toward the centre."""
    advances = _advances(line)
    total = sum(advances) * size
    limit = math.radians(max_degrees) * radius
    scale = min(1.0, limit / total) if total else 1.0
    start = -math.pi / 2 - total * scale / radius / 2
    glyphs = []
    pen = 0.0
    for glyph, advance in zip(line.glyphs, advances):
        width = advance * size * scale
        angle = start + (pen + width / 2) / radius
        x, y = radius * math.cos(angle), radius * math.sin(angle)
        turn = math.degrees(angle) + 90.0
        # Shift the baseline centre so the glyph is centred on the radius.
        dx, dy = _rotate(-width / 2, 0.0, turn)
        glyphs.append(
            PlacedGlyph(glyph.font, glyph.code, x + dx, y + dy, turn, size * scale)
        )
        pen += width
    return glyphs


def _at_angle(
    glyph: textrun.Glyph,
    radius: float,
    angle: float,
    size: float,
    width: float,
    rise: float,
) -> PlacedGlyph:
    turn = math.degrees(angle) - 90.0
    x, y = radius * math.cos(angle), radius * math.sin(angle)
    dx, dy = _rotate(-width / 2, rise, turn)
    return PlacedGlyph(glyph.font, glyph.code, x + dx, y + dy, turn, size)


def _rotate(x: float, y: float, degrees: float) -> tuple[float, float]:
    angle = math.radians(degrees)
    return (
        x * math.cos(angle) - y * math.sin(angle),
        x * math.sin(angle) + y * math.cos(angle),
    )


def _purpose(seal: VectorSeal) -> list[PlacedGlyph]:
    size = min(0.085, 0.62 / max(1, len(seal.purpose)))
    line = textrun.layout_line(seal.purpose, Face.SERIF, size, "purpose")
    left = -line.width / 2
    baseline = -0.5 * (0.42 if not seal.bilingual else 0.36)
    return [
        PlacedGlyph(glyph.font, glyph.code, left + glyph.x, baseline, 0.0, size)
        for glyph in line.glyphs
    ]


def _draw_glyph(canvas: Canvas, glyph: PlacedGlyph, diameter: float) -> None:
    canvas.saveState()
    canvas.translate(glyph.x * diameter, glyph.y * diameter)
    canvas.rotate(glyph.angle)
    placed = textrun.Glyph(glyph.font, glyph.code, 0.0, 0.0)
    line = textrun.Line(chr(glyph.code), glyph.size * diameter, (placed,), 0.0)
    textrun.draw_glyphs(canvas, line, 0.0, 0.0)
    canvas.restoreState()


def _svg_color() -> str:
    red, green, blue = (round(channel * 255) for channel in SEAL_RED)
    return f"#{red:02x}{green:02x}{blue:02x}"


def _svg_star(radius: float) -> str:
    points = " ".join(f"{x:.4f},{-y:.4f}" for x, y in star_points(radius))
    return f'<polygon points="{points}"/>'


@functools.cache
def _outline_font(font: FontFile) -> TTFont:
    path = fontset.FONT_DIR / font.file
    return TTFont(path, fontNumber=font.subfont_index, lazy=True)


def _svg_glyph(glyph: PlacedGlyph) -> str:
    tt_font = fontset.load_font(glyph.font)
    glyph_id = tt_font.face.charToGlyph[glyph.code]
    outline_font = _outline_font(glyph.font)
    glyph_set = outline_font.getGlyphSet()
    pen = SVGPathPen(glyph_set)
    glyph_set[outline_font.getGlyphName(glyph_id)].draw(pen)
    scale = glyph.size / outline_font["head"].unitsPerEm
    # SVG's y axis points down: flip the page and the glyph outline.
    transform = (
        f"translate({glyph.x:.4f},{-glyph.y:.4f}) rotate({-glyph.angle:.3f}) "
        f"scale({scale:.6f},{-scale:.6f})"
    )
    return f'<path transform="{transform}" d="{pen.getCommands()}"/>'


def _rasterize(pdf: bytes, size_px: int) -> bytes:
    command = shutil.which("pdftoppm")
    if command is None:
        raise InputError(
            "找不到 pdftoppm，无法生成印章图片",
            field="pdftoppm",
            value=None,
            fix="请安装 poppler-utils（Debian：apt-get install poppler-utils）",
        )
    with tempfile.TemporaryDirectory(prefix="elicense-seal-") as directory:
        source = Path(directory) / "seal.pdf"
        source.write_bytes(pdf)
        target = Path(directory) / "seal"
        subprocess.run(
            [
                command,
                "-png",
                "-singlefile",
                "-scale-to",
                str(size_px),
                str(source),
                str(target),
            ],
            check=True,
            capture_output=True,
            timeout=PNG_TIMEOUT_SECONDS,
        )
        return target.with_suffix(".png").read_bytes()


def _make_background_transparent(png: bytes) -> bytes:
    """Turn white into transparency, keeping the seal red at its coverage."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    _, green, _ = image.split()
    alpha = green.point(lambda value: 255 - value)
    red = Image.new("RGB", image.size, tuple(round(c * 255) for c in SEAL_RED))
    red.putalpha(alpha)
    output = io.BytesIO()
    red.save(output, format="PNG", optimize=False)
    return output.getvalue()
