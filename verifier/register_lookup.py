"""Register facts for the verifier, read through the license repository."""

from __future__ import annotations

import datetime as dt

from common.codes import mask_citizen_id
from license_store.models import LicenseStatus, Operation
from license_store.point_access import VersionFacts
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
    """Implements :class:`verifier.register.RegisterLookup` on a Repository.

    Each lookup is one statement on the repository's point reader; the
    events table is read only for a license that is no longer valid.
    """

    def __init__(self, repository: Repository, titles: dict[str, str]) -> None:
        self.repository = repository
        self.reader = repository.point_reader
        self.titles = titles

    def facts_for_pdf(self, pdf_sha256: str) -> LicenseFacts | None:
        row = self.reader.version_by_pdf_sha256(pdf_sha256)
        return None if row is None else self._facts(row)

    def facts_for_elicense_id(self, elicense_id: str) -> LicenseFacts | None:
        row = self.reader.version_by_elicense_id(elicense_id)
        return None if row is None else self._facts(row)

    def _facts(self, row: VersionFacts) -> LicenseFacts:
        status = _effective_status(row.status, row.current_valid_to, dt.date.today())
        holder_code = row.holder_code
        if row.holder_code_type == CITIZEN_ID_TYPE:
            holder_code = mask_citizen_id(holder_code)
        return LicenseFacts(
            elicense_id=row.elicense_id,
            version=row.version,
            license_type=row.license_type,
            license_title=self.titles.get(row.license_type),
            holder_name=row.holder_name,
            holder_code=holder_code,
            authority_name=row.record.get("authority_name"),
            authority_code=row.issuer_code,
            valid_from=row.valid_from.isoformat(),
            valid_to=row.valid_to.isoformat() if row.valid_to else None,
            register_status=status.value,
            register_status_label=status.label,
            current_version=row.current_version,
            current_elicense_id=row.current_elicense_id,
            status_changed_at=self._status_changed_at(row)
            or _expiry_date(status, row.current_valid_to),
        )

    def _status_changed_at(self, row: VersionFacts) -> str | None:
        if row.status == LicenseStatus.VALID:
            return None
        events = [
            event
            for event in self.repository.events_of(row.license_id)
            if event.operation in STATUS_OPERATIONS
        ]
        if not events:
            return None
        return events[-1].occurred_at.astimezone().strftime("%Y-%m-%d %H:%M")


def _effective_status(
    status: LicenseStatus, current_valid_to: dt.date | None, today: dt.date
) -> LicenseStatus:
    """Report a valid license past the end of its term as 失效 (expired).

    The register keeps 有效 until an expiry run records the change, so the
    verifier compares the current version's end date itself.
    """
    if status == LicenseStatus.VALID and current_valid_to and current_valid_to < today:
        return LicenseStatus.EXPIRED
    return status


def _expiry_date(status: LicenseStatus, current_valid_to: dt.date | None) -> str | None:
    if status == LicenseStatus.EXPIRED and current_valid_to is not None:
        return current_valid_to.isoformat()
    return None
