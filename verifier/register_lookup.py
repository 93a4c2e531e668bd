"""Register facts for the verifier, read through the license repository."""

from __future__ import annotations

from common.errors import NotFoundError
from license_store.models import License, LicenseStatus, LicenseVersion, Operation
from license_store.repository import Repository
from verifier.verdict import LicenseFacts

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
        status = LicenseStatus(license.status)
        return LicenseFacts(
            elicense_id=version.elicense_id,
            version=version.version,
            license_type=license.license_type,
            license_title=self.titles.get(license.license_type),
            holder_name=license.holder_name,
            holder_code=license.holder_code,
            authority_name=record.get("authority_name"),
            authority_code=license.issuer_code,
            valid_from=version.valid_from.isoformat(),
            valid_to=version.valid_to.isoformat() if version.valid_to else None,
            register_status=status.value,
            register_status_label=status.label,
            current_version=license.current_version,
            current_elicense_id=current.elicense_id,
            status_changed_at=self._status_changed_at(license),
        )

    def _current_version(self, license: License, version: LicenseVersion) -> LicenseVersion:
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
