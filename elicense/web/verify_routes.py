"""Pages and endpoints for counter staff and the public: QR and PDF checks."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from common.errors import InputError
from elicense.web.deps import PAGES, Context
from elicense.web.uploads import read_limited_body

router = APIRouter()
HOLDER_CODE_LABELS = {"001": "统一社会信用代码", "111": "公民身份号码"}
# Multipart framing around one file adds a few hundred bytes.
MULTIPART_OVERHEAD_BYTES = 16 * 1024


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, context: Context) -> HTMLResponse:
    max_mb = context.settings.max_upload_bytes // (1024 * 1024)
    return PAGES.TemplateResponse(request, "index.html", {"max_mb": max_mb})


@router.get("/healthz", include_in_schema=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/V/{token}", response_class=HTMLResponse, summary="扫码核验页面")
@router.get("/v/{token}", response_class=HTMLResponse, include_in_schema=False)
def qr_page(request: Request, token: str, context: Context) -> HTMLResponse:
    """Show counter staff whether the scanned license is authentic and current."""
    result = context.qr_verifier.verify(token)
    facts = result.license
    label = HOLDER_CODE_LABELS.get(context.holder_code_type(facts), "持证主体代码")
    page = {
        "result": result,
        "license": facts,
        "holder_code_label": label,
        "checked_at": datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S"),
    }
    status = 200 if result.token_authentic else 400
    return PAGES.TemplateResponse(request, "qr_result.html", page, status_code=status)


@router.get("/api/v1/qr/{token}", summary="核验二维码令牌（JSON）")
def qr_json(token: str, context: Context) -> JSONResponse:
    result = context.qr_verifier.verify(token)
    return JSONResponse(result.to_json())


@router.post(
    "/api/v1/verify",
    summary="上传 PDF 核验",
    description=(
        "请求体为 PDF（Content-Type: application/pdf）或 multipart 表单字段 file。"
        "返回七个步骤的结果和结论 valid / invalid / indeterminate。"
    ),
)
async def verify_pdf(request: Request, context: Context) -> JSONResponse:
    data = await _read_pdf(request, context)
    verdict = await context.verify_pdf(data)
    return JSONResponse(verdict.to_json())


@router.post("/verify", response_class=HTMLResponse, include_in_schema=False)
async def verify_pdf_page(request: Request, context: Context) -> HTMLResponse:
    data = await _read_pdf(request, context)
    verdict = await context.verify_pdf(data)
    return PAGES.TemplateResponse(request, "pdf_result.html", {"verdict": verdict})


@router.get("/trust-list", response_class=HTMLResponse, summary="信任列表页面")
def trust_list_page(request: Request, context: Context) -> HTMLResponse:
    now = datetime.now(timezone.utc)
    rows = []
    for ca in context.trust.cas:
        status = ca.status_at(now)
        rows.append(
            {
                "name": ca.name,
                "fingerprint": ca.certificates[0].sha256.hex()[:32],
                "region": ca.region,
                "department": ca.department,
                "license_types": "、".join(ca.license_types).replace("*", "全部"),
                "issuer_codes": "、".join(ca.issuer_codes).replace("*", "全部"),
                "status": "互认中" if status and status.status == "recognised" else "已撤销",
            }
        )
    return PAGES.TemplateResponse(request, "trust_list.html", {"cas": rows})


@router.get("/api/v1/trust-list", summary="信任列表（JSON）")
def trust_list_json(context: Context) -> JSONResponse:
    return JSONResponse(context.trust.to_json())


async def _read_pdf(request: Request, context: Context) -> bytes:
    limit = context.settings.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await read_limited_body(request, limit)
    body = await read_limited_body(request, limit + MULTIPART_OVERHEAD_BYTES)
    # Starlette parses a form from the cached body when one is present.
    request._body = body
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError("表单中缺少文件字段 file", field="file", fix="请选择要核验的 PDF 文件")
    data = await upload.read()
    if len(data) > limit:
        raise InputError("文件超过大小上限", field="file", value=len(data))
    return data
