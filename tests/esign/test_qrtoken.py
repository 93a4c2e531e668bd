"""Signed QR tokens: round trip, size, tampering and hostile input."""

from __future__ import annotations

import base64
import re
from datetime import date

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from common.errors import InputError
from esign.certificates import to_asn1
from esign.qrtoken import (
    TokenClaims,
    TokenError,
    TokenSigner,
    key_id,
    read_token,
    sign_token,
    verify_token,
)

CLAIMS = TokenClaims(
    elicense_id="1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
    holder_code="91350100M000100Y43",
    issued_on=date(2026, 3, 2),
    valid_to=date(2046, 3, 1),
    version=1,
)
# QR alphanumeric mode: digits, upper-case letters and " $%*+-./:".
QR_ALPHANUMERIC = re.compile(r"[0-9A-Z $%*+\-./:]+")


@pytest.fixture(scope="module")
def token_signer(dev_pki) -> TokenSigner:
    return dev_pki.load_token_signer()


@pytest.fixture(scope="module")
def token(token_signer) -> str:
    return sign_token(CLAIMS, token_signer)


def _reencode(outer: list[object]) -> str:
    return base64.b32encode(cbor2.dumps(outer)).decode("ascii").rstrip("=")


def _outer(token: str) -> list[object]:
    return cbor2.loads(base64.b32decode(token + "=" * (-len(token) % 8)))


def test_round_trip(token, token_signer):
    assert verify_token(token, [token_signer.certificate]) == CLAIMS


def test_round_trip_without_end_date(token_signer):
    claims = TokenClaims(
        CLAIMS.elicense_id, CLAIMS.holder_code, CLAIMS.issued_on, None, 3
    )

    token = sign_token(claims, token_signer)

    assert verify_token(token, [token_signer.certificate]) == claims


def test_verify_accepts_asn1crypto_certificate(token, token_signer):
    asn1_certificate = to_asn1(token_signer.certificate)

    assert verify_token(token, [asn1_certificate]) == CLAIMS


def test_verify_with_published_trust_material_only(token, dev_pki):
    published = [*dev_pki.trust_roots(), *dev_pki.ca_certificates()]
    published.append(to_asn1(dev_pki.certificate("token-signer")))

    assert verify_token(token, published) == CLAIMS


def test_url_fits_qr_alphanumeric_mode(token):
    url = f"HTTP://127.0.0.1:8000/V/{token}"

    assert QR_ALPHANUMERIC.fullmatch(url)
    assert len(token) <= 300


def test_payload_strips_identifier_root(token):
    payload = cbor2.loads(_outer(token)[2])

    assert payload[0].startswith("11100000000013338W011.")
    assert payload[2] == (CLAIMS.issued_on - date(1970, 1, 1)).days


def test_kid_is_certificate_digest_prefix(token, token_signer):
    unverified = read_token(token)

    assert unverified.kid == key_id(token_signer.certificate)
    assert len(unverified.kid) == 8
    assert len(unverified.signature) == 64


def test_read_token_accepts_lower_case(token):
    assert read_token(token.lower()).claims == CLAIMS


def test_tampered_payload_rejected(token, token_signer):
    outer = _outer(token)
    payload = cbor2.loads(outer[2])
    payload[4] = 2  # claim a later version
    outer[2] = cbor2.dumps(payload)

    with pytest.raises(TokenError):
        verify_token(_reencode(outer), [token_signer.certificate])


def test_tampered_signature_rejected(token, token_signer):
    outer = _outer(token)
    outer[3] = bytes([outer[3][0] ^ 1]) + outer[3][1:]

    with pytest.raises(TokenError) as caught:
        verify_token(_reencode(outer), [token_signer.certificate])

    assert "签名无效" in caught.value.message


def test_unknown_kid_rejected(token, dev_pki):
    seal_certificate = dev_pki.certificate("issuing-ca")

    with pytest.raises(TokenError) as caught:
        verify_token(token, [seal_certificate])

    assert read_token(token).kid.hex() in caught.value.message


def test_other_key_with_swapped_kid_rejected(token_signer, dev_pki):
    impostor = TokenSigner(
        token_signer.certificate, ec.generate_private_key(ec.SECP256R1())
    )

    forged = sign_token(CLAIMS, impostor)

    with pytest.raises(TokenError):
        verify_token(forged, [token_signer.certificate])


