"""Pages and endpoints for counter staff and the public: QR and PDF checks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from common.codes import mask_citizen_id
from common.errors import InputError
from elicense.context import ServiceContext
from elicense.web.deps import PAGES, Context
from elicense.web.receipts import make_receipt
from elicense.web.uploads import UploadTooLarge, read_limited_body
from verifier.qr_check import QrResult
from verifier.trustlist import StatusChange

router = APIRouter()
QR_RESULT_PAGE = PAGES.get_template("qr_result.html")
CITIZEN_ID_TYPE = "111"
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


# HEAD too: link checkers and chat apps probe a scanned URL before opening it.
@router.api_route(
    "/V/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse, summary="扫码核验页面"
)
@router.api_route(
    "/v/{token}", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
)
async def qr_page(request: Request, token: str) -> HTMLResponse:
    """Show counter staff whether the scanned license is authentic and current.

    This is the busiest page of the service, so it skips the dependency
    layer and renders the compiled template straight into the response.
    The check runs on the event loop: it is one ECDSA verification and one
    indexed read, about a millisecond of CPU, and a hop through the thread
    pool would cost more time than it frees.
    """
    context: ServiceContext = request.app.state.context
    result = context.qr_verifier.verify(token)
    facts = result.license
    code_type = context.holder_code_type(facts)
    page = QR_RESULT_PAGE.render(
        result=result,
        license=facts,
        holder_code_label=HOLDER_CODE_LABELS.get(code_type, "持证主体代码"),
        holder_code_shown=public_holder_code(result, code_type),
        checked_at=_local_now(),
    )
    return HTMLResponse(page, status_code=200 if result.token_authentic else 400)


def _local_now() -> str:
    return datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def public_holder_code(result: QrResult, code_type: str) -> str:
    """Return the holder code for a public page, masked if it is a citizen ID."""
    if result.license is not None:
        code = result.license.holder_code or ""
    else:
        code = result.claims.holder_code if result.claims else ""
    if code_type == CITIZEN_ID_TYPE or _looks_like_citizen_id(code):
        return mask_citizen_id(code)
    return code


def _looks_like_citizen_id(code: str) -> bool:
    return len(code) == 18 and code[:17].isdigit()


@router.get("/api/v1/qr/{token}", summary="核验二维码令牌（JSON）")
async def qr_json(token: str, context: Context) -> JSONResponse:
    # On the event loop for the same reason as the QR page.
    result = context.qr_verifier.verify(token)
    return JSONResponse(result.to_json())


@router.post(
    "/api/v1/verify",
    summary="上传 PDF 核验",
    description=(
        "请求体为 PDF（Content-Type: application/pdf）或 multipart 表单字段 file。"
        "返回七个步骤的结果和结论 valid / invalid / indeterminate。"
        "receipt=true 时返回签名的核验回执（CMS，application/pkcs7-mime），"
        "结论同时写在响应头 X-Verification-Outcome 中；回执可用 "
        "POST /api/v1/receipts/check 核对。"
    ),
    responses={
        200: {
            "description": "核验结论（JSON）或核验回执（receipt=true）",
            "content": {"application/pkcs7-mime": {}},
        },
        413: {"description": "上传内容超过大小上限"},
    },
)
async def verify_pdf(
    request: Request,
    context: Context,
    receipt: Annotated[bool, Query(description="返回签名的核验回执")] = False,
) -> Response:
    data = await _read_pdf(request, context)
    verdict = await context.verify_pdf(data)
    if not receipt:
        return JSONResponse(verdict.to_json())
    signed = await run_in_threadpool(make_receipt, context, verdict, data)
    return Response(
        signed,
        media_type="application/pkcs7-mime",
        headers={
            "Content-Disposition": 'attachment; filename="verification-receipt.p7m"',
            "X-Verification-Outcome": verdict.outcome.value,
        },
    )


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
                "status": _status_label(status),
                "origin": _origin_label(ca.imported_from),
                "history": [_history_line(change) for change in ca.history],
            }
        )
    return PAGES.TemplateResponse(request, "trust_list.html", {"cas": rows})


@router.get("/api/v1/trust-list", summary="信任列表（JSON）")
def trust_list_json(context: Context) -> JSONResponse:
    return JSONResponse(context.trust.to_json())


def _status_label(status: StatusChange | None) -> str:
    if status is None:
        return "尚未生效"
    return "互认中" if status.status == "recognised" else "已撤销互认"


def _history_line(change: StatusChange) -> str:
    return f"{change.since:%Y-%m-%d %H:%M} {_status_label(change)} {change.reason}"


def _origin_label(anchor_sha256: str | None) -> str:
    if anchor_sha256 is None:
        return "本地 CA"
    return f"导入自根证书 SHA-256 {anchor_sha256[:16]}…"


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
        raise UploadTooLarge(
            f"上传文件 {len(data)} 字节超过上限 {limit} 字节",
            field="file",
            value=len(data),
            fix="请只上传一个证照 PDF 文件",
        )
    return data
