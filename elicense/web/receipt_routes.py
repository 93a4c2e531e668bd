"""Check a verification receipt that this or a recognised deployment signed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from common.errors import InputError, TrustError
from elicense.web.deps import Context
from elicense.web.receipts import receipt_anchors
from elicense.web.uploads import read_limited_body
from verifier.receipts import check_receipt

router = APIRouter(prefix="/api/v1", tags=["verify"])
MAX_RECEIPT_BYTES = 1024 * 1024
MULTIPART_LIMIT_EXTRA_BYTES = 64 * 1024


@router.post(
    "/receipts/check",
    summary="核对核验回执",
    description=(
        "请求体为回执文件（application/pkcs7-mime），或 multipart 表单："
        "字段 receipt 为回执，可选字段 document 为原 PDF，用于比对文件散列。"
        "签名能链接到信任列表中任一 CA 时 signature_valid 为 true。"
    ),
)
async def check_receipt_route(request: Request, context: Context) -> JSONResponse:
    receipt, document = await _read_parts(request, context)
    try:
        checked = await run_in_threadpool(
            check_receipt, receipt, receipt_anchors(context), document
        )
    except TrustError as error:
        return JSONResponse({"signature_valid": False, **error.as_dict()})
    return JSONResponse(checked.to_json())


async def _read_parts(request: Request, context: Context) -> tuple[bytes, bytes | None]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return await read_limited_body(request, MAX_RECEIPT_BYTES), None
    limit = context.settings.max_upload_bytes + MAX_RECEIPT_BYTES
    request._body = await read_limited_body(
        request, limit + MULTIPART_LIMIT_EXTRA_BYTES
    )
    form = await request.form()
    receipt = form.get("receipt")
    if receipt is None or isinstance(receipt, str):
        raise InputError(
            "表单中缺少回执字段 receipt",
            field="receipt",
            fix="请上传核验服务出具的 .p7m 回执",
        )
    document = form.get("document")
    document_bytes = None
    if document is not None and not isinstance(document, str):
        document_bytes = await document.read()
    return await receipt.read(), document_bytes
