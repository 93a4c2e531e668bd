"""Agency queries: scope filtering, masking of ID numbers and the audit trail."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from common.codes import mask_citizen_id
from common.errors import NotFoundError, PermissionDeniedError
from elicense.web.auth import ApiClientIdentity
from license_store.models import AgencyQueryAuditCreate
from license_store.point_access import VersionFacts

if TYPE_CHECKING:
    from elicense.context import ServiceContext

logger = logging.getLogger(__name__)

CITIZEN_ID_TYPE = "111"
# Record fields that hold citizen ID numbers in any template.
ID_NUMBER_FIELDS = ("operator_id_number", "holder_id_number", "id_number")
MAX_SCANNED_LICENSES = 1000


def query_by_holder_code(
    context: ServiceContext,
    client: ApiClientIdentity,
    holder_code: str,
    purpose: str,
    page: int,
    page_size: int,
    *,
    wait_for_lock: bool = True,
) -> dict[str, Any]:
    """Return one page of the holder's licenses in scope and record the query.

    The scope filter runs before pagination, so ``total`` and the pages
    count only licenses the agency may see. With ``wait_for_lock=False``
    a busy register raises WriteLockBusy before anything is returned.
    """
    visible = _visible_licenses(context, client, holder_code)
    start = (page - 1) * page_size
    shown = visible[start : start + page_size]
    items = [_license_view(context, client, row) for row in shown]
    _record(context, client, purpose, {
        "holder_code": _masked_code(holder_code),
        "page": page,
        "page_size": page_size,
    }, len(items), wait=wait_for_lock)
    logger.info(
        "agency query client=%s results=%d page=%d", client.client_id, len(items), page
    )
    return {
        "holder_code": holder_code,
        "page": page,
        "page_size": page_size,
        "total": len(visible),
        "items": items,
    }


def _visible_licenses(
    context: ServiceContext, client: ApiClientIdentity, holder_code: str
) -> list[VersionFacts]:
    # NOTE: a holder has a handful of licenses, so all of them are read in
    # one statement and filtered here; at most MAX_SCANNED_LICENSES are
    # considered.
    rows = context.repository.point_reader.current_versions_of_holder(
        holder_code, MAX_SCANNED_LICENSES
    )
    return [row for row in rows if client.may_see_type(row.license_type)]


def _record(
    context: ServiceContext,
    client: ApiClientIdentity,
    purpose: str,
    query: dict[str, Any],
    result_count: int,
    *,
    wait: bool = True,
) -> None:
    context.repository.add_audit(
        AgencyQueryAuditCreate(
            client_id=client.client_id,
            purpose=purpose,
            query={"agency": client.name, "kind": client.kind, **query},
            result_count=result_count,
        ),
        wait=wait,
    )


def _masked_code(code: str) -> str:
    """Mask a holder code that is a citizen ID number before it is stored."""
    return mask_citizen_id(code) if _looks_like_citizen_id(code) else code


def _looks_like_citizen_id(code: str) -> bool:
    return len(code) == 18 and code[:17].isdigit() and code[6:8] in ("18", "19", "20")


def metadata_for(
    context: ServiceContext,
    client: ApiClientIdentity,
    elicense_id: str,
    purpose: str = "查看证照元数据",
) -> dict[str, Any]:
    """Return the GB/T 36903 metadata of one version, as the scope allows.

    Agency reads are recorded like queries; a bureau reading its own
    licenses is not.
    """
    facts = version_facts(context, elicense_id)
    _check_may_read(client, facts)
    if client.kind != "bureau":
        _record(context, client, purpose, {"elicense_id": elicense_id}, 1)
    return gbt_36903_metadata(context, facts, client)


def version_facts(context: ServiceContext, elicense_id: str) -> VersionFacts:
    """Return one version with its license, or raise NotFoundError."""
    facts = context.repository.point_reader.version_by_elicense_id(elicense_id)
    if facts is None:
        raise NotFoundError(
            f"登记簿中没有电子证照标识 {elicense_id}",
            fix="请核对标识是否完整，或向颁发机构核实",
        )
    return facts


def search_audit(
    context: ServiceContext,
    client: ApiClientIdentity,
    agency: str | None,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """Return one page of the query record of one agency id, or of all."""
    client_id = int(agency) if agency and agency.isdigit() else None
    return search_audit_record(
        context, client, AuditFilters(client_id=client_id), page, page_size
    )


def search_audit_record(
    context: ServiceContext,
    client: ApiClientIdentity,
    filters: AuditFilters,
    page: int,
    page_size: int,
) -> dict[str, Any]:
    """Return one page of the query record, newest first, for supervisors."""
    if client.kind != "supervisor":
        raise PermissionDeniedError(
            f"客户端 {client.name} 没有电子监察权限", fix="请使用监察部门的接口密钥"
        )
    result = context.repository.search_audit(
        client_id=filters.client_id,
        since=filters.since,
        until=filters.until,
        page=page,
        page_size=page_size,
    )
    return {
        "total": result.total,
        "page": page,
        "page_size": page_size,
        "items": [
            {
                "client_id": row.client_id,
                "agency": row.query.get("agency"),
                "purpose": row.purpose,
                "query": row.query,
                "result_count": row.result_count,
                "queried_at": row.queried_at.isoformat(),
            }
            for row in result.items
        ],
    }


@dataclass(frozen=True)
class AuditFilters:
    """Filters of the audit search: client id and a time window."""

    client_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def gbt_36903_metadata(
    context: ServiceContext,
    facts: VersionFacts,
    client: ApiClientIdentity | None = None,
) -> dict[str, Any]:
    template = context.catalogue.get(facts.license_type)
    record = facts.record
    holder_code = facts.holder_code
    if facts.holder_code_type == CITIZEN_ID_TYPE and not _may_see_ids(client):
        holder_code = mask_citizen_id(holder_code)
    return {
        "证照名称": template.title,
        "证照类型代码": facts.type_code,
        "证照编号": record.get("license_no") or facts.serial,
        "证照标识": facts.elicense_id,
        "颁发机构名称": record.get("authority_name"),
        "颁发机构代码": facts.issuer_code,
        "颁发日期": facts.issued_on.isoformat(),
        "持证主体名称": facts.holder_name,
        "持证主体代码": holder_code,
        "持证主体代码类型": facts.holder_code_type,
        "有效期起始日期": facts.valid_from.isoformat(),
        "有效期截止日期": facts.valid_to.isoformat() if facts.valid_to else "长期",
        "证照状态": facts.status.value,
        "证照状态名称": facts.status.label,
        "版本": f"{facts.version:03d}",
    }


def _license_view(
    context: ServiceContext, client: ApiClientIdentity, facts: VersionFacts
) -> dict[str, Any]:
    view = gbt_36903_metadata(context, facts, client)
    view["fields"] = _visible_fields(client, facts.record)
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


def _check_may_read(client: ApiClientIdentity, license: VersionFacts) -> None:
    if client.kind == "bureau":
        if client.authority_code != license.issuer_code:
            raise PermissionDeniedError("发证机关只能查看本机构签发的证照")
        return
    if not client.may_see_type(license.license_type):
        raise PermissionDeniedError(
            f"客户端 {client.name} 的查询范围不含证照类型 {license.license_type}"
        )
