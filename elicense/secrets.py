"""Source of the passphrase that protects the encrypted key files."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from common.errors import KeyStoreError
from elicense.settings import PLACEHOLDER_SECRETS, Settings

logger = logging.getLogger(__name__)


def load_passphrase(settings: Settings, *, create: bool = False) -> bytes:
    """Return the key passphrase from the environment or the passphrase file.

    The passphrase never comes from the command line, because command lines
    are visible to every user of the machine. In development, ``create``
    writes a random passphrase file (mode 0600) under the data directory; in
    production a missing or placeholder passphrase is an error.
    """
    if settings.key_passphrase is not None:
        value = settings.key_passphrase.get_secret_value()
        _reject_placeholder(value, settings, "ELICENSE_KEY_PASSPHRASE")
        return value.encode("utf-8")
    path = settings.passphrase_path
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        _reject_placeholder(value, settings, str(path))
        return value.encode("utf-8")
    if create and settings.environment == "development":
        return _create_passphrase_file(path).encode("utf-8")
    raise KeyStoreError(
        "找不到私钥口令",
        fix=(
            "请设置环境变量 ELICENSE_KEY_PASSPHRASE 或 ELICENSE_KEY_PASSPHRASE_FILE，"
            "开发环境请先运行 elicense init"
        ),
    )


def _reject_placeholder(value: str, settings: Settings, source: str) -> None:
    if settings.environment == "production" and value.lower() in PLACEHOLDER_SECRETS:
        raise KeyStoreError(
            f"{source} 中的私钥口令是占位值，生产环境不允许",
            fix="请设置一个随机生成的口令",
        )


def _create_passphrase_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    logger.info("created development key passphrase file %s", path)
    return value
