"""Vector seal artwork: drawing, SVG and PNG export, bilingual rings."""

from __future__ import annotations

import io
import math
from xml.etree import ElementTree

import pytest
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from common.errors import InputError
from esign.seal_artwork import VectorSeal, star_points
from templates import SealArtwork, fontset
from templates.mongolian import authority_name_mn
from tests.templates.conftest import require_tool

CHINESE_ONLY = VectorSeal(
    "呼和浩特市新城区市场监督管理局", None, "证照专用章", "1501020012345"
)
BILINGUAL = VectorSeal(
    "内蒙古自治区人民政府", authority_name_mn("内蒙古自治区人民政府"), "证照专用章"
)


def seal_pdf(seal: VectorSeal) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, invariant=1, initialFontName=fontset.initial_font_name())
    with fontset.RENDER_LOCK:
        seal.draw(canvas, 300, 400, 108)
        canvas.showPage()
        canvas.save()
    return buffer.getvalue()


def test_seal_is_artwork():
    assert isinstance(CHINESE_ONLY, SealArtwork)


def test_seal_pdf_is_small():
    assert len(seal_pdf(CHINESE_ONLY)) < 40_000


def test_seal_draws_every_character():
    glyphs = CHINESE_ONLY.glyphs()
    text = "".join(chr(g.code) for g in glyphs)
    for char in "呼和浩特市新城区市场监督管理局证照专用章1501020012345":
        assert char in text


def test_name_runs_over_the_top():
    glyphs = [g for g in CHINESE_ONLY.glyphs() if g.size > 0.05]
    name = glyphs[: len(CHINESE_ONLY.authority_name)]
    assert name[0].x < 0
    assert name[-1].x > 0
    assert max(g.y for g in name) > 0.3


def test_bilingual_mongolian_outside_chinese():
    glyphs = BILINGUAL.glyphs()
    mongolian = [g for g in glyphs if g.font is fontset.MONGOLIAN]
    chinese = [g for g in glyphs if g.font is fontset.SERIF and g.angle != 0.0]
    assert mongolian
    outer = min(math.hypot(g.x, g.y) for g in mongolian)
    inner = max(math.hypot(g.x, g.y) for g in chinese)
    assert outer > inner


def test_bilingual_rings_equal_size():
    glyphs = BILINGUAL.glyphs()
    mongolian = {round(g.size, 6) for g in glyphs if g.font is fontset.MONGOLIAN}
    chinese = {round(g.size, 6) for g in glyphs if g.font is fontset.SERIF and g.angle}
    assert mongolian == chinese


def test_svg_is_valid_xml():
    svg = BILINGUAL.to_svg()
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == len(BILINGUAL.glyphs())


def test_png_size_and_transparency():
    require_tool("pdftoppm")
    image = Image.open(io.BytesIO(CHINESE_ONLY.to_png(256)))
    assert image.size == (256, 256)
    assert image.mode == "RGBA"
    assert image.getpixel((2, 2))[3] == 0
    assert image.getchannel("A").getextrema()[1] > 200


def test_png_size_out_of_range():
    with pytest.raises(InputError):
        CHINESE_ONLY.to_png(4)


def test_empty_name_rejected():
    with pytest.raises(InputError):
        VectorSeal("  ")


def test_name_without_glyph_rejected():
    with pytest.raises(InputError, match=r"U\+30000"):
        VectorSeal("\U00030000市场监督管理局")


def test_star_has_ten_corners():
    points = star_points(1.0)
    assert len(points) == 10
    assert points[0] == pytest.approx((0.0, 1.0))
