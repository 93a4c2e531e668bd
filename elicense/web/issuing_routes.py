"""Issuing API for the bureaus' registration systems."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse, Response

from common.errors import InputError
from elicense.web.deps import Client, Context

router = APIRouter(prefix="/api/v1", tags=["issuing"])


@router.post(
    "/licenses",
    status_code=201,
    summary="签发电子证照",
    description=(
        "请求体为一条证照记录（字段同 JSON Lines 输入）。Idempotency-Key 头相同的重试"
        "返回第一次的结果；持证主体已有同类现行证照时返回 409，除非 new_on_purpose=true。"
    ),
)
def issue_license(
    context: Context,
    client: Client,
    record: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    new_on_purpose: Annotated[bool, Query()] = False,
) -> JSONResponse:
    authority_code = str(record.get("authority_code") or "").strip().upper()
    if not authority_code:
        raise InputError(
            "记录缺少颁发机构代码",
            field="authority_code",
            fix="请在记录中填写 authority_code（本机构的统一社会信用代码）",
        )
    client.require_bureau_of(authority_code)
    issued = context.issue_record(
        record,
        operator=client.name,
        idempotency_key=idempotency_key,
        new_on_purpose=new_on_purpose,
    )
    return JSONResponse(issued, status_code=201)


@router.get("/licenses/{elicense_id}/pdf", summary="下载证照 PDF")
def license_pdf(elicense_id: str, context: Context, client: Client) -> Response:
    data = context.license_pdf(client, elicense_id)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{elicense_id}.pdf"'},
    )
