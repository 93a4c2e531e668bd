"""Seals end to end: the ``elicense seal`` commands, issuance and verification.

One data directory is made with ``elicense init`` per module; each test that
changes it works on a copy. Outside judges are pyhanko (in process and its
``adesverify`` command) and poppler's ``pdfsig``.
"""

from __future__ import annotations

import datetime as dt

import io
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import ValidationContext, validate_pdf_signature
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from tests.e2e.conftest import PUBLIC_URL, REPO, SAMPLE, copy_data_dir
from tests.e2e.judges import nss_database, pdfsig, pyhanko_validate
from tests.tools import need_tool

AUTHORITY = "11150000MA7XQ0CB8J"  # 内蒙古自治区市场监督管理局, 19 sample records
SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")


def elicense(
    *args: str, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``elicense`` in a subprocess with a clean environment plus ``env``.

    Used where the process matters: PKCS#11 modules read their configuration
    once per process, and ``elicense verify`` as a user runs it.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ELICENSE_")}
    clean.update({"ELICENSE_PUBLIC_URL": PUBLIC_URL, "ELICENSE_OPERATOR": "测试员"})
    clean.update(env or {})
    command = [sys.executable, "-m", "elicense.cli", *args, "--data-dir", str(data_dir)]
    return subprocess.run(
        command, capture_output=True, text=True, env=clean, cwd=REPO, timeout=120
    )


def cli(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> Result:
    """Run ``elicense`` in this process through click's test runner."""
    from elicense.cli import main

    environment: dict[str, str | None] = {
        key: None for key in os.environ if key.startswith("ELICENSE_")
    }
    environment.update(
        {"ELICENSE_PUBLIC_URL": PUBLIC_URL, "ELICENSE_OPERATOR": "测试员"}
    )
    environment.update(env or {})
    return CliRunner().invoke(
        main,
        [*args, "--data-dir", str(data_dir)],
        env=environment,
        catch_exceptions=False,
    )


def records_of(authority: str) -> list[dict]:
    """Sample records of one authority that are in force today.

    Records dated in the future are rejected at issuance, and licenses past
    the end of their term verify as expired.
    """
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    today = dt.date.today().isoformat()
    return [
        r
        for r in map(json.loads, lines)
        if r["authority_code"] == authority
        and r["issued_on"] <= today
        and (r.get("term_to") or r.get("valid_until") or "9999") >= today
    ]


def write_records(path: Path, records: list[dict]) -> Path:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    return path


def license_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "elicense.db") as connection:
        return connection.execute("select count(*) from license_versions").fetchone()[0]


def blob_count(data_dir: Path) -> int:
    return sum(1 for path in (data_dir / "blobs").rglob("*") if path.is_file())


def seal_code_of(data_dir: Path, authority: str) -> str:
    for record_path in sorted((data_dir / "pki" / "seals").glob("*/seal.json")):
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record["authority"]["code"] == authority and record["status"] == "active":
            return record["code"]
    raise AssertionError(f"no active seal for {authority}")


@pytest.fixture(scope="module")
def seal_home(issued, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's data directory (``elicense init`` and issue)."""
    data_dir = tmp_path_factory.mktemp("seals") / "data"
    copy_data_dir(issued.data_dir, data_dir)
    return data_dir


@pytest.fixture
def home(seal_home: Path, tmp_path: Path) -> Path:
    """A private copy of the module's data directory."""
    target = tmp_path / "data"
    copy_data_dir(seal_home, target)
    return target


# The seal commands


def test_seal_list_shows_every_seal(seal_home):
    result = cli("seal", "list", data_dir=seal_home)

    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(list((seal_home / "pki" / "seals").glob("*/seal.json")))
    assert any(
        AUTHORITY in line and "证照专用章" in line and "启用" in line for line in lines
    )


def test_seal_show_prints_history(seal_home):
    code = seal_code_of(seal_home, AUTHORITY)

    result = cli("seal", "show", code, data_dir=seal_home)

    assert result.exit_code == 0, result.stderr
    assert f"印章编码：{code}" in result.stdout
    assert "行政层级：自治区" in result.stdout
    assert "申请 → 待激活" in result.stdout
    assert "启用 → 启用" in result.stdout


def test_seal_show_bad_code_explains(seal_home):
    result = cli("seal", "show", "12345", data_dir=seal_home)

    assert result.exit_code == 1
    assert "13 位数字" in result.stderr
    assert "Traceback" not in result.stderr


def test_seal_commands_need_operator(seal_home):
    code = seal_code_of(seal_home, AUTHORITY)

    result = cli(
        "seal",
        "suspend",
        code,
        "--reason",
        "x",
        data_dir=seal_home,
        env={"ELICENSE_OPERATOR": ""},
    )

    assert result.exit_code == 2
    assert "--operator" in result.stderr


def test_expiring_warns_ahead(seal_home):
    quiet = cli("seal", "expiring", "--days", "30", data_dir=seal_home)
    loud = cli("seal", "expiring", "--days", "4000", data_dir=seal_home)

    assert quiet.exit_code == 0, quiet.stderr
    assert "没有到期的印章" in quiet.stdout
    assert loud.exit_code == 1
    assert "预警" in loud.stdout
    assert "elicense seal renew" in loud.stdout


def test_suspended_seal_rejects_issue(home, tmp_path):
    code = seal_code_of(home, AUTHORITY)
    records = write_records(tmp_path / "one.jsonl", records_of(AUTHORITY)[:1])
    before = (license_count(home), blob_count(home))

    suspended = cli(
        "seal", "suspend", code, "--reason", "印章保管人调岗", data_dir=home
    )
    rejected = cli("issue", str(records), data_dir=home)

    assert suspended.exit_code == 0, suspended.stderr
    assert "拒绝 1 条" in rejected.stdout
    assert f"证照专用章 {code}" in rejected.stderr
    assert "暂停" in rejected.stderr
    assert "印章保管人调岗" in rejected.stderr
    assert (license_count(home), blob_count(home)) == before

    cli("seal", "resume", code, "--reason", "交接完成", data_dir=home)
    issued = cli("issue", str(records), data_dir=home)

    assert "签发 1 张" in issued.stdout, issued.stderr
    assert license_count(home) == before[0] + 1


def test_renew_with_dev_ca_keeps_code(home):
    code = seal_code_of(home, AUTHORITY)
    before = json.loads((home / "pki" / "seals" / code / "seal.json").read_text())

    result = cli("seal", "renew", code, "--dev-ca", data_dir=home)

    assert result.exit_code == 0, result.stderr
    after = json.loads((home / "pki" / "seals" / code / "seal.json").read_text())
    assert after["code"] == code
    assert after["certificate"]["serial"] != before["certificate"]["serial"]
    history = (home / "pki" / "seals" / code / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in history][-2:] == [
        "renewal_requested",
        "renewed",
    ]


def test_request_and_import_outside_chain(home, tmp_path):
    csr_path = tmp_path / "seal.csr"
    requested = cli(
        "seal",
        "request",
        "--authority",
        AUTHORITY,
        "--type",
        "official",
        "--csr-out",
        str(csr_path),
        data_dir=home,
    )
    assert requested.exit_code == 0, requested.stderr
    code = re.search(r"\d{13}", requested.stdout).group()
    chain = tmp_path / "chain.pem"
    chain.write_bytes(_issue_with_dev_ca(home, csr_path.read_bytes()))

    imported = cli("seal", "import", code, str(chain), data_dir=home)
    wrong = cli(
        "seal", "import", code, str(home / "trust" / "root-ca.pem"), data_dir=home
    )

    assert imported.exit_code == 0, imported.stderr
    assert "状态：启用" in imported.stdout
    assert wrong.exit_code == 1
    assert "没有待导入证书的签名请求" in wrong.stderr


def _issue_with_dev_ca(data_dir: Path, csr_pem: bytes) -> bytes:
    """Stand in for the outside CA: the development CA signs the CSR."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki

    settings = Settings(data_dir=data_dir)
    pki = DevPki(data_dir, load_passphrase(settings), PUBLIC_URL)
    certificate = pki.issue_seal_certificate(
        x509.load_pem_x509_csr(csr_pem), datetime.now(UTC)
    )
    chain = [certificate, pki.certificate("issuing-ca")]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)


# Revocation


@dataclass(frozen=True)
class Revoked:
    data_dir: Path
    earlier_pdf: Path
    code: str
    revoke_output: str
    licenses_before_issue: int
    issue_after: Result


@pytest.fixture(scope="module")
def revoked(seal_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Revoked:
    """A license issued, then its seal revoked through the command line."""
    base = tmp_path_factory.mktemp("revoked")
    data_dir = base / "data"
    copy_data_dir(seal_home, data_dir)
    records = records_of(AUTHORITY)
    out = base / "out"
    issued = cli(
        "issue",
        str(write_records(base / "before.jsonl", records[:1])),
        "--out",
        str(out),
        data_dir=data_dir,
    )
    assert "签发 1 张" in issued.stdout, issued.stderr
    code = seal_code_of(data_dir, AUTHORITY)
    time.sleep(1.1)  # the revocation time has whole seconds
    revoke = cli(
        "seal",
        "revoke",
        code,
        "--reason",
        "私钥疑似泄露",
        "--crl-reason",
        "key_compromise",
        data_dir=data_dir,
    )
    assert revoke.exit_code == 0, revoke.stderr
    count = license_count(data_dir)
    after = cli(
        "issue",
        str(write_records(base / "after.jsonl", records[1:2])),
        data_dir=data_dir,
    )
    return Revoked(data_dir, next(out.glob("*.pdf")), code, revoke.stdout, count, after)


def test_revoke_reports_crl(revoked):
    assert f"印章 {revoked.code} 已吊销" in revoked.revoke_output
    assert "CRL" in revoked.revoke_output


def test_ocsp_answers_revoked_after_revoke(revoked):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki
    from esign.revocation import answer_ocsp_request

    data_dir = revoked.data_dir
    pki = DevPki(data_dir, load_passphrase(Settings(data_dir=data_dir)), PUBLIC_URL)
    seal_pem = (data_dir / "pki" / "seals" / revoked.code / "seal.pem").read_bytes()
    certificate = x509.load_pem_x509_certificate(seal_pem)
    request = ocsp.OCSPRequestBuilder().add_certificate(
        certificate, pki.certificate("issuing-ca"), hashes.SHA256()
    )
    body = request.build().public_bytes(serialization.Encoding.DER)

    response = ocsp.load_der_ocsp_response(answer_ocsp_request(pki, body))

    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_reason == x509.ReasonFlags.key_compromise


def test_license_before_revocation_still_valid(revoked):
    result = elicense("verify", str(revoked.earlier_pdf), data_dir=revoked.data_dir)

    verdict = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert verdict["outcome"] == "valid"


def test_pyhanko_fresh_crl_trusts_earlier_license(revoked):
    status = _pyhanko_status(revoked.data_dir, revoked.earlier_pdf.read_bytes())

    assert status.intact
    assert status.trusted
    assert not status.revoked


def test_adesverify_accepts_earlier_license(revoked):
    root = revoked.data_dir / "trust" / "root-ca.pem"

    ok, text = pyhanko_validate(revoked.earlier_pdf, root)

    assert ok, text


def test_issue_after_revocation_rejected(revoked):
    after = revoked.issue_after

    assert "签发 0 张" in after.stdout
    assert "拒绝 1 条" in after.stdout
    assert f"证照专用章 {revoked.code}" in after.stderr
    assert "已吊销" in after.stderr
    assert "私钥疑似泄露" in after.stderr
    assert license_count(revoked.data_dir) == revoked.licenses_before_issue


@pytest.fixture(scope="module")
def forced_signatures(revoked) -> dict[str, bytes]:
    """Signatures made with the revoked seal's key, bypassing the registry.

    B-T carries no revocation data. B-LT embeds the CRLs from before the
    revocation, as a holder of a stolen key could.
    """
    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki
    from esign.signing import LicenseSigner, SignatureLevel

    data_dir = revoked.data_dir
    pki = DevPki(data_dir, load_passphrase(Settings(data_dir=data_dir)), PUBLIC_URL)
    seal = pki.load_seal(AUTHORITY)
    stale = pki.validation_data()
    stale = replace(stale, crls=tuple(_crls_before_revocation(data_dir, pki)))
    pdf = _plain_pdf()
    timestamper = pki.load_timestamper()
    return {
        "B-T": LicenseSigner(
            seal, level=SignatureLevel.B_T, timestamper=timestamper
        ).sign(pdf),
        "B-LT": LicenseSigner(
            seal,
            level=SignatureLevel.B_LT,
            timestamper=timestamper,
            validation_data=stale,
        ).sign(pdf),
    }


def _crls_before_revocation(data_dir: Path, pki) -> list:
    """Re-issue CRLs from a state without the revocation, as a forger's copy."""
    from asn1crypto import crl as asn1_crl

    from esign.revocation import RevocationState, issue_crl

    crls = []
    for name in ("root-ca", "issuing-ca"):
        state = pki.revocation_state(name)
        old = RevocationState(state.crl_number, state.issued, {})
        crls.append(
            asn1_crl.CertificateList.load(
                issue_crl(pki.issuer(name), old, datetime.now(UTC))
            )
        )
    return crls


@pytest.mark.parametrize("level", ["B-T", "B-LT"])
def test_signature_after_revocation_invalid(
    revoked, forced_signatures, level, tmp_path
):
    data_dir = revoked.data_dir
    path = tmp_path / "forced.pdf"
    path.write_bytes(forced_signatures[level])

    result = cli("verify", str(path), "--offline", data_dir=data_dir)

    verdict = json.loads(result.stdout)
    trust = next(step for step in verdict["steps"] if step["name"] == "trust")
    assert result.exit_code == 1, result.stdout
    assert verdict["outcome"] == "invalid"
    assert trust["status"] == "failed"
    assert any("吊销" in reason for reason in trust["reasons"]), trust


@pytest.mark.parametrize("level", ["B-T", "B-LT"])
def test_pyhanko_rejects_signature_after_revocation(revoked, forced_signatures, level):
    status = _pyhanko_status(revoked.data_dir, forced_signatures[level])

    assert status.intact
    assert not status.trusted


def test_esign_signer_refuses_revoked_seal(revoked):
    from common.errors import TrustError
    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki
    from esign.signing import LicenseSigner, SignatureLevel

    data_dir = revoked.data_dir
    pki = DevPki(data_dir, load_passphrase(Settings(data_dir=data_dir)), PUBLIC_URL)
    signer = LicenseSigner(
        pki.load_seal(AUTHORITY),
        level=SignatureLevel.B_LT,
        timestamper=pki.load_timestamper(),
        validation_data=pki.validation_data,
    )

    with pytest.raises(TrustError):
        signer.sign(_plain_pdf())


def _pyhanko_status(data_dir: Path, pdf: bytes):
    """Validate at the signature's timestamp with the CRLs of today."""
    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki

    pki = DevPki(data_dir, load_passphrase(Settings(data_dir=data_dir)), PUBLIC_URL)
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures[0]
    timestamp = _timestamp_time(signature)
    context = ValidationContext(
        trust_roots=pki.trust_roots(),
        other_certs=pki.ca_certificates(),
        crls=pki.crls(),
        allow_fetching=False,
        revocation_mode="hard-fail",
        moment=timestamp,
        retroactive_revinfo=True,
    )
    return validate_pdf_signature(signature, context)


def _timestamp_time(signature) -> datetime:
    for attribute in signature.signer_info["unsigned_attrs"]:
        if attribute["type"].native == "signature_time_stamp_token":
            token = attribute["values"][0]["content"]["encap_content_info"]
            return token["content"].parsed["gen_time"].native
    raise AssertionError("signature has no timestamp")


def _plain_pdf() -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    page.drawString(72, 770, "Forged license")
    page.showPage()
    page.save()
    return buffer.getvalue()


# Signature levels and the timestamp authority


class _LevelCatalogue:
    """The real catalogue with every template set to one PAdES level."""

    def __init__(self, catalogue, level: str) -> None:
        self._catalogue = catalogue
        self.level = level

    def get(self, license_type: str):
        return replace(self._catalogue.get(license_type), signature_level=self.level)

    def __getattr__(self, name: str):
        return getattr(self._catalogue, name)


def _context(data_dir: Path, **settings: object):
    from elicense.context import ServiceContext
    from elicense.settings import Settings

    return ServiceContext(
        Settings(data_dir=data_dir, public_url=PUBLIC_URL, **settings)
    )


@pytest.fixture(scope="module")
def level_issues(seal_home, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """One license per PAdES level, issued through the service context."""
    data_dir = tmp_path_factory.mktemp("levels") / "data"
    copy_data_dir(seal_home, data_dir)
    context = _context(data_dir)
    service = context.issuing.service
    real = service.catalogue
    out: dict[str, tuple[Path, object]] = {}
    for record, level in zip(
        records_of(AUTHORITY)[2:6], ("B-B", "B-T", "B-LT", "B-LTA")
    ):
        service.catalogue = _LevelCatalogue(real, level)
        issued = context.issue_record(
            record, operator="测试员", idempotency_key=None, new_on_purpose=False
        )
        path = data_dir / f"{level}.pdf"
        path.write_bytes(context.blobs.get(issued["pdf_sha256"]))
        out[level] = (path, context.verify_pdf_sync(path.read_bytes()))
    service.catalogue = real
    return out


@pytest.mark.parametrize(
    ("level", "timestamp", "dss", "document_timestamps"),
    [
        ("B-B", False, False, 0),
        ("B-T", True, False, 0),
        ("B-LT", True, True, 0),
        ("B-LTA", True, True, 1),
    ],
)
def test_template_level_sets_structure(
    level_issues, level, timestamp, dss, document_timestamps
):
    path, _ = level_issues[level]
    reader = PdfFileReader(io.BytesIO(path.read_bytes()))
    signature = reader.embedded_regular_signatures[0]
    unsigned = signature.signer_info["unsigned_attrs"]
    types = [attribute["type"].native for attribute in unsigned] if unsigned else []

    assert ("signature_time_stamp_token" in types) is timestamp
    assert ("/DSS" in reader.root) is dss
    assert len(reader.embedded_timestamp_signatures) == document_timestamps


@pytest.mark.parametrize(
    ("level", "outcome"),
    [("B-B", "indeterminate"), ("B-T", "valid"), ("B-LT", "valid"), ("B-LTA", "valid")],
)
def test_template_level_verdict(level_issues, level, outcome):
    _, verdict = level_issues[level]

    assert verdict.outcome.value == outcome


def test_b_lta_passes_adesverify(level_issues, seal_home):
    path, _ = level_issues["B-LTA"]

    ok, text = pyhanko_validate(path, seal_home / "trust" / "root-ca.pem")

    assert ok, text
    assert "The signature is judged VALID." in text


def test_issue_warns_of_expiring_seal(home, caplog):
    context = _context(home, seal_expiry_warning_days=4000)
    code = seal_code_of(home, AUTHORITY)

    with caplog.at_level("WARNING", logger="elicense.issuing"):
        context.issue_record(
            records_of(AUTHORITY)[11],
            operator="测试员",
            idempotency_key=None,
            new_on_purpose=False,
        )

    warnings = [r.getMessage() for r in caplog.records if r.name == "elicense.issuing"]
    assert any(code in message and "renew" in message for message in warnings)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tsa"


def test_tsa_down_issues_nothing(home):
    from esign.timestamps import TimestampUnavailableError

    url = _closed_port_url()
    context = _context(home, tsa_url=url, tsa_timeout_seconds=2)
    before = (license_count(home), blob_count(home), _idempotency_key_count(home))

    with pytest.raises(TimestampUnavailableError) as caught:
        context.issue_record(
            records_of(AUTHORITY)[6],
            operator="测试员",
            idempotency_key="tsa-down",
            new_on_purpose=False,
        )

    assert url in caught.value.message
    assert license_count(home) == before[0]
    assert blob_count(home) == before[1]
    assert _idempotency_key_count(home) == before[2]


def _idempotency_key_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "elicense.db") as connection:
        return connection.execute("select count(*) from idempotency_keys").fetchone()[0]


@pytest.fixture
def local_tsa(home) -> Iterator[str]:
    """The development TSA behind an HTTP server on 127.0.0.1."""
    from elicense.secrets import load_passphrase
    from elicense.settings import Settings
    from esign.pki import DevPki
    from esign.timestamps import answer_timestamp_request

    pki = DevPki(home, load_passphrase(Settings(data_dir=home)), PUBLIC_URL)
    timestamper = pki.load_timestamper()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            answer = answer_timestamp_request(timestamper, body)
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()
    server.server_close()
    thread.join()


def test_external_tsa_issues_valid_license(home, local_tsa):
    context = _context(home, tsa_url=local_tsa, tsa_timeout_seconds=5)

    issued = context.issue_record(
        records_of(AUTHORITY)[7],
        operator="测试员",
        idempotency_key=None,
        new_on_purpose=False,
    )

    verdict = context.verify_pdf_sync(context.blobs.get(issued["pdf_sha256"]))
    assert verdict.outcome.value == "valid"


# PKCS#11


@pytest.fixture
def token_env(tmp_path) -> dict[str, str]:
    """Settings of a fresh SoftHSM2 token, as environment variables."""
    need_tool("softhsm2-util")
    if not SOFTHSM_MODULE.exists():
        pytest.skip(f"SoftHSM2 module {SOFTHSM_MODULE} is not installed")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(config)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            "seals",
            "--pin",
            "2468",
            "--so-pin",
            "13579",
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    )
    pin_file = tmp_path / "pin"
    pin_file.write_text("2468\n")
    return {
        "SOFTHSM2_CONF": str(config),
        "ELICENSE_PKCS11_MODULE": str(SOFTHSM_MODULE),
        "ELICENSE_PKCS11_TOKEN_LABEL": "seals",
        "ELICENSE_PKCS11_PIN_FILE": str(pin_file),
    }


def test_token_seal_issues_verified_license(home, tmp_path, token_env):
    # EC keys on the token are covered in tests/esign; here an RSA key.
    old_code = seal_code_of(home, AUTHORITY)
    requested = elicense(
        "seal",
        "request",
        "--authority",
        AUTHORITY,
        "--key-store",
        "pkcs11",
        "--algorithm",
        "rsa-2048",
        "--dev-ca",
        data_dir=home,
        env=token_env,
    )
    assert requested.returncode == 0, requested.stderr
    new_code = re.search(r"\d{13}", requested.stdout).group()
    cli("seal", "suspend", old_code, "--reason", "改用令牌中的密钥", data_dir=home)
    out = tmp_path / "out"
    records = records_of(AUTHORITY)

    issued = elicense(
        "issue",
        str(write_records(tmp_path / "one.jsonl", records[8:9])),
        "--out",
        str(out),
        data_dir=home,
        env=token_env,
    )

    assert "签发 1 张" in issued.stdout, issued.stderr
    pdf = next(out.glob("*.pdf"))
    record = json.loads((home / "pki" / "seals" / new_code / "seal.json").read_text())
    signature = PdfFileReader(io.BytesIO(pdf.read_bytes())).embedded_regular_signatures[
        0
    ]
    assert (
        format(signature.signer_cert.serial_number, "x")
        == record["certificate"]["serial"]
    )
    assert record["key"]["store"] == "pkcs11"
    assert not (home / "pki" / "seals" / new_code / "seal.key.p8").exists()
    verified = cli("verify", str(pdf), data_dir=home)
    assert verified.exit_code == 0, verified.stdout
    report = pdfsig(pdf, nss_database(tmp_path / "nss", home / "trust" / "root-ca.pem"))
    assert report.signature_valid, report.output
    assert report.total_document_signed, report.output

    # In process is safe here: the PIN is missing, so no module is loaded.
    no_pin = {k: v for k, v in token_env.items() if k != "ELICENSE_PKCS11_PIN_FILE"}
    rejected = cli(
        "issue",
        str(write_records(tmp_path / "two.jsonl", records[9:10])),
        data_dir=home,
        env=no_pin,
    )
    assert "拒绝 1 条" in rejected.stdout
    assert "ELICENSE_PKCS11_PIN" in rejected.stderr


# Seals certified by an outside CA recognised in the trust list


@dataclass(frozen=True)
class OutsideCa:
    issuer: object  # esign.certificates.Issuer
    urls: object  # esign.certificates.PublicationUrls


@pytest.fixture
def outside_ca(tmp_path) -> Iterator[OutsideCa]:
    """A CA of another region whose CRL a local HTTP server publishes."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.asymmetric import ec

    from esign import certificates as profiles
    from esign.revocation import RevocationState, issue_crl

    key = ec.generate_private_key(ec.SECP256R1())
    root = profiles.build_root(
        "外省市场监管电子印章根CA", key, datetime.now(UTC), timedelta(days=3650)
    )
    issuer = profiles.Issuer("outside-root", root, key)
    crl = issue_crl(issuer, RevocationState(), datetime.now(UTC))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def do_GET(self) -> None:
            if not self.path.endswith(".crl"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(crl)))
            self.end_headers()
            self.wfile.write(crl)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    yield OutsideCa(issuer, profiles.PublicationUrls(base_url))
    server.shutdown()
    server.server_close()
    thread.join()


def _recognise(data_dir: Path, ca: OutsideCa, status: str) -> None:
    from esign.certificates import to_asn1
    from verifier.trustlist import RecognisedCA, StatusChange, TrustList

    trust = TrustList.load(data_dir / "trust")
    root = ca.issuer.certificate
    trust.add_or_replace(
        RecognisedCA(
            id="outside",
            name="外省市场监管电子印章CA",
            region="210000",
            department="市场监督管理",
            certificates=(to_asn1(root),),
            history=(StatusChange(status, root.not_valid_before_utc, "测试"),),
        )
    )
    trust.save(data_dir / "trust")


def _outside_chain(ca: OutsideCa, csr_pem: bytes) -> bytes:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from esign import certificates as profiles

    csr = x509.load_pem_x509_csr(csr_pem)
    certificate = profiles.build_end_entity(
        csr.subject,
        csr.public_key(),
        ca.issuer,
        ca.urls,
        datetime.now(UTC),
        timedelta(days=700),
    )
    return b"".join(
        cert.public_bytes(serialization.Encoding.PEM)
        for cert in (certificate, ca.issuer.certificate)
    )


def _request_outside_seal(
    home: Path, tmp_path: Path, ca: OutsideCa
) -> tuple[str, Path]:
    csr_path = tmp_path / "seal.csr"
    requested = cli(
        "seal",
        "request",
        "--authority",
        AUTHORITY,
        "--csr-out",
        str(csr_path),
        data_dir=home,
    )
    assert requested.exit_code == 0, requested.stderr
    chain = tmp_path / "chain.pem"
    chain.write_bytes(_outside_chain(ca, csr_path.read_bytes()))
    return re.search(r"\d{13}", requested.stdout).group(), chain


def test_outside_ca_seal_issues_valid_license(home, tmp_path, outside_ca):
    _recognise(home, outside_ca, "recognised")
    old_code = seal_code_of(home, AUTHORITY)
    code, chain = _request_outside_seal(home, tmp_path, outside_ca)

    imported = cli("seal", "import", code, str(chain), data_dir=home)
    cli("seal", "suspend", old_code, "--reason", "改用外省 CA 的证书", data_dir=home)
    out = tmp_path / "out"
    issued = cli(
        "issue",
        str(write_records(tmp_path / "one.jsonl", records_of(AUTHORITY)[10:11])),
        "--out",
        str(out),
        data_dir=home,
    )

    assert imported.exit_code == 0, imported.stderr
    assert "签发 1 张" in issued.stdout, issued.stderr
    pdf = next(out.glob("*.pdf"))
    signature = PdfFileReader(io.BytesIO(pdf.read_bytes())).embedded_regular_signatures[
        0
    ]
    assert "外省市场监管电子印章根CA" in signature.signer_cert.issuer.human_friendly
    verified = cli("verify", str(pdf), data_dir=home)
    assert verified.exit_code == 0, verified.stdout


def test_withdrawn_ca_chain_rejected(home, tmp_path, outside_ca):
    _recognise(home, outside_ca, "withdrawn")
    code, chain = _request_outside_seal(home, tmp_path, outside_ca)

    imported = cli("seal", "import", code, str(chain), data_dir=home)

    assert imported.exit_code == 1
    assert "受信任的根证书" in imported.stderr
    assert "elicense trust" in imported.stderr
