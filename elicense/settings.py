"""Service settings, read once from the environment and validated at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PUBLIC_PATH = re.compile(r"[A-Z0-9./-]*")
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "password"}


class Settings(BaseSettings):
    """Every setting of the service; environment variables use ``ELICENSE_``."""

    model_config = SettingsConfigDict(env_prefix="ELICENSE_", extra="ignore")

    data_dir: Path = Path("var/data")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; SQLite under the data directory when unset",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL printed in QR codes and certificate extensions",
    )
    environment: str = Field(default="development", pattern="^(development|production)$")
    key_passphrase: SecretStr | None = None
    key_passphrase_file: Path | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pdf_revisions: int = 32
    max_pdf_objects: int = 20_000
    verify_seconds_budget: float = 10.0
    verify_in_worker: bool = Field(
        default=False,
        description="Verify each PDF in a worker process killed at the time budget",
    )
    agency_requests_per_minute: int = 120
    pkcs11_module: Path | None = Field(
        default=None, description="PKCS#11 module of the token holding seal keys"
    )
    pkcs11_token_label: str | None = Field(
        default=None, description="Label of the token holding seal keys"
    )
    pkcs11_pin_file: Path | None = Field(
        default=None,
        description="File with the token PIN, read when ELICENSE_PKCS11_PIN is unset",
    )
    tsa_url: str | None = Field(
        default=None,
        description="RFC 3161 timestamp authority URL; the built-in TSA when unset",
    )
    tsa_timeout_seconds: float = Field(default=10.0, gt=0)
    seal_expiry_warning_days: int = Field(
        default=30, ge=0, description="Warn when a seal certificate ends this soon"
    )
    blob_store: str = Field(
        default="file",
        pattern="^(file|database)$",
        description="Where issued PDFs are kept: file (data dir) or database",
    )

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        """Accept only URLs whose QR form can be upper-case alphanumeric.

        The QR text upper-cases the URL so that it encodes in alphanumeric
        mode; scheme and host are case-insensitive, but a path is not, so a
        path may only use upper-case letters, digits, '-', '.' and '/'.
        """
        url = urlsplit(value.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"public_url 应为 http(s)://主机[:端口]，收到 {value!r}")
        if url.query or url.fragment or not PUBLIC_PATH.fullmatch(url.path):
            raise ValueError(
                f"public_url 的路径只能含大写字母、数字、-、. 和 /，收到 {url.path!r}；"
                "请改用大写路径或去掉路径"
            )
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'elicense.db').resolve()}"

    @property
    def passphrase_path(self) -> Path:
        return self.key_passphrase_file or self.data_dir / "secrets" / "key-passphrase"
