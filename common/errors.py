"""Error base for the whole product.

Every error carries a plain explanation and, where one exists, the fix. The
edges (CLI, HTTP) decide how to show it: the CLI prints ``str(error)`` and
exits non-zero, the web layer maps the subclass to a status code.
"""

from __future__ import annotations


class ElicenseError(Exception):
    """Base of every error the product raises on purpose."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if fix is None else f"{message}；{fix}")

    def as_dict(self) -> dict[str, str]:
        detail = {"error": type(self).__name__, "message": self.message}
        if self.fix:
            detail["fix"] = self.fix
        return detail


class InputError(ElicenseError):
    """A record, file or request is invalid; the caller must change it."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        value: object = None,
        fix: str | None = None,
    ) -> None:
        self.field = field
        self.value = value
        super().__init__(message, fix=fix)

    def as_dict(self) -> dict[str, str]:
        detail = super().as_dict()
        if self.field is not None:
            detail["field"] = self.field
            detail["value"] = _shorten(self.value)
        return detail


class NotFoundError(ElicenseError):
    """A license, version, seal or authority does not exist."""


class ConflictError(ElicenseError):
    """The request conflicts with the current state (stale version, duplicate)."""


class KeyStoreError(ElicenseError):
    """A private key cannot be loaded or used."""


class TrustError(ElicenseError):
    """A certificate, chain or trust list cannot be established."""


class StorageError(ElicenseError):
    """The register or the blob store cannot complete an operation."""


class PermissionDeniedError(ElicenseError):
    """The caller is authenticated but may not perform this operation."""


def _shorten(value: object, limit: int = 80) -> str:
    if value is None:
        return "（空）"
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
