"""Client certificates from recognised CAs authenticate like API keys."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from elicense.web.app import create_app
from elicense.web.client_auth import ClientCertificateConfig, presented_certificate
from tests.e2e.conftest import IssuedSet, run_cli

HEADER = "X-SSL-Client-Cert"


def _seal_pem(data_dir, index: int) -> bytes:
    seals = sorted((data_dir / "pki" / "seals").glob("*/seal.pem"))
    return seals[index].read_bytes()


@pytest.fixture(scope="module")
def registered(issued: IssuedSet, tmp_path_factory) -> bytes:
    pem = _seal_pem(issued.data_dir, 0)
    path = tmp_path_factory.mktemp("client-cert") / "client.pem"
    path.write_bytes(pem)
    run_cli(
        "trust",
        "client-cert",
        str(path),
        "--name",
        "证书查询部门",
        "--kind",
        "agency",
        data_dir=issued.data_dir,
    )
    return pem


@pytest.fixture(scope="module")
def proxied(service_context):
    """An app that trusts the header from the test client's address."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ELICENSE_CLIENT_CERT_HEADER", HEADER)
        patch.setenv("ELICENSE_TRUSTED_PROXIES", "testclient")
        app = create_app(service_context)
    with TestClient(app) as test_client:
        yield test_client


def _query(client, issued: IssuedSet, pem: bytes):
    return client.get(
        "/api/v1/licenses",
        params={"uscc": issued.records[0]["uscc"], "purpose": "证书认证核查"},
        headers={HEADER: quote(pem.decode("ascii"))},
    )


def test_registered_certificate_authenticates(proxied, issued, registered):
    response = _query(proxied, issued, registered)
    assert response.status_code == 200, response.text
    assert response.json()["total"] >= 1


def test_header_ignored_without_trusted_proxy(client, issued, registered):
    response = _query(client, issued, registered)
    assert response.status_code == 401
    assert "接口密钥" in response.json()["message"]


def test_unregistered_certificate_rejected(proxied, issued, registered):
    response = _query(proxied, issued, _seal_pem(issued.data_dir, 1))
    assert response.status_code == 401
    assert "未登记" in response.json()["message"]


def test_foreign_ca_certificate_rejected(proxied, issued, second_issued):
    response = _query(proxied, issued, _seal_pem(second_issued.data_dir, 0))
    assert response.status_code == 401
    assert "未通过校验" in response.json()["message"]


def test_garbage_certificate_rejected(proxied, issued):
    response = _query(proxied, issued, b"-----BEGIN CERTIFICATE-----\nAAAA\n")
    assert response.status_code == 401


def test_register_foreign_certificate_fails(issued, second_issued, tmp_path):
    path = tmp_path / "foreign.pem"
    path.write_bytes(_seal_pem(second_issued.data_dir, 0))
    result = run_cli(
        "trust",
        "client-cert",
        str(path),
        "--name",
        "外地",
        "--kind",
        "agency",
        data_dir=issued.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "未通过校验" in result.stderr


def test_tls_extension_certificate_read():
    scope = {
        "type": "http",
        "headers": [],
        "extensions": {"tls": {"client_cert_chain": ["-----BEGIN CERTIFICATE-----"]}},
    }
    found = presented_certificate(Request(scope), ClientCertificateConfig())
    assert found == b"-----BEGIN CERTIFICATE-----"


def test_ca_bundle_lists_recognised_cas(issued, tmp_path):
    out = tmp_path / "bundle.pem"
    run_cli("trust", "ca-bundle", "--out", str(out), data_dir=issued.data_dir)
    assert out.read_text().count("BEGIN CERTIFICATE") == 2
