"""FastAPI application: verify pages, verification and query API, issuing API.

Routes stay thin: they translate HTTP into calls on the service context and
errors into status codes. Every error the product raises on purpose becomes a
JSON body with the message, the field and the fix; nothing becomes a 500.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import (
    ConflictError,
    ElicenseError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from elicense.context import ServiceContext
from elicense.web import (
    issuing_routes,
    pki_routes,
    query_routes,
    receipt_routes,
    verify_routes,
)
from elicense.web import lifecycle_routes
from elicense.web.auth import AuthError, RateLimited
from elicense.web.client_auth import ClientCertificateConfig
from elicense.web.uploads import UploadTooLarge

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: list[tuple[type[ElicenseError], int]] = [
    (AuthError, 401),
    (RateLimited, 429),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (UploadTooLarge, 413),
    (InputError, 422),
]


def create_app(context: ServiceContext) -> FastAPI:
    """Build the application around one service context."""
    app = FastAPI(
        title="电子证照与电子印章服务",
        description="签发、核验和查询内蒙古自治区电子证照。",
        version="1.0",
    )
    app.state.context = context
    app.state.client_certificates = ClientCertificateConfig.from_environment()
    app.add_exception_handler(ElicenseError, _product_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(SecurityHeadersAndBodyLimit)
    app.include_router(verify_routes.router)
    app.include_router(receipt_routes.router)
    app.include_router(query_routes.router)
    app.include_router(query_routes.pages)
    app.include_router(issuing_routes.router)
    app.include_router(pki_routes.router)
    app.include_router(lifecycle_routes.router)
    return app


async def _product_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ElicenseError)
    status = next((code for kind, code in STATUS_BY_ERROR if isinstance(error, kind)), 400)
    logger.info("%s %s -> %d: %s", request.method, request.url.path, status, error)
    headers = {"Retry-After": "60"} if status == 429 else None
    return JSONResponse(error.as_dict(), status_code=status, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    location = ".".join(str(part) for part in first.get("loc", ()))
    return JSONResponse(
        {
            "error": "InputError",
            "message": f"请求参数 {location} 无效：{first.get('msg', '')}",
            "field": location,
            "value": str(first.get("input", ""))[:80],
            "fix": "请按接口文档（/docs）修改请求",
        },
        status_code=422,
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    # Logged with the traceback for operators; the caller gets no internals.
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "InternalError", "message": "服务内部错误，请稍后重试或联系运维人员"},
        status_code=503,
    )


# Bodies other than PDF uploads are JSON records or protocol messages.
MAX_JSON_BODY_BYTES = 1024 * 1024
UPLOAD_PATHS = ("/api/v1/verify", "/verify", "/api/v1/receipts/check")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
# The verify pages use inline styles only and load nothing from elsewhere.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'"


class SecurityHeadersAndBodyLimit:
    """Add the security headers to every response; refuse oversized bodies.

    A plain ASGI middleware: it rewrites the response head on its way out
    and never buffers or copies the body, so a page costs no extra task or
    stream per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_JSON_BODY_BYTES and path not in UPLOAD_PATHS:
            await _body_too_large(declared)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.update(SECURITY_HEADERS)
                if headers.get("content-type", "").startswith("text/html") and not (
                    path.startswith("/docs")
                ):
                    headers["Content-Security-Policy"] = PAGE_POLICY
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _body_too_large(declared: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": "UploadTooLarge",
            "message": f"请求体 {declared} 字节超过上限 {MAX_JSON_BODY_BYTES} 字节",
            "fix": "一次只提交一条证照记录",
        },
        status_code=413,
    )
