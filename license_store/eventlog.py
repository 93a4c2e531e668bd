"""Leaf hashes of the event log, the leaves of its Merkle tree.

The leaf hash follows RFC 6962: SHA-256 over a zero byte and the canonical
JSON of the event (keys sorted, no spaces, UTF-8, time in UTC with
microseconds). It is computed from the stored fields only, so anyone holding
the rows can recompute it. :mod:`license_store.translog` builds the tree,
its proofs and signed checkpoints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

LEAF_PREFIX = b"\x00"


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON: sorted keys, no blanks, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def utc_text(moment: dt.datetime) -> str:
    """Format a time in UTC, reading a naive time (as SQLite returns it) as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_leaf_hash(
    *,
    operation: str,
    license_id: int,
    version: int,
    operator: str,
    authority_code: str,
    reason: str | None,
    legal_basis: str | None,
    occurred_at: dt.datetime,
    detail: dict[str, Any],
) -> str:
    """Return the hex leaf hash of one event."""
    payload = {
        "operation": str(operation),
        "license_id": license_id,
        "version": version,
        "operator": operator,
        "authority_code": authority_code,
        "reason": reason,
        "legal_basis": legal_basis,
        "occurred_at": utc_text(occurred_at),
        "detail": detail,
    }
    return hashlib.sha256(LEAF_PREFIX + canonical_json(payload)).hexdigest()


def leaf_hash_of(row: Any) -> str:
    """Recompute the leaf hash of a stored event row from its fields."""
    return event_leaf_hash(
        operation=str(row.operation),
        license_id=row.license_id,
        version=row.version,
        operator=row.operator,
        authority_code=row.authority_code,
        reason=row.reason,
        legal_basis=row.legal_basis,
        occurred_at=row.occurred_at,
        detail=row.detail,
    )
