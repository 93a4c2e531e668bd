"""Lifecycle over the API and the CLI: versions, status, proofs, verify pages.

One data directory for the module, made with ``elicense init`` and
``elicense issue``; the app runs in process with two bureau API keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from license_store import merkle
from tests.e2e.conftest import PUBLIC_URL, run_cli

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "licenses-sample.jsonl"


@dataclass
class Bureau:
    data_dir: Path
    context: object
    client: object
    elicense_ids: list[str]
    authority: str
    headers: dict[str, str]
    other_headers: dict[str, str]


def _records() -> list[dict]:
    today = dt.date.today().isoformat()
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    # Records dated after today cannot be issued yet.
    records = [r for r in map(json.loads, lines) if r["issued_on"] <= today]
    first = records[0]["authority_code"]
    same = [r for r in records if r["authority_code"] == first][:3]
    other = next(r for r in records if r["authority_code"] != first)
    return [*same, other]


@pytest.fixture(scope="module")
def bureau(tmp_path_factory: pytest.TempPathFactory):
    from fastapi.testclient import TestClient

    from elicense.context import ServiceContext
    from elicense.settings import Settings
    from elicense.web.app import create_app

    base = tmp_path_factory.mktemp("lifecycle")
    data_dir = base / "data"
    records = _records()
    source = base / "records.jsonl"
    source.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        encoding="utf-8",
    )
    run_cli("init", data_dir=data_dir)
    run_cli("issue", str(source), data_dir=data_dir)
    context = ServiceContext(Settings(data_dir=data_dir, public_url=PUBLIC_URL))
    authority = records[0]["authority_code"]
    own = context.create_api_client("本局登记系统", "bureau", authority, [])
    other = context.create_api_client(
        "他局登记系统", "bureau", records[-1]["authority_code"], []
    )
    ids = [
        context.repository.licenses_by_holder_code(r["uscc"]).items[0].id
        for r in records
    ]
    elicense_ids = [context.repository.get_version(i, 1).elicense_id for i in ids]
    with TestClient(create_app(context)) as client:
        yield Bureau(
            data_dir,
            context,
            client,
            elicense_ids,
            authority,
            {"X-API-Key": own},
            {"X-API-Key": other},
        )


def _post(bureau: Bureau, elicense_id: str, operation: str, body: dict, own=True):
    headers = bureau.headers if own else bureau.other_headers
    return bureau.client.post(
        f"/api/v1/licenses/{elicense_id}/{operation}", json=body, headers=headers
    )


def _page(bureau: Bureau, elicense_id: str) -> str:
    url = bureau.context.issuing.verify_url_of(elicense_id)
    response = bureau.client.get(urlparse(url).path)
    assert response.status_code == 200
    return response.text


def test_amend_supersedes_old_version(bureau: Bureau) -> None:
    first = bureau.elicense_ids[0]

    response = _post(
        bureau,
        first,
        "amend",
        {"reason": "住所变更", "changes": {"domicile": "内蒙古自治区新华大街1号"}},
    )

    assert response.status_code == 201, response.text
    second = response.json()["elicense_id"]
    assert response.json()["version"] == 2
    old_page = _page(bureau, first)
    assert "此版本已被第 002 版取代" in old_page
    assert f'href="/licenses/{second}"' in old_page
    assert "证照真实有效" in _page(bureau, second)


def test_old_version_pdf_still_retrievable(bureau: Bureau) -> None:
    response = bureau.client.get(
        f"/api/v1/licenses/{bureau.elicense_ids[1]}/pdf", headers=bureau.headers
    )

    assert response.status_code == 200
    assert response.content[:5] == b"%PDF-"


def test_stale_amend_gets_409_with_version(bureau: Bureau) -> None:
    target = bureau.elicense_ids[1]
    assert _post(bureau, target, "replace", {"reason": "遗失补发"}).status_code == 201

    response = _post(
        bureau, target, "amend", {"reason": "名称变更", "expected_version": 1}
    )

    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    assert "基于版本 2" in response.json()["fix"]


def test_other_authority_refused_and_logged(
    bureau: Bureau, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="elicense.web.lifecycle_routes"):
        response = _post(
            bureau,
            bureau.elicense_ids[2],
            "suspend",
            {"reason": "越权", "legal_basis": "无"},
            own=False,
        )

    assert response.status_code == 403
    assert any("rejected" in record.getMessage() for record in caplog.records)
    license = bureau.context.repository.get_version_by_elicense_id(
        bureau.elicense_ids[2]
    )
    assert bureau.context.repository.get_license(license.license_id).status == "01"


def test_suspend_shows_on_every_version(bureau: Bureau) -> None:
    target = bureau.elicense_ids[1]
    history = bureau.client.get(
        f"/api/v1/licenses/{target}/history", headers=bureau.headers
    ).json()
    versions = [v["elicense_id"] for v in history["versions"]]

    response = _post(
        bureau, target, "suspend", {"reason": "责令整改", "legal_basis": "条例第四十条"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "02"
    for elicense_id in versions:
        assert "证照已暂扣" in _page(bureau, elicense_id)
    lifted = _post(bureau, target, "lift", {"reason": "整改完毕"})
    assert lifted.json()["status"] == "01"


def test_revoke_needs_legal_basis(bureau: Bureau) -> None:
    response = _post(bureau, bureau.elicense_ids[2], "revoke", {"reason": "违法"})

    assert response.status_code == 422
    assert response.json()["field"] == "legal_basis"


def test_history_records_who_and_why(bureau: Bureau) -> None:
    response = bureau.client.get(
        f"/api/v1/licenses/{bureau.elicense_ids[0]}/history", headers=bureau.headers
    )

    events = response.json()["events"]
    assert [e["operation"] for e in events][:2] == ["issue", "amend"]
    assert events[1]["operator"] == "本局登记系统"
    assert events[1]["authority_code"] == bureau.authority
    assert events[1]["reason"] == "住所变更"


def test_metadata_of_own_version(bureau: Bureau) -> None:
    own = bureau.client.get(
        f"/api/v1/licenses/{bureau.elicense_ids[0]}/metadata", headers=bureau.headers
    )
    other = bureau.client.get(
        f"/api/v1/licenses/{bureau.elicense_ids[0]}/metadata",
        headers=bureau.other_headers,
    )

    assert own.status_code == 200
    assert own.json()["证照标识"] == bureau.elicense_ids[0]
    assert own.json()["版本"] == "001"
    assert other.status_code == 403


def test_inclusion_proof_checks(bureau: Bureau) -> None:
    response = bureau.client.get(
        f"/api/v1/licenses/{bureau.elicense_ids[0]}/proof", headers=bureau.headers
    )

    proof = response.json()
    assert response.status_code == 200
    assert merkle.verify_inclusion(
        proof["log_index"],
        proof["tree_size"],
        bytes.fromhex(proof["leaf_hash"]),
        [bytes.fromhex(node) for node in proof["proof"]],
        bytes.fromhex(proof["checkpoint"]["root_hash"]),
    )


def test_consistency_between_checkpoints(bureau: Bureau) -> None:
    old = bureau.client.get("/api/v1/log/checkpoint", headers=bureau.headers).json()
    renewed = _post(bureau, bureau.elicense_ids[2], "renew", {"reason": "期满换发"})
    new = bureau.client.get("/api/v1/log/checkpoint", headers=bureau.headers).json()

    response = bureau.client.get(
        "/api/v1/log/consistency",
        params={"old_size": old["tree_size"], "new_size": new["tree_size"]},
        headers=bureau.headers,
    )

    assert renewed.status_code == 201, renewed.text
    assert new["tree_size"] > old["tree_size"]
    assert merkle.verify_consistency(
        old["tree_size"],
        new["tree_size"],
        bytes.fromhex(old["root_hash"]),
        bytes.fromhex(new["root_hash"]),
        [bytes.fromhex(node) for node in response.json()["proof"]],
    )


def test_search_limited_to_own_authority(bureau: Bureau) -> None:
    response = bureau.client.get(
        "/api/v1/register/search", params={"page_size": 50}, headers=bureau.headers
    )

    issuers = {item["issuer_code"] for item in response.json()["items"]}
    assert issuers == {bureau.authority}


def test_cli_log_verify_and_fsck(bureau: Bureau) -> None:
    verify = run_cli("log", "verify", data_dir=bureau.data_dir)
    fsck = run_cli("fsck", data_dir=bureau.data_dir)

    assert "事件日志完整" in verify.stdout
    assert "不符 0 处" in fsck.stdout


def test_cli_amend_and_cancel(bureau: Bureau) -> None:
    target = bureau.elicense_ids[3]
    amend = run_cli(
        "license",
        "amend",
        target,
        "--set",
        "name=新名称有限公司",
        "--operator",
        "赵科员",
        "--reason",
        "名称变更",
        data_dir=bureau.data_dir,
    )
    stale = run_cli(
        "license",
        "amend",
        target,
        "--operator",
        "钱科员",
        "--reason",
        "重复提交",
        data_dir=bureau.data_dir,
        check=False,
    )
    cancel = run_cli(
        "license",
        "cancel",
        target,
        "--operator",
        "赵科员",
        "--reason",
        "申请注销",
        "--legal-basis",
        "条例第三十一条",
        data_dir=bureau.data_dir,
    )

    assert "已生成第 2 版" in amend.stdout
    assert stale.returncode == 1
    assert "基于版本 2 再提交" in stale.stderr
    assert "04 注销" in cancel.stdout
