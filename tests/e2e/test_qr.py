"""The QR code on a rendered page decodes, verifies offline and opens the page."""

from __future__ import annotations

import os
import re
import signal
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
    qr_codes = [
        result for result in results if result.format == zxingcpp.BarcodeFormat.QRCode
    ]
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


def test_qr_url_answers_head(decoded, client):
    path = urlparse(decoded).path
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_altered_token_gets_red_page(decoded, client):
    path = urlparse(decoded).path
    token = path.rsplit("/", 1)[1]
    middle = len(token) // 2
    altered = (
        token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    )
    response = client.get(f"/V/{altered}")
    assert 'data-signal="red"' in response.text


def test_garbage_token_gets_red_page_not_500(client):
    response = client.get("/V/" + "Z" * 5000)
    assert response.status_code == 400
    assert 'data-signal="red"' in response.text


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=412,900",
)
GREEN_BANNER = (0x13, 0x73, 0x33)


def _run_chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile; kill it by PID on timeout."""
    chromium = need_tool("chromium")
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def live_verify_url(issued: IssuedSet, service_context, private_server) -> str:
    """The verify URL of a real license, on a server of this test module."""
    url = service_context.issuing.verify_url_of(issued.pdfs[0].stem)
    assert url.startswith(PUBLIC_URL + "/V/")
    return private_server + url[len(PUBLIC_URL) :]


def test_browser_shows_green_verdict(live_verify_url, tmp_path):
    result = _run_chromium(tmp_path, "--dump-dom", live_verify_url)
    dom = result.stdout.decode("utf-8")
    banner = dom[dom.find('id="verdict"') :][:400]
    assert 'data-signal="green"' in dom, banner
    assert "证照真实有效" in dom
    assert "现行版本" in dom


def test_browser_screenshot_has_green_banner(live_verify_url, tmp_path):
    from PIL import Image

    screenshot = tmp_path / "verify-page.png"
    _run_chromium(tmp_path, f"--screenshot={screenshot}", live_verify_url)
    assert screenshot.is_file()
    image = Image.open(screenshot).convert("RGB")
    # The banner spans the page width below the header; sample its left edge.
    colours = {image.getpixel((30, y)) for y in range(60, 160, 4)}
    assert GREEN_BANNER in colours, sorted(colours)[:10]


def test_browser_altered_token_red(live_verify_url, tmp_path):
    token = live_verify_url.rsplit("/", 1)[1]
    middle = len(token) // 2
    altered = (
        token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    )
    base = live_verify_url.rsplit("/", 1)[0]
    result = _run_chromium(tmp_path, "--dump-dom", f"{base}/{altered}")
    dom = result.stdout.decode("utf-8")
    assert 'data-signal="red"' in dom
    assert "二维码签名无效" in dom


def test_verify_page_loads_nothing_from_other_hosts(decoded, client):
    html = client.get(urlparse(decoded).path).text
    urls = re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", html)
    hosts = {
        urlparse(url if url.startswith("http") else "http:" + url).netloc
        for url in urls
    }
    assert hosts <= {urlparse(PUBLIC_URL).netloc, "testserver"}, hosts
    assert "<script src" not in html
    assert "@import" not in html


def test_public_page_masks_citizen_id():
    import datetime as dt

    from elicense.web.verify_routes import public_holder_code
    from esign.qrtoken import TokenClaims
    from verifier.qr_check import QrResult, Signal

    claims = TokenClaims(
        "1.2.156.3005.2.X", "11010519491231002X", dt.date(2026, 1, 1), None, 1
    )
    result = QrResult(Signal.AMBER, "", (), True, claims)
    assert public_holder_code(result, "111") == "110105********002X"
    assert public_holder_code(result, "001") == "110105********002X"
