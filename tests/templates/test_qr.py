"""QR code: alphanumeric mode, fixed mask and the quiet zone on the page."""

from __future__ import annotations

import io

import pytest
import qrcode
from PIL import Image
from qrcode.util import MODE_ALPHA_NUM, QRData, create_data

from common.errors import InputError
from templates import preview_png, render_license
from templates.qr import (
    QUIET_ZONE_MODULES,
    module_count_with_quiet_zone,
    qr_matrix,
    version_for_length,
)
from templates.qrdata import codewords
from tests.templates.conftest import make_face, qr_text_for, require_tool

DPI = 150


def version_of(matrix) -> int:
    return (len(matrix) - 17) // 4


def test_url_encodes_in_alphanumeric_mode():
    text = qr_text_for("alphanumeric")
    assert len(text) > 280
    # Byte mode would need version 13 at level M for this length.
    assert version_of(qr_matrix(text)) <= 11


def test_matrix_is_stable():
    text = qr_text_for("stable")
    assert qr_matrix(text) == qr_matrix(text + "")


@pytest.mark.parametrize(
    "text", ["http://127.0.0.1/v/abc", "HTTP://HOST/V/A=B", "证照"]
)
def test_non_alphanumeric_text_rejected(text):
    with pytest.raises(InputError) as raised:
        qr_matrix(text)
    assert raised.value.field == "qr_text"


def test_quiet_zone_is_blank_on_page(catalogue, sample_by_type):
    require_tool("pdftoppm")
    record = sample_by_type["business_license"]
    face = make_face(record)
    result = render_license(catalogue.get("business_license"), record, face)
    image = Image.open(io.BytesIO(preview_png(result.pdf, dpi=DPI))).convert("L")
    _, x0, y0, x1, y1 = result.qr_box
    scale = DPI / 72
    top = image.height - y1 * scale
    module = (x1 - x0) * scale / module_count_with_quiet_zone(qr_matrix(face.qr_text))
    band = QUIET_ZONE_MODULES * module - 1.5
    left, right, bottom = x0 * scale, x1 * scale, image.height - y0 * scale
    for x in range(round(left) + 1, round(right) - 1):
        for y in range(round(top) + 1, round(bottom) - 1):
            inside = left + band < x < right - band and top + band < y < bottom - band
            if not inside:
                assert image.getpixel((x, y)) > 240, (x, y)


@pytest.mark.parametrize("length", [20, 77, 150, 272, 303])
def test_fixed_version_matches_fitted_code(length):
    text = (qr_text_for(f"fit{length}") * 2)[:length]
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, border=0, mask_pattern=0
    )
    code.add_data(QRData(text, mode=MODE_ALPHA_NUM))
    code.make(fit=True)
    assert qr_matrix(text) == tuple(tuple(row) for row in code.get_matrix())


@pytest.mark.parametrize("length", [1, 2, 19, 20, 77, 150, 271, 272, 303, 400])
def test_codewords_match_qrcode(length):
    text = (qr_text_for(f"words{length}") * 2)[:length]
    version = version_for_length(length)
    expected = create_data(
        version, qrcode.constants.ERROR_CORRECT_M, [QRData(text, mode=MODE_ALPHA_NUM)]
    )
    assert codewords(text, version) == list(expected)
