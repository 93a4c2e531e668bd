"""Dependencies shared by the route modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.templating import Jinja2Templates

from elicense.context import ServiceContext
from elicense.web.auth import ApiClientIdentity, authenticate
from elicense.web.client_auth import authenticate_certificate, presented_certificate

PAGES = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))


def get_context(request: Request) -> ServiceContext:
    return request.app.state.context


Context = Annotated[ServiceContext, Depends(get_context)]


def get_client(
    request: Request,
    context: Context,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ApiClientIdentity:
    """Authenticate by API key, or by client certificate when no key is sent."""
    if not authorization and not x_api_key:
        config = request.app.state.client_certificates
        certificate = presented_certificate(request, config)
        if certificate is not None:
            return authenticate_certificate(context, certificate)
    return authenticate(context, authorization, x_api_key)


Client = Annotated[ApiClientIdentity, Depends(get_client)]
