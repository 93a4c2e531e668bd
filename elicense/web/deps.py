"""Dependencies shared by the route modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from elicense.context import ServiceContext
from elicense.web.auth import ApiClientIdentity, authenticate
from elicense.web.client_auth import authenticate_certificate, presented_certificate

PAGES = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))


async def get_context(request: Request) -> ServiceContext:
    # A coroutine, so FastAPI resolves it on the event loop instead of
    # sending each request through the thread pool for an attribute read.
    return request.app.state.context


Context = Annotated[ServiceContext, Depends(get_context)]


async def get_client(
    request: Request,
    context: Context,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ApiClientIdentity:
    """Authenticate by API key, or by client certificate when no key is sent.

    A key is checked on the event loop, because its lookup is one indexed
    read on the point reader and readers do not wait for writers (SQLite in
    WAL mode, PostgreSQL). A certificate needs path validation and goes to
    the thread pool.
    """
    if not authorization and not x_api_key:
        config = request.app.state.client_certificates
        certificate = presented_certificate(request, config)
        if certificate is not None:
            return await run_in_threadpool(authenticate_certificate, context, certificate)
    return authenticate(context, authorization, x_api_key)


Client = Annotated[ApiClientIdentity, Depends(get_client)]
