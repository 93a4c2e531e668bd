"""Cross-department query API: licenses by unified social credit code.

Every query is authenticated, checked against the agency's scopes and
recorded with agency, purpose, time and result count (电子监察).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from common.codes import normalize_code
from elicense.web.deps import PAGES, Client, Context

router = APIRouter(prefix="/api/v1", tags=["query"])
pages = APIRouter()


@router.get("/licenses", summary="按统一社会信用代码查询证照")
def licenses_by_code(
    context: Context,
    client: Client,
    uscc: Annotated[str, Query(min_length=1, max_length=40, description="持证主体代码")],
    purpose: Annotated[str, Query(min_length=2, max_length=200, description="查询事由")],
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> JSONResponse:
    """Return the licenses held under a code, as the agency's scope allows."""
    client.require_agency()
    result = context.query_licenses(client, normalize_code(uscc), purpose, page, page_size)
    return JSONResponse(result)


@router.get("/licenses/{elicense_id}", summary="证照元数据（GB/T 36903）")
def license_metadata(elicense_id: str, context: Context, client: Client) -> JSONResponse:
    return JSONResponse(context.license_metadata(client, elicense_id))


@router.get("/audit", summary="查询电子监察记录（监察部门）")
def audit_log(
    context: Context,
    client: Client,
    agency: str | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    return JSONResponse(context.search_audit(client, agency, page, page_size))


@pages.get("/licenses/{elicense_id}", response_class=HTMLResponse, include_in_schema=False)
def license_page(request: Request, elicense_id: str, context: Context) -> HTMLResponse:
    """Show the register status of one version, as the QR page does."""
    result = context.status_page_result(elicense_id)
    page = {"result": result, "license": result.license, "holder_code_label": "持证主体代码",
            "checked_at": ""}
    return PAGES.TemplateResponse(request, "qr_result.html", page)
