"""Lifecycle of a license after its first issue.

Face-changing operations make a new, immutable version with its own signed
PDF: amend (变更), renew (换发) and replace a lost copy (补发). Status
operations change the status of every version at once: suspend (暂扣),
lift (解除暂扣), revoke (吊销, or 撤销 for an annulment) and cancel (注销).
Each records operator, authority, reason, legal basis and time as an event
of the log, and each may only be done by the license's own authority.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import InputError, PermissionDeniedError
from license_store.issuance import IssuanceService, IssuedLicense
from license_store.models import (
    License,
    LicenseEvent,
    LicenseEventCreate,
    LicenseStatus,
    LicenseVersion,
    Operation,
)
from license_store.repository import Repository, StaleVersionError
from license_store.translog import EventLog

log = logging.getLogger(__name__)

NEW_VERSION_OPERATIONS = (Operation.AMEND, Operation.RENEW, Operation.REPLACE)
STATUS_TARGETS: dict[Operation, tuple[LicenseStatus, ...]] = {
    Operation.SUSPEND: (LicenseStatus.SUSPENDED,),
    Operation.LIFT: (LicenseStatus.VALID,),
    Operation.REVOKE: (LicenseStatus.REVOKED, LicenseStatus.ANNULLED),
    Operation.CANCEL: (LicenseStatus.CANCELLED,),
}
# Status operations that take away or restrict a right need a legal basis.
NEEDS_LEGAL_BASIS = frozenset({Operation.SUSPEND, Operation.REVOKE, Operation.CANCEL})


@dataclass(frozen=True)
class Act:
    """Operator, acting authority, reason and legal basis of one operation."""

    operator: str
    authority_code: str
    reason: str
    legal_basis: str | None = None


@dataclass(frozen=True)
class LicenseHistory:
    license: License
    versions: list[LicenseVersion]
    events: list[LicenseEvent]


class LifecycleService:
    """Operations on issued licenses, each written to the event log.

    With an event log that can sign, a checkpoint is signed after each
    operation, so a proof for the new state is available at once.
    """

    def __init__(
        self,
        issuance: IssuanceService,
        event_log: EventLog | None = None,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.issuance = issuance
        self.repository: Repository = issuance.repository
        self.event_log = event_log
        self.today = today or issuance.today

    # --- reading --------------------------------------------------------

    def resolve(self, elicense_id: str) -> tuple[License, LicenseVersion]:
        """Return the license and the version named by an e-license identifier."""
        version = self.repository.get_version_by_elicense_id(elicense_id)
        return self.repository.get_license(version.license_id), version

    def history(self, license_id: int) -> LicenseHistory:
        return LicenseHistory(
            self.repository.get_license(license_id),
            self.repository.versions_of(license_id),
            self.repository.events_of(license_id),
        )

    # --- new versions ---------------------------------------------------

    def new_version(
        self,
        license_id: int,
        operation: Operation,
        act: Act,
        *,
        expected_version: int,
        changes: Mapping[str, object] | None = None,
    ) -> IssuedLicense:
        """Issue the next version: the current record with ``changes`` applied.

        The issue date becomes today unless ``changes`` sets ``issued_on``.
        Raises StaleVersionError (a ConflictError naming the current version)
        when another version was added after ``expected_version``.
        """
        _check_operation(operation, NEW_VERSION_OPERATIONS)
        _check_act(act, operation)
        license = self._license_for(license_id, act)
        if license.current_version != expected_version:
            raise StaleVersionError(
                license.id, license.current_version, expected_version
            )
        if operation == Operation.AMEND and not changes:
            raise InputError(
                "变更没有列出任何改动的字段",
                field="changes",
                value=changes,
                fix="请用 --set 字段=新值（接口中为 changes）说明要变更的内容",
            )
        current = self.repository.get_version(license_id, license.current_version)
        record = _next_record(current.record, changes or {}, self.today())
        issued = self.issuance.reissue(
            license_id,
            record,
            expected_version=expected_version,
            operation=operation,
            operator=act.operator,
            reason=act.reason,
            legal_basis=act.legal_basis,
        )
        self._sign_checkpoint()
        return issued

    # --- status ---------------------------------------------------------

    def change_status(
        self,
        license_id: int,
        operation: Operation,
        act: Act,
        *,
        status: LicenseStatus | None = None,
    ) -> LicenseEvent:
        """Suspend, lift, revoke or cancel; every version shows it at once.

        ``status`` chooses between 吊销 (07, the default) and 撤销 (03) for
        revoke. Raises ConflictError when the current status forbids it.
        """
        _check_operation(operation, tuple(STATUS_TARGETS))
        _check_act(act, operation)
        target = _status_target(operation, status)
        license = self._license_for(license_id, act)
        event = self.repository.set_status(
            license_id,
            target,
            LicenseEventCreate(
                operation=operation,
                license_id=license_id,
                version=license.current_version,
                operator=act.operator,
                authority_code=license.issuer_code,
                reason=act.reason,
                legal_basis=act.legal_basis,
                detail={"previous_status": LicenseStatus(license.status).value},
            ),
        )
        self._sign_checkpoint()
        return event

    # --- helpers --------------------------------------------------------

    def _license_for(self, license_id: int, act: Act) -> License:
        license = self.repository.get_license(license_id)
        if license.issuer_code != act.authority_code:
            log.warning(
                "rejected authority %s on license %s of authority %s",
                act.authority_code,
                license_id,
                license.issuer_code,
            )
            raise PermissionDeniedError(
                f"机构 {act.authority_code} 不能办理证照 {license_id} 的业务："
                f"该证照由机构 {license.issuer_code} 颁发",
                fix="请由颁发该证照的机构办理",
            )
        return license

    def _sign_checkpoint(self) -> None:
        if self.event_log is None or self.event_log.signer is None:
            return
        self.event_log.checkpoint()


def _check_operation(operation: Operation, allowed: tuple[Operation, ...]) -> None:
    if Operation(operation) not in allowed:
        names = "、".join(str(op) for op in allowed)
        raise InputError(
            f"此处不能办理操作 {operation}",
            field="operation",
            value=str(operation),
            fix=f"可用的操作：{names}",
        )


def _check_act(act: Act, operation: Operation) -> None:
    if not act.operator.strip():
        raise InputError(
            "经办人不能为空", field="operator", value=act.operator, fix="请填写经办人"
        )
    if not act.reason.strip():
        raise InputError(
            "办理事由不能为空", field="reason", value=act.reason, fix="请填写办理事由"
        )
    if operation in NEEDS_LEGAL_BASIS and not (act.legal_basis or "").strip():
        raise InputError(
            f"操作 {operation} 必须写明法律依据",
            field="legal_basis",
            value=act.legal_basis,
            fix="请填写法律依据，例如《市场主体登记管理条例》第四十条",
        )


def _status_target(operation: Operation, status: LicenseStatus | None) -> LicenseStatus:
    targets = STATUS_TARGETS[Operation(operation)]
    if status is None:
        return targets[0]
    chosen = LicenseStatus(status)
    if chosen not in targets:
        codes = "、".join(f"{t.value} {t.label}" for t in targets)
        raise InputError(
            f"操作 {operation} 不能设置状态 {chosen.value} {chosen.label}",
            field="status",
            value=chosen.value,
            fix=f"可选状态：{codes}",
        )
    return chosen


def _next_record(
    current: Mapping[str, Any], changes: Mapping[str, object], today: dt.date
) -> dict[str, Any]:
    record = {**current, "issued_on": today.isoformat()}
    record.update(changes)
    return record
