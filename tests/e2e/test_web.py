"""HTTP through the app: verification upload, agency query, issuing API."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from tests.e2e.conftest import IssuedSet, run_cli
from tests.e2e.test_attacks import CRASHERS

SAMPLE_AUTHORITY = "11152921MA9U9BMD6Q"


@pytest.fixture(scope="module")
def agency_key(issued: IssuedSet) -> str:
    result = run_cli(
        "apikey",
        "create",
        "--name",
        "税务局",
        "--kind",
        "agency",
        data_dir=issued.data_dir,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def bureau_key(issued: IssuedSet, client) -> str:
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    result = run_cli(
        "apikey",
        "create",
        "--name",
        "登记系统",
        "--kind",
        "bureau",
        "--authority",
        record["authority_code"],
        data_dir=issued.data_dir,
    )
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
    record = dict(
        next(r for r in issued.records if r["license_type"] == "business_license")
    )
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
    record = dict(
        next(r for r in issued.records if r["license_type"] == "business_license")
    )
    response = client.post(
        "/api/v1/licenses",
        json=record,
        headers={"Authorization": f"Bearer {bureau_key}"},
    )
    assert response.status_code == 409
    assert "1.2.156.3005.2." in response.json()["message"]


def test_issue_api_other_authority_forbidden(client, issued, bureau_key):
    record = next(
        r
        for r in issued.records
        if r["authority_code"] != issued.records[0]["authority_code"]
    )
    response = client.post(
        "/api/v1/licenses",
        json=record,
        headers={"Authorization": f"Bearer {bureau_key}"},
    )
    assert response.status_code == 403


def test_issue_api_invalid_record_names_field(client, issued, bureau_key):
    record = dict(
        next(r for r in issued.records if r["license_type"] == "business_license")
    )
    record["uscc"] = record["uscc"][:-1] + ("0" if record["uscc"][-1] != "0" else "1")
    response = client.post(
        "/api/v1/licenses",
        json=record,
        headers={"Authorization": f"Bearer {bureau_key}"},
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


def _key(issued: IssuedSet, name: str, *scopes: str) -> str:
    arguments = ["apikey", "create", "--name", name, "--kind", "agency"]
    for scope in scopes:
        arguments += ["--scope", scope]
    return run_cli(*arguments, data_dir=issued.data_dir).stdout.strip()


@pytest.fixture(scope="module")
def food_only_key(issued: IssuedSet) -> str:
    return _key(
        issued,
        "卫生健康委",
        "license_type:food_business_license",
        "field:business_scope",
    )


@pytest.fixture(scope="module")
def id_number_key(issued: IssuedSet) -> str:
    return _key(issued, "公安局", "id_numbers")


@pytest.fixture(scope="module")
def supervisor_key(issued: IssuedSet) -> str:
    return _key(issued, "监察室", "supervisor")


def _query(client, key: str, uscc: str, purpose: str = "核查", **params):
    return client.get(
        "/api/v1/licenses",
        params={"uscc": uscc, "purpose": purpose, **params},
        headers={"X-API-Key": key},
    )


def test_scope_hides_other_license_types(client, issued, food_only_key):
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    body = _query(client, food_only_key, record["uscc"]).json()
    assert body["items"] == []
    assert body["total"] == 0


def test_scope_limits_fields(client, issued, food_only_key):
    record = next(
        r for r in issued.records if r["license_type"] == "food_business_license"
    )
    body = _query(client, food_only_key, record["uscc"]).json()
    assert body["total"] >= 1
    fields = body["items"][0]["fields"]
    assert set(fields) <= {"business_scope"}


def test_id_numbers_shown_when_allowed(client, issued, id_number_key):
    record = next(r for r in issued.records if r.get("operator_id_number"))
    body = _query(client, id_number_key, record["uscc"]).json()
    assert (
        body["items"][0]["fields"]["operator_id_number"] == record["operator_id_number"]
    )


def test_metadata_out_of_scope_forbidden(client, issued, food_only_key):
    pdf = next(p for p in issued.pdfs if p.stem)
    record = next(r for r in issued.records if r["authority_code"] in pdf.name)
    if record["license_type"] == "food_business_license":
        pytest.skip("first license is in the food scope")
    response = client.get(
        f"/api/v1/licenses/{pdf.stem}", headers={"X-API-Key": food_only_key}
    )
    assert response.status_code == 403


def test_pagination_pages_and_total(client, issued, agency_key):
    record = issued.records[0]
    first = _query(client, agency_key, record["uscc"], page_size=1).json()
    assert first["page_size"] == 1
    assert len(first["items"]) == 1
    beyond = _query(
        client, agency_key, record["uscc"], page=first["total"] + 1, page_size=1
    ).json()
    assert beyond["items"] == []
    assert beyond["total"] == first["total"]


def test_audit_records_agency_purpose_count(client, issued, agency_key, supervisor_key):
    record = issued.records[0]
    _query(client, agency_key, record["uscc"], purpose="政府采购资格审查")
    response = client.get(
        "/api/v1/audit",
        params={"page_size": 200},
        headers={"X-API-Key": supervisor_key},
    )
    assert response.status_code == 200, response.text
    entries = [
        e for e in response.json()["items"] if e["purpose"] == "政府采购资格审查"
    ]
    assert entries, response.json()
    assert entries[0]["agency"] == "税务局"
    assert entries[0]["result_count"] >= 1
    assert entries[0]["queried_at"]


def test_query_under_write_lock_audited(client, issued, agency_key, supervisor_key):
    # Another process (here a plain sqlite3 connection) holds the register's
    # write lock; the query must neither fail nor skip its audit row.
    purpose = "写锁占用期间的核查"
    holder = sqlite3.connect(issued.data_dir / "elicense.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(
            response=_query(client, agency_key, issued.records[0]["uscc"], purpose=purpose)
        )
    )
    worker.start()
    worker.join(timeout=0.5)
    assert worker.is_alive(), "the query finished while the write lock was held"
    holder.execute("ROLLBACK")
    holder.close()
    worker.join(timeout=30)

    assert outcome["response"].status_code == 200, outcome["response"].text
    audit = client.get(
        "/api/v1/audit", params={"page_size": 200}, headers={"X-API-Key": supervisor_key}
    ).json()
    assert [e["purpose"] for e in audit["items"]].count(purpose) == 1


def test_audit_filters_by_agency_and_time(client, issued, agency_key, supervisor_key):
    _query(client, agency_key, issued.records[0]["uscc"], purpose="时间筛选核查")
    everything = client.get("/api/v1/audit", headers={"X-API-Key": supervisor_key})
    client_id = next(
        e["client_id"]
        for e in everything.json()["items"]
        if e["purpose"] == "时间筛选核查"
    )
    mine = client.get(
        "/api/v1/audit",
        params={"agency": client_id},
        headers={"X-API-Key": supervisor_key},
    ).json()
    assert {e["client_id"] for e in mine["items"]} == {client_id}
    future = client.get(
        "/api/v1/audit",
        params={"since": "2999-01-01T00:00:00"},
        headers={"X-API-Key": supervisor_key},
    ).json()
    assert future["items"] == []


def test_audit_needs_supervisor(client, agency_key):
    response = client.get("/api/v1/audit", headers={"X-API-Key": agency_key})
    assert response.status_code == 403


def test_rate_limit_answers_429(issued):
    from fastapi.testclient import TestClient

    from elicense.context import ServiceContext
    from elicense.settings import Settings
    from elicense.web.app import create_app

    key = _key(issued, "限流测试部门")
    settings = Settings(data_dir=issued.data_dir, agency_requests_per_minute=3)
    with TestClient(create_app(ServiceContext(settings))) as limited:
        statuses = [
            _query(limited, key, issued.records[0]["uscc"]).status_code
            for _ in range(5)
        ]
        last = _query(limited, key, issued.records[0]["uscc"])
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    assert last.headers["retry-after"] == "60"
    assert "请求过于频繁" in last.json()["message"]


def test_openapi_documents_query_api(client):
    spec = client.get("/openapi.json").json()
    query = spec["paths"]["/api/v1/licenses"]["get"]
    assert {"401", "403", "429"} <= set(query["responses"])
    names = {parameter["name"] for parameter in query["parameters"]}
    assert {"uscc", "purpose", "page", "page_size"} <= names
    assert "/api/v1/audit" in spec["paths"]
    assert "/api/v1/receipts/check" in spec["paths"]


def test_chunked_upload_over_limit_stops_early(private_server, service_context):
    """A chunked body gets 413 once it passes the limit, not after the end."""
    import select
    import socket

    limit = service_context.settings.max_upload_bytes
    host, port = private_server.rsplit("/", 1)[1].split(":")
    chunk = b"0" * 65536
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"POST /api/v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        while sent < 4 * limit:
            readable, _, _ = select.select([connection], [], [], 0)
            if readable:
                break
            try:
                connection.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 2 * limit, f"413 came only after {sent} bytes"


def test_declared_length_over_limit_413_without_body(private_server, service_context):
    import http.client

    host, port = private_server.rsplit("/", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    size = service_context.settings.max_upload_bytes + 1
    connection.putrequest("POST", "/api/v1/verify")
    connection.putheader("Content-Type", "application/pdf")
    connection.putheader("Content-Length", str(size))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert "超过上限" in response.read().decode("utf-8")
    connection.close()


@pytest.mark.parametrize("name", sorted(CRASHERS))
def test_crashing_upload_gets_verdict(client, name):
    response = client.post(
        "/api/v1/verify",
        content=CRASHERS[name],
        headers={"Content-Type": "application/pdf"},
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "invalid"


def test_non_pdf_upload_names_problem(client):
    response = client.post(
        "/api/v1/verify",
        files={"file": ("photo.png", b"\x89PNG\r\n\x1a\n" + b"0" * 99)},
    )
    assert response.json()["outcome"] == "invalid"
    assert "不是 PDF 文件" in response.json()["reasons"][0]


schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


FUZZ_SETTINGS = hypothesis.settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


def _operations(client):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    for result in schema.get_all_operations():
        operation = result.ok()
        # The PKI protocol endpoints have their own fuzz tests in tests/esign.
        if not operation.path.startswith("/pki/"):
            yield operation


def test_api_fuzz_no_server_error(client, agency_key):
    """Generated requests from the OpenAPI document never get a 5xx response.

    NOTE: schemathesis.pytest.from_fixture failed under this pytest with
    "'Function' object has no attribute '_nodeid'", so each operation's
    strategy is driven by hypothesis directly.
    """
    operations = list(_operations(client))
    assert len(operations) >= 6
    for operation in operations:

        @FUZZ_SETTINGS
        @hypothesis.given(case=operation.as_strategy())
        def check(case) -> None:
            case.headers = {**(case.headers or {}), "X-API-Key": agency_key}
            response = case.call()
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.text[:300],
            )

        check()


def test_multipart_file_over_limit_413(client, service_context):
    limit = service_context.settings.max_upload_bytes
    too_big = b"%PDF-1.7\n" + b"0" * (limit + 1 - 9)
    response = client.post("/api/v1/verify", files={"file": ("big.pdf", too_big)})
    assert response.status_code == 413
    assert "超过上限" in response.json()["message"]


def test_html_verdict_page_for_attack(client, issued):
    from tests.e2e import attacks

    tampered = attacks.isa_page_content_with_xref(issued.pdfs[0].read_bytes())
    response = client.post(
        "/verify", files={"file": ("license.pdf", tampered, "application/pdf")}
    )
    assert response.status_code == 200
    assert 'data-outcome="invalid"' in response.text
    assert "签名后文件被修改" in response.text


def test_real_server_verifies_upload(private_server, issued):
    """The worker process also forks cleanly under uvicorn's thread pool."""
    import json as json_module
    import urllib.request

    request = urllib.request.Request(
        f"{private_server}/api/v1/verify",
        data=issued.pdfs[0].read_bytes(),
        headers={"Content-Type": "application/pdf"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        verdict = json_module.loads(response.read())
    assert verdict["outcome"] == "valid", verdict["reasons"]


def test_issue_api_missing_authority_code_422(client, bureau_key):
    response = client.post(
        "/api/v1/licenses", json={}, headers={"Authorization": f"Bearer {bureau_key}"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "authority_code"


def test_verify_page_sends_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
