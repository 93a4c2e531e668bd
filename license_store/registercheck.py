"""Consistency of licenses, versions and events with each other.

Every license must have versions 1…current_version, every version exactly
one issuing event that names its identifier and PDF digest, and the status
of the license row must be the one its events lead to. A half-issued
license, a lost event or a status changed directly in the database shows
up here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from license_store.models import (
    License,
    LicenseEvent,
    LicenseStatus,
    LicenseVersion,
    Operation,
)
from license_store.repository import Repository

log = logging.getLogger(__name__)

VERSION_OPERATIONS = frozenset(
    {Operation.ISSUE, Operation.AMEND, Operation.RENEW, Operation.REPLACE}
)
FIXED_STATUS = {
    Operation.SUSPEND: LicenseStatus.SUSPENDED,
    Operation.LIFT: LicenseStatus.VALID,
    Operation.CANCEL: LicenseStatus.CANCELLED,
    Operation.EXPIRE: LicenseStatus.EXPIRED,
}


@dataclass(frozen=True)
class RegisterProblem:
    license_id: int
    problem: str


def check_register(repository: Repository) -> list[RegisterProblem]:
    """Return the problems of every license, in license id order.

    NOTE: reads the versions and events of one license at a time, two
    queries per license, so a register of millions takes minutes.
    """
    problems: list[RegisterProblem] = []
    for license in repository.iter_licenses():
        versions = repository.versions_of(license.id)  # type: ignore[arg-type]
        events = repository.events_of(license.id)  # type: ignore[arg-type]
        found = check_license(license, versions, events)
        for text in found:
            log.warning("license %s: %s", license.id, text)
        license_id = int(license.id or 0)
        problems.extend(RegisterProblem(license_id, text) for text in found)
    return problems


def check_license(
    license: License, versions: list[LicenseVersion], events: list[LicenseEvent]
) -> list[str]:
    """Return what does not match between one license's rows."""
    problems: list[str] = []
    numbers = [v.version for v in versions]
    expected = list(range(1, license.current_version + 1))
    if numbers != expected:
        problems.append(f"版本号应为 1 至 {license.current_version}，实为 {numbers}")
    for version in versions:
        problems.extend(_check_version_event(version, events))
    status = _status_from_events(events)
    if status is not None and status != LicenseStatus(license.status):
        problems.append(
            f"状态为 {LicenseStatus(license.status).value}，"
            f"事件日志得出的状态为 {status.value}"
        )
    return problems


def _check_version_event(
    version: LicenseVersion, events: list[LicenseEvent]
) -> list[str]:
    issuing = [
        e
        for e in events
        if e.operation in VERSION_OPERATIONS and e.version == version.version
    ]
    if len(issuing) != 1:
        return [f"版本 {version.version} 应有 1 条签发事件，实有 {len(issuing)} 条"]
    detail = issuing[0].detail
    if detail.get("elicense_id") != version.elicense_id:
        return [f"版本 {version.version} 的电子证照标识与其签发事件不符"]
    if detail.get("pdf_sha256") != version.pdf_sha256:
        return [f"版本 {version.version} 的 PDF 摘要与其签发事件不符"]
    return []


def _status_from_events(events: list[LicenseEvent]) -> LicenseStatus | None:
    status: LicenseStatus | None = None
    for event in events:
        operation = Operation(event.operation)
        if operation in VERSION_OPERATIONS:
            status = LicenseStatus.VALID
        elif "status" in event.detail:
            status = LicenseStatus(event.detail["status"])
        elif operation in FIXED_STATUS:
            status = FIXED_STATUS[operation]
        else:
            return None  # a revocation recorded without its status code
    return status
