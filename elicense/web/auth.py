"""API key authentication, authorisation scopes and per-client rate limits."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

from common.errors import ElicenseError, PermissionDeniedError

API_KEY_PREFIX = "elk_"


class AuthError(ElicenseError):
    """The request carries no valid credentials."""


class RateLimited(ElicenseError):
    """The client sent more requests than its limit allows."""


@dataclass(frozen=True)
class ApiClientIdentity:
    """An authenticated registration system (bureau) or agency."""

    client_id: int
    name: str
    kind: str  # "bureau" or "agency"
    authority_code: str | None = None
    license_types: tuple[str, ...] = ("*",)
    fields: tuple[str, ...] = ("*",)
    may_see_id_numbers: bool = False

    def require_bureau_of(self, authority_code: str) -> None:
        """Reject unless this client is the registration system of the authority."""
        if self.kind != "bureau":
            raise PermissionDeniedError(
                f"客户端 {self.name} 不是发证机关系统，不能办理证照业务",
                fix="请使用发证机关的接口密钥",
            )
        if self.authority_code != authority_code:
            raise PermissionDeniedError(
                f"客户端 {self.name} 只能为机构 {self.authority_code} 办理业务，"
                f"不能代替机构 {authority_code}",
                fix="请由该机构自己的登记系统提交",
            )

    def require_agency(self) -> None:
        if self.kind not in ("agency", "supervisor"):
            raise PermissionDeniedError(
                f"客户端 {self.name} 没有跨部门查询权限",
                fix="请向证照主管部门申请查询授权",
            )

    def may_see_type(self, license_type: str) -> bool:
        return "*" in self.license_types or license_type in self.license_types


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """Hash a key for storage; keys are 256-bit random, so SHA-256 suffices."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def authenticate(context, authorization: str | None, x_api_key: str | None) -> ApiClientIdentity:
    """Return the client named by the request's API key, or raise AuthError."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise AuthError(
            "缺少接口密钥", fix="请在 Authorization: Bearer <密钥> 或 X-API-Key 头中提供"
        )
    identity = context.find_client(hash_api_key(key))
    if identity is None:
        raise AuthError("接口密钥无效或已停用", fix="请向服务管理员申请新的密钥")
    context.rate_limiter.check(identity)
    return identity


@dataclass
class RateLimiter:
    """Token bucket per client.

    NOTE: the buckets live in one process, so with N workers a client may
    send up to N times the limit; a shared store (the database) would fix it.
    """

    per_minute: int
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, identity: ApiClientIdentity) -> None:
        now = time.monotonic()
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(identity.client_id, (self.per_minute, now))
            tokens = min(self.per_minute, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[identity.client_id] = (tokens, now)
                raise RateLimited(
                    f"客户端 {identity.name} 请求过于频繁（每分钟上限 {self.per_minute} 次）",
                    fix="请稍后重试",
                )
            self._buckets[identity.client_id] = (tokens - 1, now)
