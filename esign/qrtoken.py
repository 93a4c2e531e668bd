"""Signed QR tokens: the short proof printed in a license's QR code.

A token is the upper-case RFC 4648 base32 text, without padding, of the CBOR
array ``[format, kid, payload, signature]``:

* ``format``: 1, the version of this layout;
* ``kid``: the first 8 bytes of SHA-256 over the token signer's certificate DER;
* ``payload``: CBOR bytes of ``[elicense_id, holder_code, issued_on,
  valid_to, version]``, where ``elicense_id`` lacks the fixed root
  ``1.2.156.3005.2.`` and dates are days since 1970-01-01 (``valid_to`` may
  be null for licenses without end);
* ``signature``: ECDSA P-256 with SHA-256 as raw ``r || s`` (64 bytes) over
  ``DOMAIN + kid + payload``.

Base32 upper case uses only QR alphanumeric characters, so the whole URL
``HTTP://HOST:PORT/V/<token>`` fits QR alphanumeric mode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import cbor2
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from common.codes import ELICENSE_ROOT
from common.errors import ElicenseError, InputError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
DOMAIN = b"elicense-qr-token/1\x00"
KID_BYTES = 8
SIGNATURE_BYTES = 64
MAX_TOKEN_CHARS = 512
EPOCH = date(1970, 1, 1)
_ID_PREFIX = ELICENSE_ROOT + "."


class TokenError(ElicenseError):
    """A well-formed token whose signer is unknown or whose signature is wrong."""


@dataclass(frozen=True)
class TokenClaims:
    """Claims of a QR token about one license version."""

    elicense_id: str
    holder_code: str
    issued_on: date
    valid_to: date | None
    version: int


@dataclass(frozen=True)
class UnverifiedToken:
    """A decoded token whose signature has not been checked yet."""

    format_version: int
    kid: bytes
    claims: TokenClaims
    signed_bytes: bytes
    signature: bytes


@dataclass(frozen=True, repr=False)
class TokenSigner:
    """The token signer's certificate and private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"TokenSigner(kid={key_id(self.certificate).hex()})"


def key_id(certificate: x509.Certificate | asn1_x509.Certificate) -> bytes:
    """Return the first 8 bytes of SHA-256 over the certificate DER."""
    return hashlib.sha256(_certificate_der(certificate)).digest()[:KID_BYTES]


def sign_token(claims: TokenClaims, signer: TokenSigner) -> str:
    """Encode and sign ``claims``; return the base32 token text."""
    if not isinstance(signer.key.curve, ec.SECP256R1):
        raise InputError(
            f"二维码签名密钥曲线应为 P-256，实为 {signer.key.curve.name}",
            field="signer",
            fix="请使用开发 PKI 的 token-signer 密钥",
        )
    kid = key_id(signer.certificate)
    payload = cbor2.dumps(_claims_to_list(claims))
    # Deterministic ECDSA (RFC 6979): the same claims always give the same
    # token, so the register can rebuild a version's QR URL without storing it.
    der_signature = signer.key.sign(
        DOMAIN + kid + payload, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der_signature)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    token = cbor2.dumps([FORMAT_VERSION, kid, payload, signature])
    return base64.b32encode(token).decode("ascii").rstrip("=")


def read_token(token: str) -> UnverifiedToken:
    """Decode a token without checking its signature.

    Raises InputError, and nothing else, for any text that is not a
    well-formed token, including oversized or hostile input.
    """
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise InputError(
            f"二维码令牌长度应在 1 至 {MAX_TOKEN_CHARS} 个字符之间",
            field="token",
            value=token if isinstance(token, str) else type(token).__name__,
            fix="请重新扫描证照上的二维码",
        )
    outer = _decode_cbor(_decode_base32(token))
    format_version, kid, payload, signature = _check_outer(outer, token)
    claims = _claims_from_list(_decode_cbor(payload), token)
    return UnverifiedToken(
        format_version, kid, claims, DOMAIN + kid + payload, signature
    )


