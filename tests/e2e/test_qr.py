"""The QR code on a rendered page decodes, verifies offline and opens the page."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from esign.qrtoken import verify_token
from tests.e2e.conftest import PUBLIC_URL, IssuedSet
from tests.tools import need_tool
from verifier.trustlist import TrustList


def decode_qr_from_page(pdf: Path, tmp_path: Path, dpi: int = 150) -> str:
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    pdftoppm = need_tool("pdftoppm")
    prefix = tmp_path / "page"
    subprocess.run(
        [pdftoppm, "-r", str(dpi), "-f", "1", "-l", "1", "-png", str(pdf), str(prefix)],
        check=True,
    )
    image_path = next(tmp_path.glob("page*.png"))
    results = zxingcpp.read_barcodes(Image.open(image_path))
    qr_codes = [result for result in results if result.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qr_codes) == 1, f"expected one QR code, found {len(qr_codes)}"
    return qr_codes[0].text


@pytest.fixture(scope="module")
def decoded(issued: IssuedSet, tmp_path_factory) -> str:
    return decode_qr_from_page(issued.pdfs[0], tmp_path_factory.mktemp("qr"))


def test_qr_decodes_to_verify_url(decoded):
    assert decoded.upper().startswith(PUBLIC_URL.upper() + "/V/")


def test_qr_token_verifies_with_trust_anchors_only(decoded, issued):
    trust = TrustList.load(issued.data_dir / "trust")
    token = decoded.rsplit("/", 1)[1]
    claims = verify_token(token, trust.token_certificates())
    assert claims.elicense_id.startswith("1.2.156.3005.2.")
    assert issued.pdfs[0].stem == claims.elicense_id


def test_qr_url_opens_green_page(decoded, client):
    path = urlparse(decoded).path
    response = client.get(path)
    assert response.status_code == 200
    assert 'data-signal="green"' in response.text
    assert "证照真实有效" in response.text


def test_altered_token_gets_red_page(decoded, client):
    path = urlparse(decoded).path
    token = path.rsplit("/", 1)[1]
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    response = client.get(f"/V/{altered}")
    assert 'data-signal="red"' in response.text


def test_garbage_token_gets_red_page_not_500(client):
    response = client.get("/V/" + "Z" * 5000)
    assert response.status_code == 400
    assert 'data-signal="red"' in response.text
