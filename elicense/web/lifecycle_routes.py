"""Lifecycle API for the bureaus' systems, register search and the event log.

A bureau acts only on licenses of its own authority; an attempt on another
authority's license is rejected with 403 and logged. A change based on a
version that is no longer current is rejected with 409, and the body names
``current_version``, the version to reload.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from common.errors import PermissionDeniedError
from elicense.register_service import event_log_for, lifecycle_for
from elicense.web.auth import ApiClientIdentity
from elicense.web.deps import Client, Context
from license_store.lifecycle import Act
from license_store.models import License, LicenseStatus, LicenseVersion, Operation
from license_store.repository import LicenseQuery
from license_store.translog import checkpoint_json

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["lifecycle"])
ELICENSE_ID = Path(max_length=200, description="任一版本的电子证照标识")
CONFLICT = {
    409: {
        "description": "版本已变（响应中 current_version 为应重新读取的版本）或状态不允许"
    }
}
FORBIDDEN = {403: {"description": "证照不属于本机构"}}


class ActBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="办理事由")
    legal_basis: str | None = Field(
        default=None, max_length=2000, description="法律依据；暂扣、吊销、注销必填"
    )
    operator: str | None = Field(
        default=None, max_length=200, description="经办人；默认为客户端名称"
    )


class NewVersionBody(ActBody):
    expected_version: int | None = Field(
        default=None, ge=1, description="所依据的版本；默认为路径中标识的版本"
    )
    changes: dict[str, Any] = Field(default_factory=dict, description="改动的字段")


class StatusBody(ActBody):
    status: LicenseStatus | None = Field(
        default=None, description="仅用于 revoke：07 吊销（默认）或 03 撤销"
    )


def _own_license(
    context: Any, client: ApiClientIdentity, elicense_id: str
) -> tuple[License, LicenseVersion]:
    version = context.repository.get_version_by_elicense_id(elicense_id)
    license = context.repository.get_license(version.license_id)
    try:
        client.require_bureau_of(license.issuer_code)
    except PermissionDeniedError:
        logger.warning(
            "rejected client %s on license %s of another authority",
            client.client_id,
            license.id,
        )
        raise
    return license, version


def _act(client: ApiClientIdentity, body: ActBody) -> Act:
    operator = body.operator or client.name
    return Act(operator, str(client.authority_code), body.reason, body.legal_basis)


def _new_version(
    operation: Operation,
    context: Any,
    client: Any,
    elicense_id: str,
    body: NewVersionBody,
) -> JSONResponse:
    license, version = _own_license(context, client, elicense_id)
    issued = lifecycle_for(context).new_version(
        license.id,  # type: ignore[arg-type]
        operation,
        _act(client, body),
        expected_version=body.expected_version or version.version,
        changes=body.changes,
    )
    logger.info("client %s: %s license %s", client.client_id, operation, license.id)
    return JSONResponse(context.issuing.describe(issued), status_code=201)


def _change_status(
    operation: Operation, context: Any, client: Any, elicense_id: str, body: StatusBody
) -> JSONResponse:
    license, _version = _own_license(context, client, elicense_id)
    event = lifecycle_for(context).change_status(
        license.id,  # type: ignore[arg-type]
        operation,
        _act(client, body),
        status=body.status,
    )
    status = LicenseStatus(event.detail["status"])
    logger.info("client %s: %s license %s", client.client_id, operation, license.id)
    return JSONResponse(
        {
            "license_id": license.id,
            "status": status.value,
            "status_label": status.label,
            "log_index": event.log_index,
            "occurred_at": event.occurred_at.isoformat(),
        }
    )


def _register_new_version(operation: Operation, summary: str) -> None:
    @router.post(
        f"/licenses/{{elicense_id}}/{operation}",
        status_code=201,
        summary=summary,
        responses={**CONFLICT, **FORBIDDEN},
        name=f"license_{operation}",
    )
    def endpoint(
        elicense_id: Annotated[str, ELICENSE_ID],
        body: Annotated[NewVersionBody, Body()],
        context: Context,
        client: Client,
    ) -> JSONResponse:
        return _new_version(operation, context, client, elicense_id, body)


def _register_status(operation: Operation, summary: str) -> None:
    @router.post(
        f"/licenses/{{elicense_id}}/{operation}",
        summary=summary,
        responses={**CONFLICT, **FORBIDDEN},
        name=f"license_{operation}",
    )
    def endpoint(
        elicense_id: Annotated[str, ELICENSE_ID],
        body: Annotated[StatusBody, Body()],
        context: Context,
        client: Client,
    ) -> JSONResponse:
        return _change_status(operation, context, client, elicense_id, body)


_register_new_version(Operation.AMEND, "变更：生成新版本")
_register_new_version(Operation.RENEW, "换发：生成新版本")
_register_new_version(Operation.REPLACE, "补发：生成新版本")
_register_status(Operation.SUSPEND, "暂扣")
_register_status(Operation.LIFT, "解除暂扣")
_register_status(Operation.REVOKE, "吊销或撤销")
_register_status(Operation.CANCEL, "注销")


@router.get(
    "/licenses/{elicense_id}/history",
    summary="证照的全部版本和事件",
    responses=FORBIDDEN,
)
def license_history(
    elicense_id: Annotated[str, ELICENSE_ID], context: Context, client: Client
) -> JSONResponse:
    license, _version = _own_license(context, client, elicense_id)
    repository = context.repository
    status = LicenseStatus(license.status)
    return JSONResponse(
        {
            "license_id": license.id,
            "status": status.value,
            "status_label": status.label,
            "current_version": license.current_version,
            "versions": [
                {
                    "version": v.version,
                    "elicense_id": v.elicense_id,
                    "issued_on": v.issued_on.isoformat(),
                    "pdf_sha256": v.pdf_sha256,
                }
                for v in repository.versions_of(license.id)
            ],
            "events": [_event_json(e) for e in repository.events_of(license.id)],
        }
    )


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "log_index": event.log_index,
        "operation": str(event.operation),
        "version": event.version,
        "operator": event.operator,
        "authority_code": event.authority_code,
        "reason": event.reason,
        "legal_basis": event.legal_basis,
        "occurred_at": event.occurred_at.isoformat(),
        "detail": event.detail,
    }


@router.get(
    "/licenses/{elicense_id}/metadata",
    summary="本机构证照某一版本的 GB/T 36903 元数据",
    responses=FORBIDDEN,
)
def version_metadata(
    elicense_id: Annotated[str, ELICENSE_ID], context: Context, client: Client
) -> JSONResponse:
    from elicense.queries import gbt_36903_metadata, version_facts

    _own_license(context, client, elicense_id)
    facts = version_facts(context, elicense_id)
    return JSONResponse(gbt_36903_metadata(context, facts, client))


@router.get(
    "/licenses/{elicense_id}/proof",
    summary="版本签发事件在事件日志中的包含证明（RFC 9162）",
    responses=FORBIDDEN,
)
def inclusion_proof(
    elicense_id: Annotated[str, ELICENSE_ID], context: Context, client: Client
) -> JSONResponse:
    _license, version = _own_license(context, client, elicense_id)
    proof = event_log_for(context).inclusion_proof(version.license_id, version.version)
    return JSONResponse(proof.to_json())


@router.get("/log/checkpoint", summary="事件日志的最新签名检查点")
def latest_checkpoint(context: Context, client: Client) -> JSONResponse:
    return JSONResponse(checkpoint_json(event_log_for(context).checkpoint()))


@router.get("/log/consistency", summary="两个检查点之间的一致性证明（RFC 9162）")
def consistency_proof(
    context: Context,
    client: Client,
    old_size: Annotated[int, Query(ge=1, description="旧检查点的树大小")],
    new_size: Annotated[int, Query(ge=1, description="新检查点的树大小")],
) -> JSONResponse:
    proof = event_log_for(context).consistency_proof(old_size, new_size)
    return JSONResponse(proof.to_json())


@router.get(
    "/register/search",
    summary="本机构证照查询：代码、标识、名称、状态、颁发日期",
    description="按证照编号倒序分页；下一页传入上一页的 next_after_id。",
)
def search_licenses(
    context: Context,
    client: Client,
    uscc: Annotated[str | None, Query(max_length=40)] = None,
    elicense_id: Annotated[str | None, Query(max_length=200)] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: Annotated[LicenseStatus | None, Query()] = None,
    issued_from: Annotated[dt.date | None, Query()] = None,
    issued_to: Annotated[dt.date | None, Query()] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 20,
    after: Annotated[int | None, Query(ge=1)] = None,
) -> JSONResponse:
    client.require_bureau_of(str(client.authority_code))
    query = LicenseQuery(
        holder_code=uscc,
        elicense_id=elicense_id,
        holder_name=name,
        issuer_code=client.authority_code,
        status=status,
        issued_from=issued_from,
        issued_to=issued_to,
    )
    page = context.repository.search_licenses(query, page_size, after)
    return JSONResponse(
        {
            "items": [row.model_dump(mode="json") for row in page.items],
            "next_after_id": page.next_after_id,
        }
    )
