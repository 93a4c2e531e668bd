"""HTTP through the app: verification upload, agency query, issuing API."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import IssuedSet, run_cli

SAMPLE_AUTHORITY = "11152921MA9U9BMD6Q"


@pytest.fixture(scope="module")
def agency_key(issued: IssuedSet) -> str:
    result = run_cli("apikey", "create", "--name", "税务局", "--kind", "agency",
                     data_dir=issued.data_dir)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def bureau_key(issued: IssuedSet, client) -> str:
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    result = run_cli("apikey", "create", "--name", "登记系统", "--kind", "bureau",
                     "--authority", record["authority_code"], data_dir=issued.data_dir)
    return result.stdout.strip()


def test_verify_upload_raw_pdf_valid(client, issued):
    data = issued.pdfs[0].read_bytes()
    response = client.post(
        "/api/v1/verify", content=data, headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 200
    verdict = response.json()
    assert verdict["outcome"] == "valid", verdict["reasons"]
    assert verdict["license"]["register_status"] == "01"


def test_verify_upload_multipart_valid(client, issued):
    data = issued.pdfs[0].read_bytes()
    response = client.post(
        "/api/v1/verify", files={"file": ("license.pdf", data, "application/pdf")}
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "valid"


def test_verify_upload_over_limit_413(client, service_context):
    too_big = b"%PDF-1.7\n" + b"0" * (service_context.settings.max_upload_bytes + 1)
    response = client.post(
        "/api/v1/verify", content=too_big, headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 413


def test_verify_upload_empty_is_invalid(client):
    response = client.post(
        "/api/v1/verify", content=b"", headers={"Content-Type": "application/pdf"}
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "invalid"


def test_query_requires_api_key(client):
    response = client.get("/api/v1/licenses", params={"uscc": "x", "purpose": "核查"})
    assert response.status_code == 401
    assert "接口密钥" in response.json()["message"]


def test_query_by_code_returns_license(client, issued, agency_key):
    record = issued.records[0]
    response = client.get(
        "/api/v1/licenses",
        params={"uscc": record["uscc"], "purpose": "招投标资格核查"},
        headers={"Authorization": f"Bearer {agency_key}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] >= 1
    assert body["items"][0]["持证主体代码"] == record["uscc"]


def test_query_masks_citizen_id(client, issued, agency_key):
    record = next(r for r in issued.records if r.get("operator_id_number"))
    response = client.get(
        "/api/v1/licenses",
        params={"uscc": record["uscc"], "purpose": "核查"},
        headers={"X-API-Key": agency_key},
    )
    fields = response.json()["items"][0]["fields"]
    assert fields["operator_id_number"] != record["operator_id_number"]
    assert "*" in fields["operator_id_number"]


def test_issue_api_for_own_authority(client, issued, bureau_key):
    record = dict(next(r for r in issued.records if r["license_type"] == "business_license"))
    response = client.post(
        "/api/v1/licenses",
        json=record,
        params={"new_on_purpose": "true"},
        headers={"Authorization": f"Bearer {bureau_key}", "Idempotency-Key": "req-1"},
    )
    assert response.status_code == 201, response.text
    first = response.json()
    again = client.post(
        "/api/v1/licenses",
        json=record,
        params={"new_on_purpose": "true"},
        headers={"Authorization": f"Bearer {bureau_key}", "Idempotency-Key": "req-1"},
    )
    assert again.json()["elicense_id"] == first["elicense_id"]
    assert again.json()["replayed"] is True


def test_issue_api_duplicate_holder_conflict(client, issued, bureau_key):
    record = dict(next(r for r in issued.records if r["license_type"] == "business_license"))
    response = client.post(
        "/api/v1/licenses", json=record, headers={"Authorization": f"Bearer {bureau_key}"}
    )
    assert response.status_code == 409
    assert "1.2.156.3005.2." in response.json()["message"]


def test_issue_api_other_authority_forbidden(client, issued, bureau_key):
    record = next(r for r in issued.records if r["authority_code"] != issued.records[0]["authority_code"])
    response = client.post(
        "/api/v1/licenses", json=record, headers={"Authorization": f"Bearer {bureau_key}"}
    )
    assert response.status_code == 403


def test_issue_api_invalid_record_names_field(client, issued, bureau_key):
    record = dict(next(r for r in issued.records if r["license_type"] == "business_license"))
    record["uscc"] = record["uscc"][:-1] + ("0" if record["uscc"][-1] != "0" else "1")
    response = client.post(
        "/api/v1/licenses", json=record, headers={"Authorization": f"Bearer {bureau_key}"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "uscc"


def test_openapi_lists_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/verify" in paths
    assert "/api/v1/licenses" in paths


def test_trust_list_page(client):
    response = client.get("/trust-list")
    assert response.status_code == 200
    assert "互认" in response.text


def test_crl_endpoint_serves_crl(client):
    response = client.get("/pki/crl/issuing-ca.crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
