"""Authenticate a department's system by its client certificate (mutual TLS).

A certificate is registered like an API key: the register stores the hash
of ``client-certificate:<SHA-256 of the DER>`` as the client's key hash, so
no table changes and a registered certificate is found like a key.

The certificate reaches the application in one of two ways:

* the ASGI TLS extension (``scope["extensions"]["tls"]["client_cert_chain"]``),
  from servers that implement it;
* a header set by a TLS-terminating proxy (nginx: ``$ssl_client_escaped_cert``),
  read only when ``ELICENSE_CLIENT_CERT_HEADER`` names it and the request
  comes from an address listed in ``ELICENSE_TRUSTED_PROXIES``.

NOTE: uvicorn 0.55 does not fill the ASGI TLS extension, so with
``elicense serve`` the proxy header is the only working path; the proxy
must verify the chain with ``elicense trust ca-bundle`` and overwrite the
header on every request. The certificate is checked again here against
the trust list either way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import unquote

from fastapi import Request

from common.errors import TrustError
from elicense.context import ServiceContext
from elicense.web.auth import ApiClientIdentity, AuthError, hash_api_key
from verifier.client_certs import (
    certificate_fingerprint,
    check_client_certificate,
    load_client_certificate,
)

logger = logging.getLogger(__name__)

KEY_PREFIX = "client-certificate:"


@dataclass(frozen=True)
class ClientCertificateConfig:
    """Proxy settings: the certificate header and the trusted proxy addresses."""

    header: str | None = None
    trusted_proxies: frozenset[str] = frozenset()

    @classmethod
    def from_environment(cls) -> ClientCertificateConfig:
        header = os.environ.get("ELICENSE_CLIENT_CERT_HEADER") or None
        proxies = os.environ.get("ELICENSE_TRUSTED_PROXIES", "")
        addresses = frozenset(
            part.strip() for part in proxies.split(",") if part.strip()
        )
        return cls(header, addresses)


def certificate_key_hash(fingerprint: str) -> str:
    """Return the key hash under which a client certificate is registered."""
    return hash_api_key(KEY_PREFIX + fingerprint)


def presented_certificate(
    request: Request, config: ClientCertificateConfig
) -> bytes | None:
    """Return the client certificate of the request, or None."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or ()
    if chain:
        first = chain[0]
        return first.encode("ascii") if isinstance(first, str) else bytes(first)
    if config.header is None or request.client is None:
        return None
    if request.client.host not in config.trusted_proxies:
        return None
    value = request.headers.get(config.header)
    return unquote(value).encode("ascii", "replace") if value else None


def authenticate_certificate(context: ServiceContext, data: bytes) -> ApiClientIdentity:
    """Return the client registered for a certificate that the trust list accepts."""
    try:
        certificate = load_client_certificate(data)
        ca_name = check_client_certificate(context.trust, certificate)
    except TrustError as error:
        raise AuthError(error.message, fix=error.fix) from error
    fingerprint = certificate_fingerprint(certificate)
    identity = context.find_client(certificate_key_hash(fingerprint))
    if identity is None:
        raise AuthError(
            f"客户端证书（SHA-256 {fingerprint[:16]}…）未登记或已停用",
            fix="请由服务管理员用 elicense trust client-cert 登记该证书",
        )
    logger.info(
        "client %s authenticated by certificate of CA %s", identity.client_id, ca_name
    )
    context.rate_limiter.check(identity)
    return identity
