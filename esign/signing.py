"""PAdES certification signatures on rendered license PDFs.

A :class:`LicenseSigner` is built once per seal and reused for every
document: it keeps the parsed key, the parsed validation data and a fixed
``/Contents`` size, so that signing a document costs one ECDSA signature,
one timestamp (B-T and up) and the PDF writing.

The seal image is part of the page content drawn by the renderer. Without
a ``seal_box`` the signature field is invisible. With one, the field's
widget covers the printed seal with an empty appearance, so that viewers
open the signature details when the seal is clicked and still show only
the printed seal.
"""

from __future__ import annotations

import asyncio
import enum
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from asn1crypto import algos
from asn1crypto.keys import PublicKeyInfo
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_signer import (
    DSSContentSettings,
    SigDSSPlacementPreference,
    TimestampDSSContentSettings,
)
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
    SignatureValidator,
)

from common.errors import ElicenseError, InputError, TrustError
from esign.pki import SealCredentials, ValidationData
from esign.timestamps import Clock, TimestampUnavailableError

logger = logging.getLogger(__name__)

FIELD_NAME = "LicenseSeal"
# DER sizes are doubled because /Contents contains the CMS object as hex.
_CMS_OVERHEAD_BYTES = 2048
# Margin over the first token's size: later tokens differ in serial and nonce.
_TIMESTAMP_TOKEN_MARGIN_BYTES = 256


class SignatureLevel(enum.StrEnum):
    """PAdES baseline level (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @property
    def needs_timestamp(self) -> bool:
        return self is not SignatureLevel.B_B

    @property
    def embeds_validation_data(self) -> bool:
        return self in (SignatureLevel.B_LT, SignatureLevel.B_LTA)


@dataclass(frozen=True)
class SealBox:
    """Position of the printed seal: page index and rectangle in PDF points."""

    page_index: int
    rect: tuple[float, float, float, float]


class PdfSigningError(ElicenseError):
    """A PDF could not be signed."""


class LicenseSigner:
    """Signer of license PDFs with one seal at one PAdES level.

    ``timestamper`` is required from B-T up and ``validation_data`` from
    B-LT up. With validation data given, the seal certificate is also checked
    against the CRLs before each signature. Long-running processes pass a
    callable such as ``DevPki.validation_data``, which is called per
    document, so that CRLs re-issued after a revocation or on schedule are
    used. ``clock`` sets the signing time, UTC now by default.
    """

    def __init__(
        self,
        seal: SealCredentials,
        *,
        level: SignatureLevel = SignatureLevel.B_LT,
        timestamper: TimeStamper | None = None,
        validation_data: ValidationData | Callable[[], ValidationData] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if level.needs_timestamp and timestamper is None:
            raise ValueError(f"signature level {level} needs a timestamper")
        if level.embeds_validation_data and validation_data is None:
            raise ValueError(f"signature level {level} needs validation data")
        self.seal = seal
        self.level = level
        self._timestamper = timestamper if level.needs_timestamp else None
        self._validation_data = validation_data
        self._clock = clock or (lambda: datetime.now(UTC))
        self._metadata = signers.PdfSignatureMetadata(
            field_name=FIELD_NAME,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            embed_validation_info=level.embeds_validation_data,
            use_pades_lta=level is SignatureLevel.B_LTA,
            dss_settings=(
                _DSS_IN_SIGNED_REVISION
                if level.embeds_validation_data
                else DSSContentSettings()
            ),
            reason="电子证照签章",
            location=seal.authority.name,
        )
        self._bytes_reserved: int | None = None

    def __repr__(self) -> str:
        return (
            f"LicenseSigner(authority={self.seal.authority.code}, level={self.level})"
        )

    def sign(self, pdf: bytes, *, seal_box: SealBox | None = None) -> bytes:
        """Sign ``pdf`` and return the signed document.

        Raises InputError for an unreadable PDF, TrustError when the seal
        certificate fails validation (for example, it is revoked),
        TimestampUnavailableError when the TSA fails, PdfSigningError for
        other signing failures. Nothing is returned on failure.
        """
        return asyncio.run(self.async_sign(pdf, seal_box=seal_box))

    async def async_sign(self, pdf: bytes, *, seal_box: SealBox | None = None) -> bytes:
        """Sign ``pdf`` inside a running event loop; see :meth:`sign`."""
        writer = _open_pdf(pdf)
        if self._bytes_reserved is None:
            self._bytes_reserved = await self._contents_size()
        pdf_signer = _ClockedPdfSigner(
            replace(self._metadata, validation_context=self._validation_context()),
            self.seal.signer,
            timestamper=self._timestamper,
            stamp_style=_EMPTY_APPEARANCE,
            new_field_spec=_field_spec(seal_box),
            clock=self._clock,
        )
        output = io.BytesIO()
        try:
            await pdf_signer.async_sign_pdf(
                writer, bytes_reserved=self._bytes_reserved, output=output
            )
        except (TimestampUnavailableError, InputError):
            raise
        except TimestampRequestError as error:
            raise TimestampUnavailableError(
                f"时间戳服务未返回有效的时间戳：{error}",
                fix="请检查时间戳服务的状态和日志，稍后重试",
            ) from error
        except SigningError as error:
            raise self._translate(error) from error
        except PdfError as error:
            raise InputError(
                f"PDF 无法签章：{error}", field="pdf", fix="请重新生成证照 PDF"
            ) from error
        logger.info(
            "signed PDF authority=%s level=%s bytes=%d",
            self.seal.authority.code,
            self.level,
            output.tell(),
        )
        return output.getvalue()

    def _validation_context(self) -> ValidationContext | None:
        source = self._validation_data
        if source is None:
            return None
        data = source() if callable(source) else source
        # The requests backend, because pyhanko's default aiohttp backend
        # leaves its client session open after each document.
        fetchers = RequestsFetcherBackend() if data.allow_fetching else None
        return ValidationContext(
            trust_roots=list(data.trust_roots),
            other_certs=list(data.other_certs),
            crls=list(data.crls),
            allow_fetching=data.allow_fetching,
            fetcher_backend=fetchers,
            revocation_mode="hard-fail",
            moment=self._clock(),
            signature_validator=_SIGNATURE_VALIDATOR,
        )

    async def _contents_size(self) -> int:
        """Size ``/Contents`` once per signer instead of by a trial signature.

        The CMS object contains the seal certificate, its chain, the signature
        and, from B-T up, a timestamp token. The token's size is taken from
        one real token, which pyhanko requests and caches anyway to find the
        TSA certificates.
        """
        der_bytes = len(self.seal.certificate.dump())
        der_bytes += sum(len(certificate.dump()) for certificate in self.seal.chain)
        der_bytes += _CMS_OVERHEAD_BYTES
        if self._timestamper is not None:
            try:
                token = await self._timestamper.async_dummy_response("sha256")
            except TimestampRequestError as error:
                raise TimestampUnavailableError(
                    f"时间戳服务未返回有效的时间戳：{error}",
                    fix="请检查时间戳服务的状态和日志，稍后重试",
                ) from error
            der_bytes += len(token.dump()) + _TIMESTAMP_TOKEN_MARGIN_BYTES
        return 2 * der_bytes

    def _translate(self, error: SigningError) -> ElicenseError:
        cause = error.__cause__
        if isinstance(cause, PathBuildingError | PathValidationError):
            logger.warning(
                "seal certificate failed validation authority=%s: %s",
                self.seal.authority.code,
                cause,
            )
            return TrustError(
                f"印章证书（{self.seal.authority.name}）验证失败：{cause}",
                fix="请检查印章证书是否已吊销或过期，CRL 是否为最新",
            )
        return PdfSigningError(f"PDF 签章失败：{error}", fix="请查看服务日志")


# The DSS goes into the revision the signature covers, so a B-LT document is
# one signed revision that validators without incremental-update analysis
# (such as pdfsig) report as totally signed. VRI entries cannot be written
# before signing, and pyhanko 0.38's documentation calls them effectively
# deprecated in current PAdES.
_DSS_IN_SIGNED_REVISION = DSSContentSettings(
    include_vri=False,
    placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE,
    next_ts_settings=TimestampDSSContentSettings(
        include_vri=False, update_before_ts=True
    ),
)


class RememberingSignatureValidator(SignatureValidator):
    """Signature check that remembers the inputs it found valid.

    Every document validates the seal and TSA certificates and the CRLs
    again, with the same signatures over the same bytes. A success is
    remembered for the identical signature, data, key, algorithm and
    context, so a repeated check has the outcome the check would give. An
    invalid signature is checked again, and raises, every time.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._max_entries = max_entries
        self._valid: dict[tuple[bytes, bytes, bytes, bytes, object], None] = {}
        self._lock = threading.Lock()
        self._check = DefaultSignatureValidator()

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        key = (
            signature,
            signed_data,
            public_key_info.dump(),
            signature_algorithm.dump(),
            context,
        )
        if key in self._valid:
            return
        self._check.validate_signature(
            signature, signed_data, public_key_info, signature_algorithm, context
        )
        with self._lock:
            if len(self._valid) >= self._max_entries:
                self._valid.pop(next(iter(self._valid)))
            self._valid[key] = None


