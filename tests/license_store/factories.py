"""Rows for repository tests; codes carry correct check characters."""

from __future__ import annotations

import datetime as dt
import hashlib

from license_store.models import LicenseCreate, LicenseVersionCreate

ISSUER = "11150100MARBHQ0R0H"  # 呼和浩特市市场监督管理局
OTHER_ISSUER = "11150200MAW4HGK7XG"  # 包头市市场监督管理局
TYPE_CODE = "11100000000013338W001"
HOLDER = "91350100M000100Y43"
OTHER_HOLDER = "91110000600037341L"


def license_create(
    holder_code: str = HOLDER, issuer_code: str = ISSUER
) -> LicenseCreate:
    return LicenseCreate(
        license_type="business_license",
        type_code=TYPE_CODE,
        issuer_code=issuer_code,
        holder_code=holder_code,
        holder_code_type="001",
        holder_name="呼和浩特市草原乳业有限公司",
    )


def version_create(
    content: bytes = b"%PDF-1.7 v1", **changes: object
) -> LicenseVersionCreate:
    fields: dict[str, object] = {
        "record": {"name": "呼和浩特市草原乳业有限公司", "term_to": None},
        "pdf_sha256": hashlib.sha256(content).hexdigest(),
        "pdf_size": len(content),
        "valid_from": dt.date(2025, 1, 2),
        "valid_to": None,
        "issued_on": dt.date(2025, 1, 2),
    }
    fields.update(changes)
    return LicenseVersionCreate(**fields)
