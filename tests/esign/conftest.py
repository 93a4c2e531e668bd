"""A development PKI per test session, with a fixed clock and a local server.

The server on 127.0.0.1 publishes the PKI the way the web layer will:
``/pki/crl/NAME.crl``, ``/pki/ca/NAME.cer``, ``/pki/ocsp`` and ``/pki/tsa``,
so that poppler's OCSP checks and the HTTP timestamp client reach a real
responder.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from esign_tools import need_tool
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from common.authority import Authority, AuthorityRegistry
from esign.keystore import Pkcs11Config
from esign.pki import DevPki, ValidationData, ensure_dev_pki
from esign.revocation import answer_ocsp_request
from esign.signing import LicenseSigner, SignatureLevel
from esign.timestamps import BuiltinTimeStamper, answer_timestamp_request

PKI_CREATED_AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SIGNED_AT = PKI_CREATED_AT + timedelta(hours=2)
PASSPHRASE = b"test-passphrase-not-secret"
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


@dataclass
class PkiServer:
    """A local HTTP server for the PKI endpoints of one DevPki."""

    base_url: str
    pki: DevPki | None = None
    timestamper: BuiltinTimeStamper | None = None


def _handler_for(server_state: PkiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def do_GET(self) -> None:
            assert server_state.pki is not None
            name = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/pki/crl/"):
                path = server_state.pki.crl_path(name.removesuffix(".crl"))
            elif self.path.startswith("/pki/ca/"):
                path = server_state.pki.ca_der_path(name.removesuffix(".cer"))
            else:
                path = None
            if path is None or not path.exists():
                self.send_error(404)
                return
            self._reply(path.read_bytes(), "application/octet-stream")

        def do_POST(self) -> None:
            assert server_state.pki is not None
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/pki/ocsp":
                answer = answer_ocsp_request(server_state.pki, body)
                self._reply(answer, "application/ocsp-response")
            elif self.path == "/pki/tsa" and server_state.timestamper:
                answer = answer_timestamp_request(server_state.timestamper, body)
                self._reply(answer, "application/timestamp-reply")
            else:
                self.send_error(404)

        def _reply(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture(scope="session")
def pki_server() -> Iterator[PkiServer]:
    state = PkiServer(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="session")
def authorities() -> list[Authority]:
    return list(AuthorityRegistry.load())[:3]


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("elicense-data")


@pytest.fixture(scope="session")
def dev_pki(
    pki_dir: Path, authorities: list[Authority], pki_server: PkiServer
) -> DevPki:
    """The session PKI. Tests that revoke or add must use ``pki_copy``."""
    pki = ensure_dev_pki(
        pki_dir,
        authorities,
        base_url=pki_server.base_url,
        passphrase=PASSPHRASE,
        now=PKI_CREATED_AT,
    )
    pki_server.pki = pki
    pki_server.timestamper = pki.load_timestamper(clock=lambda: SIGNED_AT)
    return pki


@pytest.fixture
def pki_copy(dev_pki: DevPki, tmp_path: Path) -> DevPki:
    """A private copy of the session PKI, free to revoke certificates in."""
    target = tmp_path / "data"
    shutil.copytree(dev_pki.data_dir, target)
    return DevPki(target, PASSPHRASE, dev_pki.urls.base_url)


@pytest.fixture(scope="session")
def timestamper(dev_pki: DevPki) -> BuiltinTimeStamper:
    return dev_pki.load_timestamper(clock=lambda: SIGNED_AT)


@pytest.fixture(scope="session")
def validation_data(dev_pki: DevPki) -> ValidationData:
    return dev_pki.validation_data(PKI_CREATED_AT)


@pytest.fixture(scope="session")
def license_signers(
    dev_pki: DevPki,
    authorities: list[Authority],
    timestamper: BuiltinTimeStamper,
    validation_data: ValidationData,
) -> dict[SignatureLevel, LicenseSigner]:
    """One reusable signer per level, all with the first authority's seal."""
    seal = dev_pki.load_seal(authorities[0].code)
    return {
        level: LicenseSigner(
            seal,
            level=level,
            timestamper=timestamper,
            validation_data=validation_data,
            clock=lambda: SIGNED_AT,
        )
        for level in SignatureLevel
    }


@pytest.fixture(scope="session")
def sample_pdf() -> bytes:
    """A one-page A4 PDF standing in for a rendered license."""
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, pageCompression=0)
    page.setTitle("sample license")
    page.drawString(72, 770, "Sample business license 0001")
    page.circle(450, 150, 60)
    page.showPage()
    page.save()
    return buffer.getvalue()


@pytest.fixture(scope="session")
def nss_db(dev_pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting the session root for document signatures."""
    need_tool("certutil")
    need_tool("pdfsig")
    directory = tmp_path_factory.mktemp("nss")
    database = f"sql:{directory}"
    subprocess.run(
        ["certutil", "-N", "-d", database, "--empty-password"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "certutil",
            "-A",
            "-d",
            database,
            "-n",
            "root",
            "-t",
            ",C,",
            "-i",
            str(dev_pki.trust_root_path),
        ],
        check=True,
        capture_output=True,
    )
    return database


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pkcs11Config]:
    """One SoftHSM2 token for the session, in its own configuration directory.

    The PKCS#11 module stays loaded for the whole process and reads its
    configuration only when first loaded, so every test shares this token.
    """
    need_tool("softhsm2-util")
    if not SOFTHSM_MODULE.exists():
        pytest.skip(f"SoftHSM2 module {SOFTHSM_MODULE} is not installed")
    directory = tmp_path_factory.mktemp("softhsm")
    tokens = directory / "tokens"
    tokens.mkdir()
    config = directory / "softhsm2.conf"
    config.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(config))
        softhsm(
            "--init-token",
            "--free",
            "--label",
            "elicense-test",
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        )
        pin_file = directory / "pin"
        pin_file.write_text("1234\n")
        yield Pkcs11Config(
            SOFTHSM_MODULE,
            "elicense-test",
            pin_file=pin_file,
            pin_env="ELICENSE_TEST_UNSET_PIN",
        )


def softhsm(*arguments: str) -> None:
    subprocess.run(
        ["softhsm2-util", *arguments],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        timeout=60,
    )