def verify_token(
    token: str,
    certificates: Iterable[x509.Certificate | asn1_x509.Certificate],
) -> TokenClaims:
    """Check the token's signature against the token signer certificates.

    Raises InputError for a malformed token and TokenError when no
    certificate matches its kid or the signature does not verify.
    """
    unverified = read_token(token)
    certificate = _find_certificate(unverified.kid, certificates)
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise TokenError(
            f"令牌签名证书 {unverified.kid.hex()} 不是 ECDSA 证书",
            fix="请核对信任列表中的二维码签名证书",
        )
    r = int.from_bytes(unverified.signature[:32], "big")
    s = int.from_bytes(unverified.signature[32:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            unverified.signed_bytes,
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise TokenError(
            "二维码令牌签名无效：内容被篡改或不是本系统签发",
            fix="请以证照平台上登记的信息为准，并向颁发机构核实",
        ) from None
    return unverified.claims


def _claims_to_list(claims: TokenClaims) -> list[object]:
    identifier = claims.elicense_id
    identifier = identifier.removeprefix(_ID_PREFIX)
    valid_to = None if claims.valid_to is None else _days(claims.valid_to)
    return [
        identifier,
        claims.holder_code,
        _days(claims.issued_on),
        valid_to,
        claims.version,
    ]


def _claims_from_list(value: object, token: str) -> TokenClaims:
    if not (isinstance(value, list) and len(value) == 5):
        raise _malformed(token, "载荷应为 5 个元素的数组")
    identifier, holder_code, issued_on, valid_to, version = value
    if not (isinstance(identifier, str) and isinstance(holder_code, str)):
        raise _malformed(token, "证照标识和持证主体代码应为文本")
    if not (_is_int(issued_on) and (valid_to is None or _is_int(valid_to))):
        raise _malformed(token, "日期应为整数")
    if not (_is_int(version) and 0 < version < 1000):
        raise _malformed(token, "版本号应为 1 至 999 的整数")
    return TokenClaims(
        elicense_id=_ID_PREFIX + identifier,
        holder_code=holder_code,
        issued_on=_date(issued_on, token),
        valid_to=None if valid_to is None else _date(valid_to, token),
        version=version,
    )


def _check_outer(value: object, token: str) -> tuple[int, bytes, bytes, bytes]:
    if not (isinstance(value, list) and len(value) == 4):
        raise _malformed(token, "应为 4 个元素的数组")
    format_version, kid, payload, signature = value
    if format_version != FORMAT_VERSION or not _is_int(format_version):
        raise _malformed(token, f"格式版本应为 {FORMAT_VERSION}")
    if not (isinstance(kid, bytes) and len(kid) == KID_BYTES):
        raise _malformed(token, f"密钥标识应为 {KID_BYTES} 字节")
    if not isinstance(payload, bytes):
        raise _malformed(token, "载荷应为字节串")
    if not (isinstance(signature, bytes) and len(signature) == SIGNATURE_BYTES):
        raise _malformed(token, f"签名应为 {SIGNATURE_BYTES} 字节")
    return format_version, kid, payload, signature


def _decode_base32(token: str) -> bytes:
    text = token.strip().upper()
    padded = text + "=" * (-len(text) % 8)
    try:
        return base64.b32decode(padded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _malformed(token, "不是有效的 base32 文本") from None


def _decode_cbor(data: bytes) -> object:
    # Only the canonical encoding is accepted, which also rules out CBOR tags
    # and other encodings that decode to the same value.
    try:
        value = cbor2.loads(data, max_depth=4, allow_indefinite=False)
        canonical = cbor2.dumps(value) == data
    except Exception as error:  # noqa: BLE001 - cbor2's tag decoders raise many types
        reason = f"CBOR 解码失败（{type(error).__name__}）"
        raise _malformed(data.hex()[:40], reason) from None
    if not canonical:
        raise _malformed(data.hex()[:40], "CBOR 编码不规范")
    return value


def _find_certificate(
    kid: bytes, certificates: Iterable[x509.Certificate | asn1_x509.Certificate]
) -> x509.Certificate:
    for certificate in certificates:
        if key_id(certificate) == kid:
            return x509.load_der_x509_certificate(_certificate_der(certificate))
    raise TokenError(
        f"未知的二维码签名密钥 {kid.hex()}",
        fix="该令牌不是由信任列表中的签名证书签发；请更新信任列表或向颁发机构核实",
    )


def _certificate_der(certificate: x509.Certificate | asn1_x509.Certificate) -> bytes:
    if isinstance(certificate, x509.Certificate):
        return certificate.public_bytes(serialization.Encoding.DER)
    return certificate.dump()


def _days(day: date) -> int:
    return (day - EPOCH).days


def _date(days: int, token: str) -> date:
    try:
        return date.fromordinal(EPOCH.toordinal() + days)
    except (ValueError, OverflowError):
        raise _malformed(token, f"日期超出范围：{days}") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _malformed(token: str, reason: str) -> InputError:
    return InputError(
        f"二维码令牌格式错误：{reason}",
        field="token",
        value=token,
        fix="请重新扫描证照上的二维码，或在证照平台按证照标识查询",
    )
