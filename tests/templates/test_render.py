"""Rendering the copy face: content, layout boxes, QR, text extraction."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from common.errors import InputError
from templates import RenderedLicense, preview_png, render_license
from templates.mongolian import date_mn, term_mn
from templates.page import PAGE_HEIGHT, PAGE_WIDTH
from templates.sections import format_date
from tests.templates.conftest import make_face, pdf_text, require_tool

LICENSE_TYPES = [
    "business_license",
    "individual_business_license",
    "food_business_license",
    "food_safety_manager_certificate",
]
_rendered: dict[str, tuple[dict, RenderedLicense]] = {}


@pytest.fixture
def rendered(request, catalogue, sample_by_type):
    """Render each license type once per session."""
    license_type = request.param
    if license_type not in _rendered:
        record = sample_by_type[license_type]
        template = catalogue.get(license_type)
        _rendered[license_type] = (
            record,
            render_license(template, record, make_face(record)),
        )
    return _rendered[license_type]


def by_type(function):
    return pytest.mark.parametrize("rendered", LICENSE_TYPES, indirect=True)(function)


@by_type
def test_render_is_pdf(rendered):
    _, result = rendered
    assert result.pdf.startswith(b"%PDF-")
    assert result.pages == 1


@by_type
def test_boxes_inside_page(rendered):
    _, result = rendered
    boxes = [result.seal_box, result.qr_box] + [b.as_tuple() for b in result.text_boxes]
    for page, x0, y0, x1, y1 in boxes:
        assert 0 <= page < result.pages
        assert 31 < x0 < x1 < PAGE_WIDTH - 31
        assert 31 < y0 < y1 < PAGE_HEIGHT - 31


@by_type
def test_text_boxes_do_not_overlap(rendered):
    _, result = rendered
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)


@by_type
def test_qr_box_has_no_other_mark(rendered):
    _, result = rendered
    page, x0, y0, x1, y1 = result.qr_box
    for box in result.text_boxes:
        outside = (
            box.page != page
            or box.x1 <= x0
            or box.x0 >= x1
            or box.y1 <= y0
            or box.y0 >= y1
        )
        assert outside, box
    assert not _overlap(result.qr_box, result.seal_box)


@by_type
def test_seal_covers_only_authority(rendered):
    _, result = rendered
    covered = [b for b in result.text_boxes if _overlap(result.seal_box, b.as_tuple())]
    assert covered
    assert {box.name for box in covered} == {"authority"}


@by_type
def test_qr_decodes_at_150_dpi(rendered):
    zxingcpp = pytest.importorskip("zxingcpp")
    require_tool("pdftoppm")
    record, result = rendered
    image = Image.open(io.BytesIO(preview_png(result.pdf, dpi=150)))
    codes = zxingcpp.read_barcodes(image)
    assert [code.text for code in codes] == [make_face(record).qr_text]


@by_type
def test_text_extracts_exactly(rendered, catalogue, tmp_path):
    record, result = rendered
    text = pdf_text(result.pdf, tmp_path)
    template = catalogue.get(record["license_type"])
    normalised = template.validate(record)
    displayed = {item for row in template.face.rows for item in row}
    displayed |= {template.face.block, template.holder_code_field}
    for name in sorted(displayed - {"term"}):
        value = normalised[name]
        if isinstance(value, dt.date):
            value = format_date(value)
        assert value is None or str(value) in text, name
    assert template.title in text
    assert record["authority_name"] in text
    assert make_face(record).elicense_id in text


@by_type
def test_mongolian_extracts_exactly(rendered, tmp_path):
    record, result = rendered
    text = pdf_text(result.pdf, tmp_path)
    issued = dt.date.fromisoformat(record["issued_on"])
    assert date_mn(issued) in text
    assert "\u180e" in date_mn(issued)


def test_mongolian_labels_on_business_license(catalogue, sample_by_type, tmp_path):
    record = sample_by_type["business_license"]
    result = render_license(
        catalogue.get("business_license"), record, make_face(record)
    )
    text = pdf_text(result.pdf, tmp_path)
    assert term_mn("名称") in text
    assert term_mn("类型") in text
    assert text.index(term_mn("名称")) < text.index("名称")


def test_no_mongolian_outside_inner_mongolia(catalogue, sample_by_type, tmp_path):
    record = sample_by_type["business_license"]
    face = make_face(record, authority_region="110105")
    result = render_license(catalogue.get("business_license"), record, face)
    text = pdf_text(result.pdf, tmp_path)
    assert not re.search("[\u1800-\u18af]", text)


def test_rare_characters_render(catalogue, samples, tmp_path):
    rare = {}
    for record in samples:
        for char in "䶮㛃𠀾":
            if char not in rare and char in str(record.values()):
                rare[char] = record
    assert sorted(rare) == sorted("䶮㛃𠀾")
    for char, record in rare.items():
        assert record is not None, char
        template = catalogue.get(record["license_type"])
        result = render_license(template, record, make_face(record))
        assert char in pdf_text(result.pdf, tmp_path)


def test_render_is_deterministic(catalogue, samples):
    first, second = samples[0], samples[-1]
    template = catalogue.get(first["license_type"])
    once = render_license(template, first, make_face(first)).pdf
    other = catalogue.get(second["license_type"])
    render_license(other, second, make_face(second))
    assert render_license(template, first, make_face(first)).pdf == once


def test_missing_glyph_names_code_point(catalogue, sample_by_type):
    record = dict(sample_by_type["business_license"])
    record["legal_representative"] = "张\U00030000"
    with pytest.raises(InputError) as raised:
        render_license(catalogue.get("business_license"), record, make_face(record))
    assert raised.value.field == "legal_representative"
    assert "U+30000" in str(raised.value)


def test_lower_case_qr_text_rejected(catalogue, sample_by_type):
    record = sample_by_type["business_license"]
    face = make_face(record, qr_text="http://127.0.0.1:8000/v/abc")
    with pytest.raises(InputError) as raised:
        render_license(catalogue.get("business_license"), record, face)
    assert raised.value.field == "qr_text"


def test_render_without_seal(catalogue, sample_by_type):
    record = sample_by_type["food_business_license"]
    face = make_face(record, seal=False)
    result = render_license(catalogue.get("food_business_license"), record, face)
    assert result.seal_box[0] == 0


def long_scope_record(samples) -> dict:
    """Return the sample with the longest scope, its scope made 5,500 long."""
    record = dict(max(samples, key=lambda r: len(r.get("business_scope", ""))))
    record["business_scope"] = (record["business_scope"] * 6)[:5500]
    return record


def test_long_scope_continues_on_page_two(catalogue, samples, tmp_path):
    record = long_scope_record(samples)
    scope = record["business_scope"]
    result = render_license(
        catalogue.get("business_license"), record, make_face(record)
    )
    assert result.pages >= 2
    pages = [pdf_text_page(result.pdf, tmp_path, n) for n in range(1, result.pages + 1)]
    assert "续见下页" in pages[0]
    assert "营业执照（副本）续页" in pages[1]
    first = re.search(r"经营范围\s+(\S+)", pages[0]).group(1)
    rest = "".join(
        re.search(r"经营范围（续）\s+(\S+)", page).group(1) for page in pages[1:]
    )
    assert first
    assert first + rest == scope


def test_long_scope_boxes_stay_apart(catalogue, samples):
    record = long_scope_record(samples)
    result = render_license(
        catalogue.get("business_license"), record, make_face(record)
    )
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)


def test_scope_shrinks_before_continuing(catalogue, samples):
    record = max(samples, key=lambda r: len(r.get("business_scope", "")))
    template = catalogue.get(record["license_type"])
    result = render_license(template, record, make_face(record))
    assert result.pages == 1


def pdf_text_page(pdf: bytes, tmp_path, page: int) -> str:
    tool = require_tool("pdftotext")
    source = tmp_path / "pages.pdf"
    source.write_bytes(pdf)
    arguments = [tool, "-enc", "UTF-8", "-f", str(page), "-l", str(page)]
    output = subprocess.run(
        [*arguments, str(source), "-"], capture_output=True, check=True
    )
    return output.stdout.decode("utf-8")


def _overlap(first, second) -> bool:
    return (
        first[0] == second[0]
        and first[1] < second[3]
        and second[1] < first[3]
        and first[2] < second[4]
        and second[2] < first[4]
    )


@pytest.mark.parametrize("license_type", LICENSE_TYPES)
def test_longest_allowed_values_fit(catalogue, sample_by_type, license_type):
    template = catalogue.get(license_type)
    record = dict(sample_by_type[license_type])
    for row in template.face.rows:
        for item in row:
            if item == "term":
                continue
            spec = template.field_spec(item)
            if spec.pattern is None and spec.max_length and spec.type.value == "text":
                record[item] = "国" * spec.max_length
    result = render_license(template, record, make_face(record))
    assert result.pages == 1
    for first, second in itertools.combinations(result.text_boxes, 2):
        assert not first.overlaps(second), (first, second)


def test_threads_render_same_bytes(catalogue, samples):
    records = samples[:8]

    def render(record: dict) -> bytes:
        template = catalogue.get(record["license_type"])
        return render_license(template, record, make_face(record)).pdf

    expected = [render(record) for record in records]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(render, records)) == expected


def document_keywords(pdf: bytes) -> str:
    reader = PdfFileReader(io.BytesIO(pdf))
    return str(reader.trailer["/Info"]["/Keywords"])


def test_keywords_name_business_holder(catalogue, sample_by_type):
    record = sample_by_type["business_license"]
    result = render_license(
        catalogue.get("business_license"), record, make_face(record)
    )
    lines = document_keywords(result.pdf).splitlines()
    assert f"holder_code={record['uscc']}" in lines
    assert f"authority_code={record['authority_code']}" in lines


def test_keywords_omit_citizen_id(catalogue, sample_by_type):
    record = sample_by_type["food_safety_manager_certificate"]
    template = catalogue.get("food_safety_manager_certificate")
    result = render_license(template, record, make_face(record))
    keywords = document_keywords(result.pdf)
    assert not any(line.startswith("holder_code=") for line in keywords.splitlines())
    assert record["id_number"] not in keywords
    assert f"license_type={template.license_type}" in keywords.splitlines()
    assert f"authority_name={record['authority_name']}" in keywords.splitlines()