_SIGNATURE_VALIDATOR = RememberingSignatureValidator()


class _FetchingDisabledWarningFilter(logging.Filter):
    """Drop pyhanko's warning that embedding runs without fetching.

    The CRLs of every CA are supplied, so nothing needs fetching, and the
    warning would otherwise appear once per signed document.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(
    _FetchingDisabledWarningFilter()
)


class _ClockedPdfSigner(signers.PdfSigner):
    """PdfSigner whose signing time (the /M entry) comes from ``clock``."""

    def __init__(self, *args: object, clock: Clock, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._clock = clock

    def init_signing_session(
        self, pdf_out: object, existing_fields_only: bool = False
    ) -> signers.pdf_signer.PdfSigningSession:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._clock()
        return session


# An empty text stamp without border: a transparent appearance.
_EMPTY_APPEARANCE = TextStampStyle(stamp_text="", border_width=0, background=None)


def _open_pdf(pdf: bytes) -> IncrementalPdfFileWriter:
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signature_count = len(writer.prev.embedded_signatures)
    except (PdfError, ValueError, KeyError, IndexError) as error:
        raise InputError(
            f"无法读取待签章的 PDF：{error}",
            field="pdf",
            value=f"{len(pdf)} 字节",
            fix="请检查证照渲染结果是否为完整的 PDF",
        ) from error
    if signature_count:
        # A certification signature must be the first signature of a PDF.
        raise InputError(
            f"待签章的 PDF 已含 {signature_count} 个签名，不能再加认证签名",
            field="pdf",
            value=f"{len(pdf)} 字节",
            fix="请对未签章的渲染结果签章",
        )
    return writer


def _field_spec(seal_box: SealBox | None) -> fields.SigFieldSpec:
    if seal_box is None:
        return fields.SigFieldSpec(FIELD_NAME)
    return fields.SigFieldSpec(
        FIELD_NAME, on_page=seal_box.page_index, box=seal_box.rect
    )
