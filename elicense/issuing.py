"""The issuing stack: keys, signers, timestamper and the issuance service.

Everything here is built once per process and reused for every license:
parsed seal keys, one signer per seal, the timestamper, the chain's CRLs,
the token signer and the seal artwork of each authority.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from common.authority import Authority, AuthorityRegistry
from elicense.secrets import load_passphrase
from esign.pki import DevPki
from esign.qrtoken import TokenClaims, sign_token
from esign.revocation import answer_ocsp_request
from esign.seal_artwork import VectorSeal
from esign.signing import LicenseSigner, SealBox, SignatureLevel
from esign.timestamps import answer_timestamp_request
from license_store.issuance import FaceInfo, IssuanceService, IssuedLicense, Rejection
from license_store.records import RecordLine, read_records
from license_store.repository import hash_request
from templates import FaceContext, render_license
from templates.mongolian import authority_name_mn

if TYPE_CHECKING:
    from elicense.context import ServiceContext

logger = logging.getLogger(__name__)

SEAL_PURPOSE = "证照专用章"
QR_PATH = "/V/"


@dataclass(frozen=True)
class RenderedForSigning:
    pdf: bytes
    seal_box: SealBox | None


@dataclass
class FileSummary:
    """Outcome of issuing one input file."""

    issued_count: int = 0
    repeated_count: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    first_elicense_id: str | None = None
    first_verify_url: str | None = None


class IssuingStack:
    """Issue licenses for the authorities whose seals this data dir holds."""

    def __init__(self, context: ServiceContext) -> None:
        settings = context.settings
        self.context = context
        self.public_url = settings.public_url
        self.pki = DevPki(settings.data_dir, load_passphrase(settings), settings.public_url)
        self.authorities = AuthorityRegistry.load()
        self._timestamper = self.pki.load_timestamper()
        self._token_signer = self.pki.load_token_signer()
        self._signers: dict[tuple[str, str], LicenseSigner] = {}
        self._seals: dict[str, VectorSeal] = {}
        self._lock = threading.Lock()
        self.service = IssuanceService(
            context.repository,
            context.blobs,
            catalogue=context.catalogue,
            authorities=self.authorities,
            signer_for=self._signer_for_authority,
            make_qr_text=self.qr_text,
            render=self._render,
        )
        # The service asks for a signer right after rendering, in the same
        # thread, so the level of the template being issued is kept per thread.
        self._pending = threading.local()

    # --- collaborators handed to the issuance service -----------------------

    def qr_text(self, claims: TokenClaims) -> str:
        """Build the QR text: an upper-case URL so it encodes alphanumerically."""
        token = sign_token(claims, self._token_signer)
        return f"{self.public_url.upper()}{QR_PATH}{token}"

    def verify_url(self, qr_text: str) -> str:
        return self.public_url + qr_text[len(self.public_url) :]

    def _render(
        self, template: Any, record: Mapping[str, object], face: FaceInfo
    ) -> RenderedForSigning:
        self._pending.level = SignatureLevel(template.signature_level)
        authority = face.authority
        rendered = render_license(
            template,
            record,
            FaceContext(
                elicense_id=face.elicense_id,
                version=face.version,
                qr_text=face.qr_text,
                authority_name=authority.name,
                authority_code=authority.code,
                authority_region=authority.region_code,
                issued_on=record["issued_on"],
                seal=self._seal_artwork(authority),
            ),
        )
        page, x0, y0, x1, y1 = rendered.seal_box
        return RenderedForSigning(rendered.pdf, SealBox(page, (x0, y0, x1, y1)))

    def _signer_for_authority(self, authority_code: str) -> LicenseSigner:
        level = getattr(self._pending, "level", SignatureLevel.B_LT)
        key = (authority_code, level.value)
        with self._lock:
            if key not in self._signers:
                self._signers[key] = LicenseSigner(
                    self.pki.load_seal(self.authorities.get(authority_code)),
                    level=level,
                    timestamper=self._timestamper,
                    # A callable: CRLs are re-read per document when they change.
                    validation_data=self.pki.validation_data,
                )
            return self._signers[key]

    def _seal_artwork(self, authority: Authority) -> VectorSeal:
        if authority.code not in self._seals:
            mongolian = authority_name_mn(authority.name) if authority.is_inner_mongolia else None
            self._seals[authority.code] = VectorSeal(
                authority.name, mongolian, SEAL_PURPOSE, authority.code
            )
        return self._seals[authority.code]

    # --- operations ---------------------------------------------------------

    def issue_record(
        self,
        record: dict[str, Any],
        *,
        operator: str,
        idempotency_key: str | None,
        new_on_purpose: bool,
    ) -> dict[str, Any]:
        issued = self.service.issue(
            record,
            operator=operator,
            idempotency_key=idempotency_key,
            new_on_purpose=new_on_purpose,
        )
        return self.describe(issued)

    def issue_file(self, path: Path, *, out_dir: Path | None, operator: str) -> FileSummary:
        """Issue every record of a file; a repeated run issues nothing new."""
        return self.issue_lines(read_records(path), out_dir=out_dir, operator=operator)

    def issue_lines(
        self, lines: Iterable[RecordLine], *, out_dir: Path | None, operator: str
    ) -> FileSummary:
        """Issue records read from a file; a rejected record never stops the run.

        Each record is sent with an idempotency key derived from its content,
        so running the same file twice returns the first results.
        """
        import time

        started = time.monotonic()
        summary = FileSummary()
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        for line in lines:
            outcome = self._issue_line(line, operator)
            if isinstance(outcome, Rejection):
                summary.rejected.append(outcome)
                continue
            if outcome.replayed:
                summary.repeated_count += 1
            else:
                summary.issued_count += 1
            if summary.first_elicense_id is None:
                summary.first_elicense_id = outcome.elicense_id
                summary.first_verify_url = self.verify_url_of(outcome.elicense_id)
            if out_dir is not None:
                data = self.context.blobs.get(outcome.pdf_sha256)
                (out_dir / f"{outcome.elicense_id}.pdf").write_bytes(data)
        summary.elapsed_seconds = time.monotonic() - started
        return summary

    def _issue_line(self, line, operator: str) -> IssuedLicense | Rejection:
        from common.errors import ElicenseError, InputError, StorageError

        if line.error is not None or line.raw is None:
            return _rejection(line.line_no, line.error or InputError("空记录"))
        try:
            return self.service.issue(
                line.raw,
                operator=operator,
                idempotency_key="file:" + hash_request(line.raw),
            )
        except StorageError:
            raise
        except ElicenseError as error:
            return _rejection(line.line_no, error)

    def describe(self, issued: IssuedLicense) -> dict[str, Any]:
        return {
            "elicense_id": issued.elicense_id,
            "version": issued.version,
            "license_id": issued.license_id,
            "pdf_sha256": issued.pdf_sha256,
            "replayed": issued.replayed,
            "verify_url": self.verify_url_of(issued.elicense_id),
            "pdf_url": f"{self.public_url}/api/v1/licenses/{issued.elicense_id}/pdf",
        }

    def verify_url_of(self, elicense_id: str) -> str:
        """Rebuild the QR URL of a version from the register (the token is not stored)."""
        repository = self.context.repository
        version = repository.get_version_by_elicense_id(elicense_id)
        license = repository.get_license(version.license_id)
        claims = TokenClaims(
            elicense_id=version.elicense_id,
            holder_code=license.holder_code,
            issued_on=version.issued_on,
            valid_to=version.valid_to,
            version=version.version,
        )
        return self.verify_url(self.qr_text(claims))

    def first_verify_url(self) -> str | None:
        for elicense_id, _sha, _size in self.context.repository.iter_version_blobs(1):
            return self.verify_url_of(elicense_id)
        return None

    # --- PKI protocol endpoints -----------------------------------------------

    def answer_ocsp(self, body: bytes) -> bytes:
        return answer_ocsp_request(self.pki, body)

    def answer_timestamp(self, body: bytes) -> bytes:
        return answer_timestamp_request(self._timestamper, body)


def _rejection(line_no: int, error) -> Rejection:
    field_name = getattr(error, "field", None)
    value = error.as_dict().get("value") if field_name is not None else None
    return Rejection(line_no=line_no, field=field_name, value=value, message=str(error))
