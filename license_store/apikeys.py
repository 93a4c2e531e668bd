"""API keys of bureau and agency clients.

The register stores only the SHA-256 of a key. A key is 32 random bytes,
so a plain hash without salt or stretching is enough to keep a leaked
register from revealing usable keys.
"""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "elk_"
API_KEY_BYTES = 32


def generate_api_key() -> str:
    """Return a new random API key, to be shown to the client once."""
    return API_KEY_PREFIX + secrets.token_urlsafe(API_KEY_BYTES)


def hash_api_key(api_key: str) -> str:
    """Return the hex SHA-256 of an API key, as stored in ``api_clients``."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()
