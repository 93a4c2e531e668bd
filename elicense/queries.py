"""Agency queries: scope filtering, masking of ID numbers and the audit trail."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from common.codes import mask_citizen_id
from common.errors import PermissionDeniedError
from elicense.web.auth import ApiClientIdentity
from license_store.models import AgencyQueryAuditCreate, License, LicenseStatus
from license_store.models import LicenseVersion

if TYPE_CHECKING:
    from elicense.context import ServiceContext

logger = logging.getLogger(__name__)

CITIZEN_ID_TYPE = "111"
# Record fields that hold citizen ID numbers in any template.
ID_NUMBER_FIELDS = ("operator_id_number", "holder_id_number", "id_number")


def query_by_holder_code(
    context: ServiceContext,
    client: ApiClientIdentity,
    holder_code: str,
    purpose: str,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """Return one page of the holder's licenses and record the query."""
    result = context.repository.licenses_by_holder_code(holder_code, page, page_size)
    visible = [row for row in result.items if client.may_see_type(row.license_type)]
    items = [_license_view(context, client, row) for row in visible]
    context.repository.add_audit(
        AgencyQueryAuditCreate(
            client_id=client.client_id,
            purpose=purpose,
            query={"holder_code": holder_code, "page": page, "page_size": page_size},
            result_count=len(items),
        )
    )
    logger.info(
        "agency query client=%s results=%d page=%d", client.client_id, len(items), page
    )
    return {
        "holder_code": holder_code,
        "page": page,
        "page_size": page_size,
        "total": result.total,
        "items": items,
    }


def metadata_for(
    context: ServiceContext, client: ApiClientIdentity, elicense_id: str
) -> dict[str, Any]:
    """Return the GB/T 36903 metadata of one version, as the scope allows."""
    version = context.repository.get_version_by_elicense_id(elicense_id)
    license = context.repository.get_license(version.license_id)
    _check_may_read(client, license)
    return gbt_36903_metadata(context, license, version, client)


def search_audit(
    context: ServiceContext,
    client: ApiClientIdentity,
    agency: str | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    if client.kind != "supervisor":
        raise PermissionDeniedError(
            f"客户端 {client.name} 没有电子监察权限", fix="请使用监察部门的接口密钥"
        )
    result = context.repository.search_audit(
        client_id=int(agency) if agency and agency.isdigit() else None,
        page=page,
        page_size=page_size,
    )
    return {
        "total": result.total,
        "page": page,
        "items": [
            {
                "client_id": row.client_id,
                "purpose": row.purpose,
                "query": row.query,
                "result_count": row.result_count,
                "queried_at": row.queried_at.isoformat(),
            }
            for row in result.items
        ],
    }


def gbt_36903_metadata(
    context: ServiceContext,
    license: License,
    version: LicenseVersion,
    client: ApiClientIdentity | None = None,
) -> dict[str, Any]:
    template = context.catalogue.get(license.license_type)
    record = version.record
    holder_code = license.holder_code
    if license.holder_code_type == CITIZEN_ID_TYPE and not _may_see_ids(client):
        holder_code = mask_citizen_id(holder_code)
    return {
        "证照名称": template.title,
        "证照类型代码": license.type_code,
        "证照编号": record.get("license_no") or license.serial,
        "证照标识": version.elicense_id,
        "颁发机构名称": record.get("authority_name"),
        "颁发机构代码": license.issuer_code,
        "颁发日期": version.issued_on.isoformat(),
        "持证主体名称": license.holder_name,
        "持证主体代码": holder_code,
        "持证主体代码类型": license.holder_code_type,
        "有效期起始日期": version.valid_from.isoformat(),
        "有效期截止日期": version.valid_to.isoformat() if version.valid_to else "长期",
        "证照状态": LicenseStatus(license.status).value,
        "证照状态名称": LicenseStatus(license.status).label,
        "版本": f"{version.version:03d}",
    }


def _license_view(
    context: ServiceContext, client: ApiClientIdentity, license: License
) -> dict[str, Any]:
    version = context.repository.get_version(license.id, license.current_version)
    view = gbt_36903_metadata(context, license, version, client)
    view["fields"] = _visible_fields(client, version.record)
    return view


def _visible_fields(client: ApiClientIdentity, record: dict[str, Any]) -> dict[str, Any]:
    allowed = record if "*" in client.fields else {
        key: value for key, value in record.items() if key in client.fields
    }
    shown = dict(allowed)
    if not client.may_see_id_numbers:
        for key in ID_NUMBER_FIELDS:
            if isinstance(shown.get(key), str):
                shown[key] = mask_citizen_id(shown[key])
    return shown


def _may_see_ids(client: ApiClientIdentity | None) -> bool:
    return client is not None and client.may_see_id_numbers


def _check_may_read(client: ApiClientIdentity, license: License) -> None:
    if client.kind == "bureau":
        if client.authority_code != license.issuer_code:
            raise PermissionDeniedError("发证机关只能查看本机构签发的证照")
        return
    if not client.may_see_type(license.license_type):
        raise PermissionDeniedError(
            f"客户端 {client.name} 的查询范围不含证照类型 {license.license_type}"
        )
