"""Amend, renew, replace, suspend, lift, revoke and cancel, on both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TODAY

from common.errors import ConflictError, InputError, PermissionDeniedError
from license_store.issuance import IssuanceService, IssuedLicense
from license_store.lifecycle import Act, LifecycleService
from license_store.models import LicenseStatus, Operation
from license_store.repository import Repository, StaleVersionError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
BUSINESS = SAMPLE[0]
AUTHORITY = BUSINESS["authority_code"]
OTHER_AUTHORITY = next(
    r["authority_code"] for r in SAMPLE if r["authority_code"] != AUTHORITY
)
ACT = Act("王科员", AUTHORITY, "住所变更", "《市场主体登记管理条例》第二十四条")


def _issue(service: IssuanceService) -> IssuedLicense:
    return service.issue(BUSINESS, operator="测试员")


NEW_DOMICILE = {"domicile": "内蒙古自治区阿拉善盟阿拉善左旗新华街2号"}


def test_amend_without_changes_rejected(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)

    with pytest.raises(InputError) as caught:
        lifecycle.new_version(first.license_id, Operation.AMEND, ACT, expected_version=1)

    assert caught.value.field == "changes"
    assert repository.get_license(first.license_id).current_version == 1


def test_amend_makes_new_version(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)

    second = lifecycle.new_version(
        first.license_id,
        Operation.AMEND,
        ACT,
        expected_version=1,
        changes={"domicile": "内蒙古自治区阿拉善盟阿拉善左旗新华街1号"},
    )

    version = repository.get_version(first.license_id, 2)
    assert second.version == 2
    assert version.record["domicile"].endswith("新华街1号")
    assert version.issued_on == TODAY
    assert repository.get_version(first.license_id, 1).record == (
        repository.get_version(first.license_id, 1).record
    )
    event = repository.events_of(first.license_id)[-1]
    assert event.operation == Operation.AMEND
    assert event.operator == "王科员"
    assert event.authority_code == AUTHORITY
    assert event.reason == "住所变更"
    assert event.legal_basis == ACT.legal_basis
    assert event.occurred_at is not None


@pytest.mark.parametrize("operation", [Operation.RENEW, Operation.REPLACE])
def test_renew_and_replace(
    service: IssuanceService, lifecycle: LifecycleService, operation: Operation
) -> None:
    first = _issue(service)

    second = lifecycle.new_version(first.license_id, operation, ACT, expected_version=1)

    assert second.version == 2
    assert second.pdf_sha256 != first.pdf_sha256


def test_stale_amend_names_current_version(
    service: IssuanceService, lifecycle: LifecycleService
) -> None:
    first = _issue(service)
    lifecycle.new_version(
        first.license_id, Operation.AMEND, ACT, expected_version=1, changes=NEW_DOMICILE
    )

    with pytest.raises(StaleVersionError) as caught:
        lifecycle.new_version(
            first.license_id,
            Operation.AMEND,
            ACT,
            expected_version=1,
            changes=NEW_DOMICILE,
        )

    assert caught.value.current_version == 2


def test_other_authority_refused(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)
    other = Act("李科员", OTHER_AUTHORITY, "越权尝试", "无")

    with pytest.raises(PermissionDeniedError):
        lifecycle.change_status(first.license_id, Operation.SUSPEND, other)
    with pytest.raises(PermissionDeniedError):
        lifecycle.new_version(
            first.license_id, Operation.AMEND, other, expected_version=1
        )

    assert repository.get_license(first.license_id).status == LicenseStatus.VALID
    assert len(repository.events_of(first.license_id)) == 1


def test_suspend_lift_revoke(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)

    lifecycle.change_status(first.license_id, Operation.SUSPEND, ACT)
    assert repository.get_license(first.license_id).status == LicenseStatus.SUSPENDED
    with pytest.raises(ConflictError):
        lifecycle.new_version(
            first.license_id,
            Operation.AMEND,
            ACT,
            expected_version=1,
            changes=NEW_DOMICILE,
        )
    lifecycle.change_status(first.license_id, Operation.LIFT, ACT)
    assert repository.get_license(first.license_id).status == LicenseStatus.VALID
    lifecycle.change_status(first.license_id, Operation.REVOKE, ACT)

    assert repository.get_license(first.license_id).status == LicenseStatus.REVOKED
    operations = [e.operation for e in repository.events_of(first.license_id)]
    assert operations == [
        Operation.ISSUE,
        Operation.SUSPEND,
        Operation.LIFT,
        Operation.REVOKE,
    ]
    assert repository.events_of(first.license_id)[-1].detail["status"] == "07"


def test_revoke_as_annulment(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)

    lifecycle.change_status(
        first.license_id, Operation.REVOKE, ACT, status=LicenseStatus.ANNULLED
    )

    assert repository.get_license(first.license_id).status == LicenseStatus.ANNULLED


def test_cancel_wrong_status_rejected(
    service: IssuanceService, lifecycle: LifecycleService
) -> None:
    first = _issue(service)

    with pytest.raises(InputError) as caught:
        lifecycle.change_status(
            first.license_id, Operation.CANCEL, ACT, status=LicenseStatus.REVOKED
        )

    assert caught.value.field == "status"


def test_cancel_needs_legal_basis(
    service: IssuanceService, lifecycle: LifecycleService
) -> None:
    first = _issue(service)
    act = Act("王科员", AUTHORITY, "申请注销")

    with pytest.raises(InputError) as caught:
        lifecycle.change_status(first.license_id, Operation.CANCEL, act)

    assert caught.value.field == "legal_basis"


def test_reason_required(service: IssuanceService, lifecycle: LifecycleService) -> None:
    first = _issue(service)

    with pytest.raises(InputError) as caught:
        lifecycle.new_version(
            first.license_id,
            Operation.REPLACE,
            Act("王科员", AUTHORITY, " "),
            expected_version=1,
        )

    assert caught.value.field == "reason"


def test_operation_signs_checkpoint(
    service: IssuanceService, lifecycle: LifecycleService, repository: Repository
) -> None:
    first = _issue(service)

    lifecycle.change_status(first.license_id, Operation.SUSPEND, ACT)

    checkpoint = repository.latest_checkpoint()
    assert checkpoint is not None
    assert checkpoint.tree_size == 2


def test_history_lists_versions_and_events(
    service: IssuanceService, lifecycle: LifecycleService
) -> None:
    first = _issue(service)
    lifecycle.new_version(first.license_id, Operation.REPLACE, ACT, expected_version=1)

    history = lifecycle.history(first.license_id)

    assert [v.version for v in history.versions] == [1, 2]
    assert [e.operation for e in history.events] == [Operation.ISSUE, Operation.REPLACE]
    assert history.license.current_version == 2
