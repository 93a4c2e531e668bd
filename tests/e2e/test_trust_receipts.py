"""Signed verification receipts: issued by the API and the CLI, checked later."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import IssuedSet, run_cli


@pytest.fixture(scope="module")
def license_pdf(issued: IssuedSet) -> bytes:
    return issued.pdfs[0].read_bytes()


@pytest.fixture(scope="module")
def receipt(client, license_pdf) -> bytes:
    response = client.post(
        "/api/v1/verify",
        params={"receipt": "true"},
        content=license_pdf,
        headers={"Content-Type": "application/pdf"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pkcs7-mime"
    assert response.headers["x-verification-outcome"] == "valid"
    return response.content


def test_receipt_checks_with_document(client, receipt, license_pdf):
    response = client.post(
        "/api/v1/receipts/check",
        files={
            "receipt": ("r.p7m", receipt, "application/pkcs7-mime"),
            "document": ("l.pdf", license_pdf, "application/pdf"),
        },
    )
    body = response.json()
    assert body["signature_valid"] is True
    assert body["document_matches"] is True
    assert body["receipt"]["outcome"] == "valid"
    assert "核验回执签名" in body["signer"]


def test_receipt_other_document_mismatch(client, receipt, issued):
    other = issued.pdfs[1].read_bytes()
    response = client.post(
        "/api/v1/receipts/check",
        files={"receipt": ("r.p7m", receipt), "document": ("l.pdf", other)},
    )
    assert response.json()["document_matches"] is False


def test_tampered_receipt_rejected(client, receipt):
    data = bytearray(receipt)
    position = data.index(b'"outcome": "valid"')
    data[position + 12 : position + 17] = b"xalid"
    response = client.post(
        "/api/v1/receipts/check",
        content=bytes(data),
        headers={"Content-Type": "application/pkcs7-mime"},
    )
    assert response.status_code == 200
    assert response.json()["signature_valid"] is False
    assert "签名无效" in response.json()["message"]


def test_garbage_receipt_rejected(client):
    response = client.post("/api/v1/receipts/check", content=b"not a receipt")
    assert response.json()["signature_valid"] is False


def test_receipt_for_invalid_document(client):
    response = client.post(
        "/api/v1/verify",
        params={"receipt": "true"},
        content=b"%PDF-1.7\nbroken",
        headers={"Content-Type": "application/pdf"},
    )
    assert response.headers["x-verification-outcome"] == "invalid"


def test_cli_receipt_and_check(issued, tmp_path):
    out = tmp_path / "receipt.p7m"
    result = run_cli(
        "trust",
        "receipt",
        str(issued.pdfs[0]),
        "--out",
        str(out),
        data_dir=issued.data_dir,
    )
    assert "有效" in result.stdout
    checked = run_cli(
        "trust",
        "check-receipt",
        str(out),
        "--anchor",
        str(issued.root_pem),
        "--document",
        str(issued.pdfs[0]),
        data_dir=issued.data_dir,
    )
    body = json.loads(checked.stdout)
    assert body["document_matches"] is True
    assert body["receipt"]["verdict"]["outcome"] == "valid"
