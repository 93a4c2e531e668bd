"""Endpoints of the development PKI: CA certificates, CRLs, OCSP and the TSA.

Certificates carry these URLs in their CRL distribution point and AIA
extensions, so outside validators can fetch revocation data and timestamps.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from common.errors import NotFoundError
from elicense.web.deps import Context
from elicense.web.uploads import read_limited_body

router = APIRouter(prefix="/pki", tags=["pki"])
MAX_PROTOCOL_REQUEST_BYTES = 64 * 1024


@router.get("/crl/{name}.crl", summary="CA 的证书吊销列表")
def crl(name: str, context: Context) -> Response:
    data = context.pki_file("crl", name)
    return Response(data, media_type="application/pkix-crl")


@router.get("/ca/{name}.cer", summary="CA 证书")
def ca_certificate(name: str, context: Context) -> Response:
    data = context.pki_file("cer", name)
    return Response(data, media_type="application/pkix-cert")


@router.post("/ocsp", summary="OCSP 应答")
async def ocsp(request: Request, context: Context) -> Response:
    body = await read_limited_body(request, MAX_PROTOCOL_REQUEST_BYTES)
    answer = context.answer_ocsp(body)
    return Response(answer, media_type="application/ocsp-response")


@router.post("/tsa", summary="RFC 3161 时间戳服务")
async def timestamp(request: Request, context: Context) -> Response:
    body = await read_limited_body(request, MAX_PROTOCOL_REQUEST_BYTES)
    answer = await context.answer_timestamp(body)
    if answer is None:
        raise NotFoundError("本服务未配置内置时间戳机构")
    return Response(answer, media_type="application/timestamp-reply")
