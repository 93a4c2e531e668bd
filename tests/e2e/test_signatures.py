"""Signed licenses judged by pdfsig, pyhanko and ``elicense verify``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.e2e.conftest import IssuedSet, run_cli
from tests.e2e.judges import byte_range, nss_database, pdfsig, pyhanko_validate


@pytest.fixture(scope="module")
def nss_dir(issued: IssuedSet, tmp_path_factory) -> Path:
    return nss_database(tmp_path_factory.mktemp("nss"), issued.root_pem)


@pytest.fixture(scope="module")
def license_pdf(issued: IssuedSet) -> Path:
    assert issued.pdfs, "issuing wrote no PDF"
    return issued.pdfs[0]


def flipped_copy(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    start, length, _, _ = byte_range(bytes(data))
    offset = start + length // 2
    data[offset] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def page_changed_copy(source: Path, target: Path) -> Path:
    """Append a revision that paints a white box over the page."""
    writer = IncrementalPdfFileWriter(io.BytesIO(source.read_bytes()))
    stream = generic.StreamObject(stream_data=b"q 1 1 1 rg 0 0 600 850 re f Q")
    writer.add_stream_to_page(0, writer.add_object(stream))
    output = io.BytesIO()
    writer.write(output)
    target.write_bytes(output.getvalue())
    return target


def test_pdfsig_reports_valid_whole_document(license_pdf, nss_dir):
    report = pdfsig(license_pdf, nss_dir)
    assert report.signature_valid, report.output
    assert report.total_document_signed, report.output


def test_pdfsig_trusts_development_root(license_pdf, nss_dir, live_server):
    # pdfsig checks revocation online, through the OCSP URL of the certificates.
    report = pdfsig(license_pdf, nss_dir)
    assert report.certificate_trusted, report.output


def test_pyhanko_ades_valid_offline(license_pdf, issued):
    ok, text = pyhanko_validate(license_pdf, issued.root_pem)
    assert ok, text
    assert "The signature is judged VALID." in text
    assert "The signer's certificate is trusted." in text


def test_pyhanko_validate_online_intact_and_trusted(license_pdf, issued, live_server):
    ok, text = pyhanko_validate(license_pdf, issued.root_pem, command="validate")
    assert ok, text
    assert "The signature is cryptographically sound." in text
    assert "The signer's certificate is trusted." in text


def test_elicense_verify_valid_exit_zero(license_pdf, issued):
    result = run_cli("verify", str(license_pdf), data_dir=issued.data_dir, check=False)
    verdict = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert verdict["outcome"] == "valid"
    assert [step["status"] for step in verdict["steps"]] == ["passed"] * 7


def test_flipped_byte_fails_everywhere(license_pdf, issued, nss_dir, tmp_path):
    tampered = flipped_copy(license_pdf, tmp_path / "flipped.pdf")
    assert not pdfsig(tampered, nss_dir).signature_valid
    assert not pyhanko_validate(tampered, issued.root_pem)[0]
    result = run_cli("verify", str(tampered), data_dir=issued.data_dir, check=False)
    assert result.returncode == 1, result.stdout
    assert json.loads(result.stdout)["outcome"] == "invalid"


def test_appended_page_change_fails_everywhere(license_pdf, issued, nss_dir, tmp_path):
    changed = page_changed_copy(license_pdf, tmp_path / "changed.pdf")
    report = pdfsig(changed, nss_dir)
    assert not report.total_document_signed, report.output
    ok, text = pyhanko_validate(changed, issued.root_pem)
    assert not ok, text
    result = run_cli("verify", str(changed), data_dir=issued.data_dir, check=False)
    assert result.returncode == 1, result.stdout
    verdict = json.loads(result.stdout)
    assert verdict["outcome"] == "invalid"
    changes = next(step for step in verdict["steps"] if step["name"] == "changes")
    assert changes["status"] == "failed"


def test_verify_offline_skips_register(license_pdf, issued):
    result = run_cli("verify", "--offline", str(license_pdf), data_dir=issued.data_dir,
                     check=False)
    verdict = json.loads(result.stdout)
    register = next(step for step in verdict["steps"] if step["name"] == "register")
    assert register["status"] == "skipped"
    assert verdict["outcome"] == "valid"


def test_verify_rejects_non_pdf(issued, tmp_path):
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"GIF89a not a pdf")
    result = run_cli("verify", str(junk), data_dir=issued.data_dir, check=False)
    assert result.returncode == 1
    assert "不是 PDF" in result.stdout
