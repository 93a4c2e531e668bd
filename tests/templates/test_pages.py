"""Page images of every template: boxes, QR code, Mongolian placement, text.

The samples are a spread of the example records plus the person
certificate; each is rendered once and rasterised by pdftoppm.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import subprocess
import sys

import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from templates import preview_png, render_license
from templates.mongolian import term_mn
from templates.page import PAGE_HEIGHT, PAGE_WIDTH
from templates.sections import format_date
from tests.templates.conftest import (
    ROOT,
    make_face,
    pdf_text,
    person_sample,
    read_samples,
    require_tool,
)
from tests.templates.test_mongolian import glyph_ids_in_pdf, harfbuzz_glyph_ids

DPI = 100
SCALE = DPI / 72


def spread_samples() -> list[dict]:
    """Every 25th example record, the first of each type and the person."""
    samples = read_samples()
    chosen = samples[::25]
    for kind in {record["license_type"] for record in samples}:
        first = next(record for record in samples if record["license_type"] == kind)
        if first not in chosen:
            chosen.append(first)
    return [*chosen, person_sample()]


SAMPLES = spread_samples()
_pages: dict[int, tuple] = {}


@pytest.fixture(params=range(len(SAMPLES)), ids=lambda i: f"sample{i}")
def page(request, catalogue):
    """Render one sample and rasterise page 1, once per session."""
    index = request.param
    if index not in _pages:
        require_tool("pdftoppm")
        record = SAMPLES[index]
        template = catalogue.get(record["license_type"])
        result = render_license(template, record, make_face(record))
        image = Image.open(io.BytesIO(preview_png(result.pdf, dpi=DPI))).convert("L")
        _pages[index] = (record, template, result, image)
    return _pages[index]


def pixels(box) -> tuple[int, int, int, int]:
    """Return the image rectangle (left, top, right, bottom) of a PDF box."""
    _, x0, y0, x1, y1 = box
    top = round((PAGE_HEIGHT - y1) * SCALE)
    bottom = round((PAGE_HEIGHT - y0) * SCALE)
    return round(x0 * SCALE), top, round(x1 * SCALE), bottom


def ink(image: Image.Image, box) -> int:
    """Return the number of dark pixels inside a PDF box."""
    crop = image.crop(pixels(box))
    return sum(crop.histogram()[:128])


def test_page_size_matches_a4(page):
    *_, image = page
    assert abs(image.width - PAGE_WIDTH * SCALE) <= 1
    assert abs(image.height - PAGE_HEIGHT * SCALE) <= 1


def test_every_box_inside_page(page):
    _, _, result, _ = page
    boxes = [result.seal_box, result.qr_box, *(b.as_tuple() for b in result.text_boxes)]
    for box in boxes:
        left, top, right, bottom = pixels(box)
        assert 0 <= left < right <= PAGE_WIDTH * SCALE, box
        assert 0 <= top < bottom <= PAGE_HEIGHT * SCALE, box


def test_text_boxes_hold_ink(page):
    *_, result, image = page
    for box in result.text_boxes:
        if box.page == 0:
            assert ink(image, box.as_tuple()) > 0, box


def test_qr_seal_and_text_apart(page):
    _, _, result, _ = page
    qr = result.qr_box
    seal = result.seal_box
    assert not _overlap(qr, seal)
    for box in result.text_boxes:
        assert not _overlap(qr, box.as_tuple()), box
        if box.name != "authority":
            assert not _overlap(seal, box.as_tuple()), box
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)


def test_qr_decodes(page):
    zxingcpp = pytest.importorskip("zxingcpp")
    record, _, _, image = page
    codes = zxingcpp.read_barcodes(image)
    assert [code.text for code in codes] == [make_face(record).qr_text]


def test_extracted_text_equals_input(page, tmp_path):
    record, template, result, _ = page
    text = pdf_text(result.pdf, tmp_path)
    values = template.validate(record)
    shown = {item for row in template.face.rows for item in row} - {"term"}
    shown |= {template.face.block, template.holder_code_field}
    for name in sorted(shown):
        value = values[name]
        if isinstance(value, dt.date):
            value = format_date(value)
        if value is not None:
            assert str(value) in text, name
    assert record["authority_name"] in text
    assert template.title in text


def test_mongolian_first_and_apart(page):
    _, _, result, _ = page
    boxes = result.text_boxes
    for box in boxes:
        if not box.name.startswith("label_mn:"):
            continue
        item = box.name.removeprefix("label_mn:")
        chinese = next(b for b in boxes if b.name == f"label:{item}")
        assert box.x1 <= chinese.x0, (box, chinese)
        assert box.y1 - box.y0 > box.x1 - box.x0, box


def _overlap(first, second) -> bool:
    return (
        first[0] == second[0]
        and first[1] < second[3]
        and second[1] < first[3]
        and first[2] < second[4]
        and second[2] < first[4]
    )


def test_title_column_left_of_title(catalogue, sample_by_type, tmp_path):
    """A title with a sourced Mongolian form gets a column left of it."""
    record = sample_by_type["business_license"]
    template = dataclasses.replace(catalogue.get("business_license"), title="人民政府")
    result = render_license(template, record, make_face(record, seal=False))
    boxes = {box.name: box for box in result.text_boxes}
    column, title = boxes["title_mn"], boxes["title"]
    assert column.x1 <= title.x0
    assert column.y1 - column.y0 > column.x1 - column.x0
    assert column.x0 > boxes["holder_code"].x1
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)
    drawn = glyph_ids_in_pdf(result.pdf)
    expected = harfbuzz_glyph_ids(term_mn("人民政府"))
    assert drawn[: len(expected)] == expected
    assert term_mn("人民政府") in pdf_text(result.pdf, tmp_path)


def test_horizontal_setting_puts_mongolian_above(catalogue, sample_by_type):
    record = sample_by_type["business_license"]
    template = catalogue.get("business_license")
    face = dataclasses.replace(template.face, mongolian_direction="horizontal")
    template = dataclasses.replace(template, face=face)
    result = render_license(template, record, make_face(record, seal=False))
    boxes = {box.name: box for box in result.text_boxes}
    assert boxes["label_mn:name"].y0 > boxes["label:name"].y1
    assert boxes["label_mn:name"].x1 - boxes["label_mn:name"].x0 > 20
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)


def test_mongolian_authority_above_seal(catalogue, sample_by_type, tmp_path):
    record = dict(
        sample_by_type["business_license"], authority_name="内蒙古自治区人民政府"
    )
    template = catalogue.get("business_license")
    result = render_license(template, record, make_face(record))
    seal = result.seal_box
    mongolian = [box for box in result.text_boxes if box.name == "authority_mn"]
    assert len(mongolian) == 2
    for box in mongolian:
        assert box.y0 > seal[4], box
        assert not _overlap(result.qr_box, box.as_tuple())
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)
    name = f"{term_mn('内蒙古自治区')} {term_mn('人民政府')}"
    assert name in pdf_text(result.pdf, tmp_path)
    drawn = glyph_ids_in_pdf(result.pdf)
    expected = harfbuzz_glyph_ids(name)
    assert any(drawn[i : i + len(expected)] == expected for i in range(len(drawn)))


def test_every_font_embedded(page):
    _, _, result, _ = page
    reader = PdfFileReader(io.BytesIO(result.pdf))
    fonts = reader.root["/Pages"]["/Kids"][0]["/Resources"]["/Font"]
    assert len(fonts) >= 2
    for reference in fonts.values():
        font = reference.get_object()
        assert font["/Subtype"] == "/Type0"
        (descendant,) = font["/DescendantFonts"]
        descriptor = descendant.get_object()["/FontDescriptor"]
        assert "/FontFile2" in descriptor


RENDER_SCRIPT = """
import sys
from tests.templates.conftest import make_face, read_samples
from templates import load_catalogue, render_license
record = read_samples()[int(sys.argv[1])]
template = load_catalogue().get(record["license_type"])
sys.stdout.buffer.write(render_license(template, record, make_face(record)).pdf)
"""


def test_bytes_equal_across_processes(catalogue):
    index = 3
    record = read_samples()[index]
    template = catalogue.get(record["license_type"])
    expected = render_license(template, record, make_face(record)).pdf
    output = subprocess.run(
        [sys.executable, "-c", RENDER_SCRIPT, str(index)],
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    assert output.stdout == expected
