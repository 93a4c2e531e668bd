"""RFC 3161 timestamps: the built-in TSA, an HTTP client and a responder."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import ClassVar

from asn1crypto import cms, core, tsp, x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign import general
from pyhanko.sign.timestamps import DummyTimeStamper, TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from common.errors import ElicenseError
from esign.cms_encoding import frozen

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

MAX_REQUEST_BYTES = 16 * 1024
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
DEFAULT_TIMEOUT_SECONDS = 10.0


class TimestampUnavailableError(ElicenseError):
    """The timestamp authority cannot be reached or returned no timestamp."""


class BuiltinTimeStamper(DummyTimeStamper):
    """The development TSA, run in-process with the RSA key parsed once.

    pyhanko's ``DummyTimeStamper`` parses its key for every request. This
    subclass keeps the parsed key and takes its time from ``clock``, which
    is UTC now by default. Its responses and signed attributes are encoded
    once (see ``esign.cms_encoding``), and the signing-certificate attribute,
    which only depends on the TSA certificate, is built once.
    """

    def __init__(
        self,
        tsa_cert: x509.Certificate,
        tsa_key: rsa.RSAPrivateKey,
        chain: Iterable[x509.Certificate] = (),
        *,
        clock: Clock | None = None,
    ) -> None:
        # The parent keeps its key as PrivateKeyInfo and parses it per request;
        # _sign_tst_info below uses the parsed key instead.
        super().__init__(
            tsa_cert,
            None,  # type: ignore[arg-type]
            certs_to_embed=SimpleCertificateStore.from_certs(list(chain)),
        )
        self._rsa_key = tsa_key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._signing_certificate = frozen(
            general.simple_cms_attribute(
                "signing_certificate", general.as_signing_certificate(tsa_cert)
            )
        )

    def __repr__(self) -> str:
        return f"BuiltinTimeStamper(tsa={self.tsa_cert.subject.human_friendly!r})"

    @property
    def fixed_dt(self) -> datetime:
        """Time of the next timestamp; the parent class reads it per request."""
        return self._clock()

    @fixed_dt.setter
    def fixed_dt(self, value: datetime | None) -> None:
        """Ignore the value the parent constructor assigns."""

    def request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return frozen(super().request_tsa_response(req))

    def _sign_tst_info(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime
    ) -> tuple[bytes, cms.CMSAttributes]:
        signed_attrs = self._signed_attributes(tst_info_data, md_algorithm, dt)
        hash_algorithm = getattr(hashes, md_algorithm.upper())()
        signature = self._rsa_key.sign(
            signed_attrs.dump(), padding.PKCS1v15(), hash_algorithm
        )
        return signature, signed_attrs

    def _signed_attributes(
        self, tst_info_data: bytes, md_algorithm: str, dt: datetime
    ) -> cms.CMSAttributes:
        digest = hashes.Hash(getattr(hashes, md_algorithm.upper())())
        digest.update(tst_info_data)
        signing_time = frozen(cms.Time({"utc_time": core.UTCTime(dt)}))
        attributes = cms.CMSAttributes(
            [
                general.simple_cms_attribute("content_type", "tst_info"),
                general.simple_cms_attribute("signing_time", signing_time),
                self._signing_certificate,
                general.simple_cms_attribute("message_digest", digest.finalize()),
            ]
        )
        return frozen(attributes)


class HttpTimeStamper(TimeStamper):
    """Client of an external RFC 3161 TSA over HTTP.

    Raises TimestampUnavailableError when the TSA cannot be reached within
    ``timeout_seconds`` or replies with anything but a timestamp response.
    """

    def __init__(self, url: str, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__()
        self.url = url
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"HttpTimeStamper(url={self.url!r})"

    async def async_request_tsa_response(
        self, req: tsp.TimeStampReq
    ) -> tsp.TimeStampResp:
        body = await asyncio.to_thread(self._post, req.dump())
        try:
            status = _StatusOnlyResponse.load(body)["status"]
            granted = status["status"].native in ("granted", "granted_with_mods")
            if granted:
                response = tsp.TimeStampResp.load(body)
                _ = response.native  # parse fully so that garbage fails here
        except ValueError as error:
            raise TimestampUnavailableError(
                f"时间戳服务 {self.url} 返回的不是有效的 RFC 3161 响应：{error}",
                fix="请检查时间戳服务地址是否正确",
            ) from error
        if not granted:
            logger.warning(
                "timestamp request to %s rejected: %s", self.url, status.native
            )
            raise TimestampUnavailableError(
                f"时间戳服务 {self.url} 拒绝了请求：{status['status'].native}"
                f" {status['fail_info'].native or ''}",
                fix="请查看时间戳服务的日志，确认其支持 SHA-256 请求",
            )
        return response

    def _post(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.url,
            data=body,
            headers={"Content-Type": "application/timestamp-query"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as reply:
                content_type = reply.headers.get("Content-Type", "")
                data = reply.read(1024 * 1024)
        except (urllib.error.URLError, OSError) as error:
            logger.warning("timestamp request to %s failed: %s", self.url, error)
            raise TimestampUnavailableError(
                f"无法连接时间戳服务 {self.url}：{getattr(error, 'reason', error)}",
                fix=(
                    f"请确认时间戳服务已启动且 {self.timeout_seconds:g} 秒内可访问，"
                    "或改用内置时间戳服务"
                ),
            ) from error
        if not content_type.startswith("application/timestamp-reply"):
            raise TimestampUnavailableError(
                f"时间戳服务 {self.url} 返回了 {content_type or '无类型'} 内容",
                fix="应为 application/timestamp-reply，请检查地址是否指向 RFC 3161 服务",
            )
        return data


def answer_timestamp_request(timestamper: BuiltinTimeStamper, body: bytes) -> bytes:
    """Build the DER RFC 3161 response to a DER request body.

    A request that is oversized, malformed or uses an unsupported hash gets a
    ``rejection`` response (badDataFormat or badAlg), so the HTTP layer can
    always send the returned bytes with status 200.
    """
    failure = _check_request(body)
    if failure is not None:
        logger.info("rejected timestamp request: %s", failure)
        return _rejection(failure).dump()
    request = tsp.TimeStampReq.load(body)
    response = timestamper.request_tsa_response(request)
    logger.info("issued timestamp for a %s request", _algorithm_of(request))
    return response.dump()


def _algorithm_of(request: tsp.TimeStampReq) -> str:
    return request["message_imprint"]["hash_algorithm"]["algorithm"].native


def _check_request(body: bytes) -> str | None:
    if len(body) > MAX_REQUEST_BYTES:
        return "bad_data_format"
    try:
        request = tsp.TimeStampReq.load(body)
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        digest = imprint["hashed_message"].native
        _ = request.native  # parse every field so that garbage fails here
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError):
        # asn1crypto raises any of these on damaged DER, depending on the field.
        return "bad_data_format"
    if algorithm not in DIGEST_SIZES:
        return "bad_alg"
    if len(digest) != DIGEST_SIZES[algorithm]:
        return "bad_data_format"
    return None


class _StatusOnlyResponse(core.Sequence):
    """TimeStampResp without its token, which RFC 3161 makes optional.

    asn1crypto's TimeStampResp requires the token, so rejections are built
    and read with this class.
    """

    _fields: ClassVar = [("status", tsp.PKIStatusInfo)]


def _rejection(fail_info: str) -> _StatusOnlyResponse:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "fail_info": tsp.PKIFailureInfo({fail_info})}
    )
    return _StatusOnlyResponse({"status": status})
