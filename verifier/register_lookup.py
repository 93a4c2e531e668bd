"""Register facts for the verifier, read through the license repository."""

from __future__ import annotations

import datetime as dt

from common.codes import mask_citizen_id
from common.errors import NotFoundError
from license_store.models import License, LicenseStatus, LicenseVersion, Operation
from license_store.repository import Repository
from verifier.verdict import LicenseFacts

CITIZEN_ID_TYPE = "111"

STATUS_OPERATIONS = {
    Operation.SUSPEND,
    Operation.LIFT,
    Operation.REVOKE,
    Operation.CANCEL,
    Operation.EXPIRE,
}


class RepositoryLookup:
    """Implements :class:`verifier.register.RegisterLookup` on a Repository."""

    def __init__(self, repository: Repository, titles: dict[str, str]) -> None:
        self.repository = repository
        self.titles = titles

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        version = self.repository.find_version_by_pdf_sha256(pdf_sha256)
        return None if version is None else self._facts(version)

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        try:
            version = self.repository.get_version_by_elicense_id(elicense_id)
        except NotFoundError:
            return None
        return self._facts(version)

    def _facts(self, version: LicenseVersion) -> LicenseFacts:
        license = self.repository.get_license(version.license_id)
        current = self._current_version(license, version)
        record = version.record
        status = _effective_status(LicenseStatus(license.status), current, dt.date.today())
        holder_code = license.holder_code
        if license.holder_code_type == CITIZEN_ID_TYPE:
            holder_code = mask_citizen_id(holder_code)
        return LicenseFacts(
            elicense_id=version.elicense_id,
            version=version.version,
            license_type=license.license_type,
            license_title=self.titles.get(license.license_type),
            holder_name=license.holder_name,
            holder_code=holder_code,
            authority_name=record.get("authority_name"),
            authority_code=license.issuer_code,
            valid_from=version.valid_from.isoformat(),
            valid_to=version.valid_to.isoformat() if version.valid_to else None,
            register_status=status.value,
            register_status_label=status.label,
            current_version=license.current_version,
            current_elicense_id=current.elicense_id,
            status_changed_at=self._status_changed_at(license)
            or _expiry_date(status, current),
        )

    def _current_version(
        self, license: License, version: LicenseVersion
    ) -> LicenseVersion:
        if license.current_version == version.version:
            return version
        return self.repository.get_version(license.id, license.current_version)

    def _status_changed_at(self, license: License) -> str | None:
        if license.status == LicenseStatus.VALID:
            return None
        events = [
            event
            for event in self.repository.events_of(license.id)
            if event.operation in STATUS_OPERATIONS
        ]
        if not events:
            return None
        return events[-1].occurred_at.astimezone().strftime("%Y-%m-%d %H:%M")


def _effective_status(
    status: LicenseStatus, current: LicenseVersion, today: dt.date
) -> LicenseStatus:
    """Report a valid license past the end of its term as 失效 (expired).

    The register keeps 有效 until an expiry run records the change, so the
    verifier compares the current version's end date itself.
    """
    if status == LicenseStatus.VALID and current.valid_to and current.valid_to < today:
        return LicenseStatus.EXPIRED
    return status


def _expiry_date(status: LicenseStatus, current: LicenseVersion) -> str | None:
    if status == LicenseStatus.EXPIRED and current.valid_to is not None:
        return current.valid_to.isoformat()
    return None