def test_non_p256_signer_rejected(token_signer):
    signer = TokenSigner(
        token_signer.certificate, ec.generate_private_key(ec.SECP384R1())
    )

    with pytest.raises(InputError):
        sign_token(CLAIMS, signer)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "A",
        "!!!!",
        "0189",  # not in the base32 alphabet
        "ÄÖÜ",
        "A" * 513,
        "7" * 100,
        "\x00" * 10,
        "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPI",  # base32 of plain text
    ],
    ids=lambda value: f"len{len(value)}",
)
def test_garbage_raises_input_error(garbage):
    with pytest.raises(InputError):
        read_token(garbage)


@pytest.mark.parametrize(
    "outer",
    [
        [],
        [1, b"12345678", b"", b"x" * 64],
        [2, b"12345678", cbor2.dumps([]), b"x" * 64],
        [1, b"1234567", cbor2.dumps([]), b"x" * 64],
        [1, b"12345678", cbor2.dumps([]), b"x" * 63],
        [True, b"12345678", cbor2.dumps(["a", "b", 1, None, 1]), b"x" * 64],
        [1, b"12345678", cbor2.dumps(["a", "b", 1, None, 0]), b"x" * 64],
        [1, b"12345678", cbor2.dumps(["a", "b", 10**9, None, 1]), b"x" * 64],
        [1, b"12345678", cbor2.dumps(["a", "b", "2026", None, 1]), b"x" * 64],
        [1, b"12345678", cbor2.dumps([1, "b", 1, None, 1]), b"x" * 64],
        [1, b"12345678", cbor2.dumps({"a": 1}), b"x" * 64],
        {"format": 1},
        "text",
    ],
    ids=lambda value: type(value).__name__ + str(len(value)),
)
def test_malformed_structure_raises_input_error(outer):
    with pytest.raises(InputError):
        read_token(_reencode(outer))


@pytest.mark.parametrize(
    "raw",
    [
        bytes.fromhex("c1" + "1a00000001"),  # tag 1 (epoch datetime)
        bytes.fromhex("d823" + "6128"),  # tag 35 (regex) with "("
        bytes.fromhex("c5" + "82" + "1bffffffffffffffff" + "01"),  # huge bigfloat
        bytes.fromhex("9f" + "01" + "ff"),  # indefinite array
        bytes.fromhex("5b" + "ffffffffffffffff"),  # huge declared byte string
        bytes.fromhex("81" * 300 + "01"),  # deep nesting
        bytes.fromhex("84" + "1800" + "01" * 3),  # non-canonical integer 0
        cbor2.dumps([1, b"12345678", b"", b"x" * 64]) + b"\x00",  # trailing byte
    ],
    ids=[
        "tag-datetime",
        "tag-regex",
        "bigfloat",
        "indefinite",
        "huge-bstr",
        "deep",
        "non-canonical",
        "trailing",
    ],
)
def test_hostile_cbor_raises_input_error(raw):
    token = base64.b32encode(raw).decode("ascii").rstrip("=")

    with pytest.raises(InputError):
        read_token(token)


def test_non_string_input_raises_input_error():
    with pytest.raises(InputError):
        read_token(b"ABCDEF")  # type: ignore[arg-type]


def test_token_signer_repr_hides_key(token_signer):
    assert "PrivateKey" not in repr(token_signer)
    assert key_id(token_signer.certificate).hex() in repr(token_signer)


def test_token_signer_certificate_published_under_issuing_ca(dev_pki):
    certificate = dev_pki.certificate("token-signer")
    issuing = dev_pki.certificate("issuing-ca")

    assert certificate.issuer == issuing.subject
    assert isinstance(certificate, x509.Certificate)


def test_sign_token_is_deterministic(token_signer):
    claims = TokenClaims(
        elicense_id="1.2.156.3005.2.11150000MA7XQ0CB8J001.11152921MA9U9BMD6Q.20250000001.001.X",
        holder_code="91350100M000100Y43",
        issued_on=date(2025, 1, 2),
        valid_to=None,
        version=1,
    )
    assert sign_token(claims, token_signer) == sign_token(claims, token_signer)
