"""Issue licenses: validate, allocate the serial, render, sign, store.

One record becomes one license in these steps, and no register
transaction stays open while a PDF is rendered or signed:

1. Validate the record against its template and look up the authority.
   Return the first result of a repeated idempotency key and reject a
   duplicate holder early.
2. Allocate the serial in a short transaction of its own.
3. Build the QR token text, render the PDF and sign it with the seal.
4. Write the signed PDF to the blob store.
5. In a short transaction under the holder lock, check the idempotency key
   and the duplicate holder again, then insert the rows and the event.
   A request that loses a race here discards its PDF.

The PDF is stored before the rows commit, so a committed version always has
its blob. A crash between the two steps leaves an orphan blob, which
:func:`license_store.storecheck.check_store` reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from common.authority import Authority, AuthorityRegistry
from common.codes import ElicenseIdentifier
from common.errors import ConflictError, ElicenseError, InputError, StorageError
from esign.qrtoken import TokenClaims
from license_store.blobs import BlobStore
from license_store.models import (
    License,
    LicenseCreate,
    LicenseEventCreate,
    LicenseVersion,
    LicenseVersionCreate,
    Operation,
)
from license_store.records import RecordLine
from license_store.repository import Repository, hash_request

log = logging.getLogger(__name__)

REISSUE_OPERATIONS = frozenset({Operation.AMEND, Operation.RENEW, Operation.REPLACE})


@dataclass(frozen=True)
class FaceInfo:
    """Face items that come from the register: identifier, QR text and authority."""

    elicense_id: str
    version: int
    qr_text: str
    authority: Authority
    issued_on: dt.date


class RenderedPdf(Protocol):
    pdf: bytes
    seal_box: Any


class Renderer(Protocol):
    def __call__(
        self, template: Any, record: Mapping[str, object], face: FaceInfo
    ) -> RenderedPdf: ...


class PdfSigner(Protocol):
    def sign(self, pdf: bytes, *, seal_box: Any = None) -> bytes: ...


class TemplateCatalogue(Protocol):
    def get(self, license_type: str) -> Any: ...


@dataclass(frozen=True)
class IssuedLicense:
    """Outcome of one issue, with ``replayed`` set for a repeated idempotent request."""

    license_id: int
    version: int
    elicense_id: str
    pdf_sha256: str
    pdf_size: int
    replayed: bool = False

    @classmethod
    def from_row(cls, row: LicenseVersion, replayed: bool = False) -> IssuedLicense:
        return cls(
            license_id=row.license_id,
            version=row.version,
            elicense_id=row.elicense_id,
            pdf_sha256=row.pdf_sha256,
            pdf_size=row.pdf_size,
            replayed=replayed,
        )


@dataclass(frozen=True)
class Rejection:
    """Batch record that was not issued, with the reason."""

    line_no: int
    field: str | None
    value: str | None
    message: str


@dataclass
class BatchSummary:
    issued: list[IssuedLicense] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    elapsed_seconds: float = 0.0


@dataclass(frozen=True)
class _Prepared:
    """A validated record with the facts the register needs from it."""

    template: Any
    record: dict[str, object]
    authority: Authority
    holder_code: str
    holder_name: str
    issued_on: dt.date
    valid_from: dt.date
    valid_to: dt.date | None


@dataclass(frozen=True)
class _IssueRequest:
    """Who asked for an issue, why, and the idempotency key of the request."""

    operator: str
    reason: str | None
    idempotency_key: str | None
    request_hash: str


@dataclass(frozen=True)
class _Rendered:
    pdf: bytes
    seal_box: Any


class TemplateRenderer:
    """Renderer backed by ``templates.render_license``.

    ``seal_artwork_for(authority_code)`` returns the seal drawn on the face,
    or None for a face without a printed seal. The seal box of the rendered
    page is handed to the signer as an ``esign.signing.SealBox``.
    """

    def __init__(
        self, seal_artwork_for: Callable[[str], Any | None] | None = None
    ) -> None:
        self.seal_artwork_for = seal_artwork_for or (lambda authority_code: None)

    def __call__(
        self, template: Any, record: Mapping[str, object], face: FaceInfo
    ) -> RenderedPdf:
        # Imported here so that importing the register loads neither fonts nor pyHanko.
        import templates
        from esign.signing import SealBox

        context = templates.FaceContext(
            elicense_id=face.elicense_id,
            version=face.version,
            qr_text=face.qr_text,
            authority_name=face.authority.name,
            authority_code=face.authority.code,
            authority_region=face.authority.region_code,
            issued_on=face.issued_on,
            seal=self.seal_artwork_for(face.authority.code),
        )
        rendered = templates.render_license(template, record, context)
        page_index, *rect = rendered.seal_box
        return _Rendered(rendered.pdf, SealBox(page_index, tuple(rect)))


class IssuanceService:
    """Issues licenses of all templates for the authorities of a registry.

    ``signer_for(authority_code)`` returns the seal signer of an authority,
    ``make_qr_text(claims)`` the text of the QR code, and ``today()`` the
    issue date used for the serial year.
    """

    def __init__(
        self,
        repository: Repository,
        blobs: BlobStore,
        *,
        catalogue: TemplateCatalogue,
        authorities: AuthorityRegistry,
        signer_for: Callable[[str], PdfSigner],
        make_qr_text: Callable[[TokenClaims], str],
        render: Renderer | None = None,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.repository = repository
        self.blobs = blobs
        self.catalogue = catalogue
        self.authorities = authorities
        self.signer_for = signer_for
        self.make_qr_text = make_qr_text
        self.render = render or TemplateRenderer()
        self.today = today

    # --- one record -----------------------------------------------------

    def issue(
        self,
        raw: Mapping[str, object],
        *,
        operator: str,
        idempotency_key: str | None = None,
        new_on_purpose: bool = False,
        reason: str | None = None,
    ) -> IssuedLicense:
        """Issue version 1 of a new license from a raw record.

        Raises InputError for an invalid record, NotFoundError for an unknown
        authority, and ConflictError when the holder already has a current
        license of this type (unless ``new_on_purpose``) or when the
        idempotency key was used for a different record. A repeated request
        with the same key returns the first result with ``replayed=True``.
        """
        prepared = self._prepare(raw)
        request_hash = hash_request(_jsonable(prepared.record))
        if idempotency_key is not None:
            replay = self._replay(idempotency_key, prepared, request_hash)
            if replay is not None:
                return replay
        if not new_on_purpose:
            self._reject_duplicate(prepared)
        request = _IssueRequest(operator, reason, idempotency_key, request_hash)
        with self._blobs_discarded_on_failure() as written:
            serial = self._allocate_serial(prepared)
            try:
                identifier = ElicenseIdentifier(
                    prepared.template.catalogue_code, prepared.authority.code, serial, 1
                )
                pdf = self._produce_pdf(prepared, identifier)
                written.append(self.blobs.put(pdf))
                outcome = self._commit_first_version(
                    prepared, serial, pdf, written[-1], request, new_on_purpose
                )
            except BaseException:
                self._return_serial(prepared, serial)
                raise
        if outcome.replayed:
            self._return_serial(prepared, serial)
            self._discard_blob(written[-1])
            return outcome
        log.info(
            "issued license %s version 1 (%s)", outcome.license_id, outcome.elicense_id
        )
        return outcome

    def _allocate_serial(self, prepared: _Prepared) -> str:
        """Take the next serial in a short transaction of its own.

        NOTE: a failure after this step (signing, a lost race at insert, a
        crash) leaves the serial unused. After a failure in this process the
        serial is handed back when no later one was taken meanwhile, so a gap
        remains only after a crash or alongside parallel issues.
        """
        return self.repository.next_serial(prepared.authority.code, self.today().year)

    def _commit_first_version(
        self,
        prepared: _Prepared,
        serial: str,
        pdf: bytes,
        sha256: str,
        request: _IssueRequest,
        new_on_purpose: bool,
    ) -> IssuedLicense:
        """Insert the license in a short transaction, checking again for races.

        Under the holder lock a parallel request may have committed the same
        idempotency key (the first result is returned with ``replayed``) or a
        license of the same holder and type (ConflictError). The caller then
        discards the PDF it has just signed.
        """
        with self.repository.transaction():
            self.repository.lock_holder(
                prepared.holder_code, prepared.template.license_type
            )
            if request.idempotency_key is not None:
                replay = self._replay(
                    request.idempotency_key, prepared, request.request_hash
                )
                if replay is not None:
                    return replay
            if not new_on_purpose:
                self._reject_duplicate(prepared)
            version = self._insert_license(prepared, serial, pdf, sha256)
            self._record(
                prepared, version, Operation.ISSUE, request.operator, request.reason
            )
            if request.idempotency_key is not None:
                self.repository.store_idempotency_key(
                    request.idempotency_key,
                    prepared.authority.code,
                    request.request_hash,
                    version.license_id,
                    version.version,
                )
        return IssuedLicense.from_row(version)

    def _return_serial(self, prepared: _Prepared, serial: str) -> None:
        try:
            self.repository.return_serial(
                prepared.authority.code, self.today().year, serial
            )
        except Exception:  # the error that made the issue fail matters more
            log.warning("could not hand back serial %s", serial, exc_info=True)

    def _replay(
        self, idempotency_key: str, prepared: _Prepared, request_hash: str
    ) -> IssuedLicense | None:
        found = self.repository.find_idempotency_key(
            idempotency_key, prepared.authority.code, request_hash
        )
        if found is None:
            return None
        row = self.repository.get_version(found.license_id, found.version)
        log.info("replayed license %s version %s", row.license_id, row.version)
        return IssuedLicense.from_row(row, replayed=True)

    def reissue(
        self,
        license_id: int,
        raw: Mapping[str, object],
        *,
        expected_version: int,
        operation: Operation,
        operator: str,
        reason: str | None = None,
        legal_basis: str | None = None,
    ) -> IssuedLicense:
        """Issue the next version of a license (amend, renew or replace).

        The record must name the same holder and authority as the license.
        Raises ConflictError when ``expected_version`` is not the current
        version or the license status forbids a new version.
        """
        if operation not in REISSUE_OPERATIONS:
            raise InputError(
                f"操作 {operation} 不生成新版本",
                field="operation",
                value=operation,
                fix="新版本只能由 amend（变更）、renew（换发）或 replace（补发）生成",
            )
        license = self.repository.get_license(license_id)
        prepared = self._prepare(raw)
        _check_same_license(license, prepared)
        # Checked here to fail before signing, and again under the row lock.
        self.repository.check_new_version_allowed(license, expected_version)
        identifier = ElicenseIdentifier(
            license.type_code, license.issuer_code, license.serial, expected_version + 1
        )
        with self._blobs_discarded_on_failure() as written:
            pdf = self._produce_pdf(prepared, identifier)
            written.append(self.blobs.put(pdf))
            with self.repository.transaction():
                version = self.repository.add_version(
                    license_id,
                    self._version_create(prepared, pdf, written[-1]),
                    expected_version=expected_version,
                )
                self._record(
                    prepared, version, operation, operator, reason, legal_basis
                )
        log.info(
            "%s license %s version %s (%s)",
            operation,
            license_id,
            version.version,
            version.elicense_id,
        )
        return IssuedLicense.from_row(version)

    # --- batch ----------------------------------------------------------

    def issue_batch(
        self,
        lines: Iterable[RecordLine],
        *,
        operator: str,
        out_dir: str | Path | None = None,
        new_on_purpose: bool = False,
    ) -> BatchSummary:
        """Issue every record, continuing after each rejected one.

        With ``out_dir`` each signed PDF is also written there as
        ``<elicense_id>.pdf``. StorageError stops the batch because the
        register or the blob store itself failed.
        """
        started = time.monotonic()
        summary = BatchSummary()
        target = Path(out_dir) if out_dir is not None else None
        if target is not None:
            target.mkdir(parents=True, exist_ok=True)
        for line in lines:
            outcome = self._issue_line(line, operator, new_on_purpose)
            if isinstance(outcome, Rejection):
                summary.rejected.append(outcome)
                continue
            summary.issued.append(outcome)
            if target is not None:
                self._write_pdf(target, outcome)
        summary.elapsed_seconds = time.monotonic() - started
        log.info(
            "batch done: %d issued, %d rejected in %.1f s",
            len(summary.issued),
            len(summary.rejected),
            summary.elapsed_seconds,
        )
        return summary

    def _issue_line(
        self, line: RecordLine, operator: str, new_on_purpose: bool
    ) -> IssuedLicense | Rejection:
        if line.error is not None or line.raw is None:
            return _rejection(line.line_no, line.error or InputError("空记录"))
        try:
            return self.issue(
                line.raw, operator=operator, new_on_purpose=new_on_purpose
            )
        except StorageError:
            raise
        except ElicenseError as error:
            log.info("line %d rejected: %s", line.line_no, type(error).__name__)
            return _rejection(line.line_no, error)

    def _write_pdf(self, target: Path, issued: IssuedLicense) -> None:
        data = self.blobs.get(issued.pdf_sha256)
        path = target / f"{issued.elicense_id}.pdf"
        descriptor, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=target)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temp_name, path)

    # --- steps ----------------------------------------------------------

    def _prepare(self, raw: Mapping[str, object]) -> _Prepared:
        template = self.catalogue.get(raw.get("license_type"))  # type: ignore[arg-type]
        record = template.validate(raw)
        authority = self.authorities.get(str(record["authority_code"]))
        if record.get("authority_name") != authority.name:
            raise InputError(
                f"颁发机构名称与登记表不符：代码 {authority.code} 登记的名称是 {authority.name}",
                field="authority_name",
                value=record.get("authority_name"),
                fix="请核对颁发机构代码和名称",
            )
        issued_on = _as_date(record["issued_on"])
        valid_to = (
            record.get(template.valid_to_field) if template.valid_to_field else None
        )
        valid_from = record.get(template.valid_from_field) or issued_on
        return _Prepared(
            template=template,
            record=record,
            authority=authority,
            holder_code=str(record[template.holder_code_field]),
            holder_name=str(record[template.holder_name_field]),
            issued_on=issued_on,
            valid_from=_as_date(valid_from),
            valid_to=_as_date(valid_to) if valid_to is not None else None,
        )

    def _reject_duplicate(self, prepared: _Prepared) -> None:
        existing = self.repository.current_license_of_holder(
            prepared.holder_code, prepared.template.license_type
        )
        if existing is None:
            return
        current = self.repository.get_version(existing.id, existing.current_version)
        raise ConflictError(
            f"持证主体 {prepared.holder_code} 已有有效的{prepared.template.title}："
            f"证照 {existing.id}，电子证照标识 {current.elicense_id}",
            fix="如需变更请对该证照生成新版本；确需另发一张时请注明有意新发",
        )

    def _produce_pdf(
        self, prepared: _Prepared, identifier: ElicenseIdentifier
    ) -> bytes:
        elicense_id = str(identifier)
        claims = TokenClaims(
            elicense_id=elicense_id,
            holder_code=prepared.holder_code,
            issued_on=prepared.issued_on,
            valid_to=prepared.valid_to,
            version=identifier.version,
        )
        face = FaceInfo(
            elicense_id=elicense_id,
            version=identifier.version,
            qr_text=self.make_qr_text(claims),
            authority=prepared.authority,
            issued_on=prepared.issued_on,
        )
        rendered = self.render(prepared.template, prepared.record, face)
        signer = self.signer_for(prepared.authority.code)
        return signer.sign(rendered.pdf, seal_box=rendered.seal_box)

    def _insert_license(
        self, prepared: _Prepared, serial: str, pdf: bytes, sha256: str
    ) -> LicenseVersion:
        template = prepared.template
        license = LicenseCreate(
            license_type=template.license_type,
            type_code=template.catalogue_code,
            issuer_code=prepared.authority.code,
            holder_code=prepared.holder_code,
            holder_code_type=template.holder_code_type,
            holder_name=prepared.holder_name,
        )
        _, version = self.repository.add_license(
            license, self._version_create(prepared, pdf, sha256), serial=serial
        )
        return version

    @staticmethod
    def _version_create(
        prepared: _Prepared, pdf: bytes, sha256: str
    ) -> LicenseVersionCreate:
        return LicenseVersionCreate(
            record=_jsonable(prepared.record),
            pdf_sha256=sha256,
            pdf_size=len(pdf),
            valid_from=prepared.valid_from,
            valid_to=prepared.valid_to,
            issued_on=prepared.issued_on,
        )

    def _record(
        self,
        prepared: _Prepared,
        version: LicenseVersion,
        operation: Operation,
        operator: str,
        reason: str | None,
        legal_basis: str | None = None,
    ) -> None:
        self.repository.record_event(
            LicenseEventCreate(
                operation=operation,
                license_id=version.license_id,
                version=version.version,
                operator=operator,
                authority_code=prepared.authority.code,
                reason=reason,
                legal_basis=legal_basis,
                detail={
                    "elicense_id": version.elicense_id,
                    "pdf_sha256": version.pdf_sha256,
                },
            )
        )

    @contextmanager
    def _blobs_discarded_on_failure(self) -> Iterator[list[str]]:
        """Yield a list for the digests written, and remove them on failure.

        Enter it before the transaction, so the removal runs after rollback.
        A blob that a committed version refers to is kept.
        """
        written: list[str] = []
        try:
            yield written
        except BaseException:
            for sha256 in written:
                self._discard_blob(sha256)
            raise

    def _discard_blob(self, sha256: str) -> None:
        try:
            if self.repository.find_version_by_pdf_sha256(sha256) is None:
                self.blobs.delete(sha256)
        except Exception:  # the error that made the issue fail matters more
            log.warning("could not remove orphan blob %s", sha256, exc_info=True)


def _check_same_license(license: License, prepared: _Prepared) -> None:
    checks = (
        ("license_type", license.license_type, prepared.template.license_type),
        ("authority_code", license.issuer_code, prepared.authority.code),
        (
            prepared.template.holder_code_field,
            license.holder_code,
            prepared.holder_code,
        ),
    )
    for name, expected, found in checks:
        if expected != found:
            raise InputError(
                f"新版本的 {name} 应与证照 {license.id} 一致：应为 {expected}",
                field=name,
                value=found,
                fix="持证主体、颁发机构或证照类型改变时请颁发新证照",
            )


def _rejection(line_no: int, error: ElicenseError) -> Rejection:
    field_name = getattr(error, "field", None)
    value = error.as_dict().get("value") if field_name is not None else None
    return Rejection(line_no=line_no, field=field_name, value=value, message=str(error))


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _jsonable(record: Mapping[str, object]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, dt.date) else value
        for key, value in record.items()
    }
