"""Cross-department query API: licenses by unified social credit code.

Every query is authenticated, checked against the agency's scopes and
recorded with agency, purpose, time and result count (电子监察).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from common.codes import normalize_code
from elicense.queries import (
    AuditFilters,
    metadata_for,
    query_by_holder_code,
    search_audit_record,
)
from elicense.web.deps import PAGES, Client, Context
from elicense.web.verify_routes import public_holder_code
from license_store.point_access import WriteLockBusy

router = APIRouter(prefix="/api/v1", tags=["query"])
pages = APIRouter()


PURPOSE = Query(min_length=2, max_length=200, description="查询事由，记入电子监察记录")
SINCE = Query(description="起始时间（含），ISO 8601；不带时区时按 UTC")
UNTIL = Query(description="截止时间（不含），ISO 8601；不带时区时按 UTC")
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "缺少或无效的接口密钥"},
    403: {"description": "超出本部门的查询范围"},
    429: {"description": "超过本部门每分钟请求上限，见 Retry-After 头"},
}


@router.get(
    "/licenses",
    summary="按统一社会信用代码查询证照",
    description=(
        "需要接口密钥（Authorization: Bearer 或 X-API-Key）。只返回本部门查询范围内的"
        "证照类型和字段；公民身份号码除非授权 id_numbers 否则打码。total 和分页只计"
        "范围内的证照。每次查询连同部门、事由、时间和结果数记入电子监察记录。"
    ),
    responses=AUTH_RESPONSES,
)
async def licenses_by_code(
    context: Context,
    client: Client,
    uscc: Annotated[str, Query(min_length=1, max_length=40, description="持证主体代码")],
    purpose: Annotated[str, PURPOSE],
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    """Return the licenses held under a code, as the agency's scope allows.

    The query runs on the event loop: one indexed read and one audit insert
    that does not wait. When another process holds SQLite's write lock the
    whole query is repeated in the thread pool, where the insert may wait.
    """
    client.require_agency()
    arguments = (context, client, normalize_code(uscc), purpose, page, page_size)
    try:
        result = query_by_holder_code(*arguments, wait_for_lock=False)
    except WriteLockBusy:
        result = await run_in_threadpool(query_by_holder_code, *arguments)
    return JSONResponse(result)


@router.get(
    "/licenses/{elicense_id}",
    summary="证照元数据（GB/T 36903）",
    description="查询部门的每次读取记入电子监察记录；发证机关只能读取本机构的证照。",
    responses={**AUTH_RESPONSES, 404: {"description": "没有该电子证照标识"}},
)
def license_metadata(
    elicense_id: Annotated[str, Path(max_length=200)],
    context: Context,
    client: Client,
    purpose: Annotated[str, PURPOSE] = "查看证照元数据",
) -> JSONResponse:
    return JSONResponse(metadata_for(context, client, elicense_id, purpose))


@router.get(
    "/audit",
    summary="查询电子监察记录（监察部门）",
    description=(
        "需要带 supervisor 范围的接口密钥。按部门客户端编号和时间窗口筛选，"
        "最新的在前，分页返回。"
    ),
    responses=AUTH_RESPONSES,
)
def audit_log(
    context: Context,
    client: Client,
    agency: Annotated[int | None, Query(ge=1, description="部门客户端编号")] = None,
    since: Annotated[datetime | None, SINCE] = None,
    until: Annotated[datetime | None, UNTIL] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    filters = AuditFilters(client_id=agency, since=_utc(since), until=_utc(until))
    return JSONResponse(search_audit_record(context, client, filters, page, page_size))


def _utc(moment: datetime | None) -> datetime | None:
    """Read a time without offset as UTC, as the audit record stores UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


@pages.get("/licenses/{elicense_id}", response_class=HTMLResponse, include_in_schema=False)
def license_page(request: Request, elicense_id: str, context: Context) -> HTMLResponse:
    """Show the register status of one version, as the QR page does."""
    result = context.status_page_result(elicense_id)
    code_type = context.holder_code_type(result.license)
    page = {
        "result": result,
        "license": result.license,
        "holder_code_label": "持证主体代码",
        "holder_code_shown": public_holder_code(result, code_type),
        "checked_at": "",
    }
    return PAGES.TemplateResponse(request, "qr_result.html", page)
