"""The issuing stack: keys, signers, timestamper and the issuance service.

Everything here is built once per process and reused for every license:
parsed seal keys, one signer per seal, the timestamper, the chain's CRLs,
the token signer and the seal artwork of each authority.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from pyhanko.sign.timestamps import TimeStamper

from common.authority import AuthorityRegistry
from common.codes import mask_citizen_id, validate_citizen_id
from common.errors import InputError
from elicense.secrets import load_passphrase
from elicense.settings import Settings
from esign.keystore import Pkcs11Config, Pkcs11KeyStore
from esign.pki import DevPki, SealCredentials, ValidationData
from esign.qrtoken import TokenClaims, sign_token
from esign.revocation import answer_ocsp_request
from esign.seal_lifecycle import SealManager, TokenOpener
from esign.seals import SealRecord
from esign.signing import LicenseSigner, SealBox, SignatureLevel
from esign.timestamps import HttpTimeStamper, answer_timestamp_request
from license_store.issuance import FaceInfo, IssuanceService, IssuedLicense, Rejection
from license_store.records import RecordLine, read_records
from license_store.repository import hash_request
from templates import FaceContext, render_license

if TYPE_CHECKING:
    from elicense.context import ServiceContext

logger = logging.getLogger(__name__)

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
        passphrase = load_passphrase(settings)
        self.pki = DevPki(settings.data_dir, passphrase, settings.public_url)
        self.seals = seal_manager(settings, self.pki, passphrase)
        self.authorities = AuthorityRegistry.load()
        # The built-in TSA serves /pki/tsa. Signing uses the external TSA
        # when one is configured.
        self._timestamper = self.pki.load_timestamper()
        self._signing_timestamper = _signing_timestamper(settings, self._timestamper)
        self._expiry_warning_days = settings.seal_expiry_warning_days
        self._open_token = token_opener(settings)
        self._token: Pkcs11KeyStore | None = None
        self._token_signer = self.pki.load_token_signer()
        self._signers: dict[tuple[str, str, str], LicenseSigner] = {}
        self._warned_expiry: set[str] = set()
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
        # The service requests a signer right after rendering, in the same
        # thread, so the level of the template and the seal checked for
        # rendering are kept per thread.
        self._pending = threading.local()

    # --- collaborators handed to the issuance service -----------------------

    def qr_text(self, claims: TokenClaims) -> str:
        """Build the QR text: an upper-case URL so it encodes alphanumerically."""
        token = sign_token(_public_claims(claims), self._token_signer)
        return f"{self.public_url.upper()}{QR_PATH}{token}"

    def verify_url(self, qr_text: str) -> str:
        return self.public_url + qr_text[len(self.public_url) :]

    def _render(
        self, template: Any, record: Mapping[str, object], face: FaceInfo
    ) -> RenderedForSigning:
        authority = face.authority
        # Checked before rendering, so that a suspended, revoked or expired
        # seal rejects the record before any work is done.
        seal = self.seals.usable_seal(authority.code)
        self._pending.level = SignatureLevel(template.signature_level)
        self._pending.seal = seal
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
                seal=seal.artwork,
            ),
        )
        page, x0, y0, x1, y1 = rendered.seal_box
        return RenderedForSigning(rendered.pdf, SealBox(page, (x0, y0, x1, y1)))

    def _signer_for_authority(self, authority_code: str) -> LicenseSigner:
        level = getattr(self._pending, "level", SignatureLevel.B_LT)
        seal: SealRecord | None = getattr(self._pending, "seal", None)
        if seal is None or seal.authority.code != authority_code:
            seal = self.seals.usable_seal(authority_code)
        assert seal.certificate is not None  # an active seal has one
        self._warn_if_expiring(seal)
        key = (seal.code, seal.certificate.serial, level.value)
        with self._lock:
            if key not in self._signers:
                credentials = self.seals.credentials(seal, self._token_for(seal))
                authority = self.authorities.get(authority_code)
                self._signers[key] = LicenseSigner(
                    replace(credentials, authority=authority),
                    level=level,
                    timestamper=self._signing_timestamper,
                    validation_data=self._validation_data_for(seal, credentials),
                )
            return self._signers[key]

    def _validation_data_for(
        self, seal: SealRecord, credentials: SealCredentials
    ) -> Callable[[], ValidationData]:
        """Return the source of revocation data checked and embedded at signing.

        Both are callables, so CRLs re-issued after a revocation or on
        schedule are used for the next document.
        """
        assert seal.certificate is not None
        if seal.certificate.dev_ca:
            return self.pki.validation_data
        trust = self.context.trust

        def outside() -> ValidationData:
            own = self.pki.validation_data()
            return ValidationData(
                trust_roots=(*own.trust_roots, *trust.anchor_certificates()),
                other_certs=(
                    *own.other_certs,
                    *credentials.chain,
                    *trust.intermediate_certificates(),
                ),
                crls=(*own.crls, *trust.current_crls()),
                # NOTE: the outside CA's CRL or OCSP responder must be reachable
                # from this host, or signing fails (revocation is hard-fail).
                allow_fetching=True,
            )

        return outside

    def _token_for(self, seal: SealRecord) -> Pkcs11KeyStore | None:
        if seal.key is None or seal.key.store != "pkcs11":
            return None
        if self._token is None:
            if self._open_token is None:
                return None  # credentials() explains the missing settings
            self._token = self._open_token(False)
        return self._token

    def _warn_if_expiring(self, seal: SealRecord) -> None:
        assert seal.certificate is not None
        left = seal.certificate.not_after - datetime.now(UTC)
        if left > timedelta(days=self._expiry_warning_days):
            return
        if seal.code not in self._warned_expiry:
            self._warned_expiry.add(seal.code)
            logger.warning(
                "seal %s certificate ends %s (in %d days); renew it",
                seal.code,
                seal.certificate.not_after.isoformat(),
                left.days,
            )

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


def token_opener(settings: Settings) -> TokenOpener | None:
    """Return an opener of the configured PKCS#11 token, or None if unset."""
    if settings.pkcs11_module is None or settings.pkcs11_token_label is None:
        return None
    config = Pkcs11Config(
        settings.pkcs11_module,
        settings.pkcs11_token_label,
        pin_file=settings.pkcs11_pin_file,
    )
    return lambda read_write: Pkcs11KeyStore(config, read_write=read_write)


def seal_manager(settings: Settings, pki: DevPki, passphrase: bytes) -> SealManager:
    """Build the seal manager of a data directory with the configured token."""
    return SealManager(pki, passphrase, open_token=token_opener(settings))


def _signing_timestamper(settings: Settings, builtin: TimeStamper) -> TimeStamper:
    if settings.tsa_url is None:
        return builtin
    timeout = settings.tsa_timeout_seconds
    return HttpTimeStamper(settings.tsa_url, timeout_seconds=timeout)


def _public_claims(claims: TokenClaims) -> TokenClaims:
    """Mask a citizen ID number before it goes into a QR code.

    QR URLs end up in phone histories and server logs, and base32 is no
    protection, so person-held licenses carry the masked number.
    """
    try:
        validate_citizen_id(claims.holder_code)
    except InputError:
        return claims
    return replace(claims, holder_code=mask_citizen_id(claims.holder_code))
