"""Seal keys: generation, certificate signing requests and imported chains.

A seal key lives either in an encrypted PKCS#8 file in the seal folder or
on a PKCS#11 token. Both kinds produce the same CSR (PKCS #10, SHA-256) and
the same pyhanko signer, so the rest of the product does not care where the
key is.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from asn1crypto import csr as asn1_csr
from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    InvalidCertificateError,
    PathBuildingError,
    PathValidationError,
)

from common.authority import Authority
from common.errors import InputError, KeyStoreError, TrustError
from esign import certificates as profiles
from esign.keystore import (
    InMemorySigner,
    Pkcs11KeyStore,
    PrivateKey,
    generate_private_key,
    load_private_key,
    write_private_key,
)
from esign.seals import CertificateInfo, KeyLocation

logger = logging.getLogger(__name__)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
RawSigner = Callable[[bytes], bytes]


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: where it lives, its public half, a raw signer."""

    location: KeyLocation
    public_key: PublicKey
    sign_sha256: RawSigner


def new_file_key(
    seal_dir: Path, file_name: str, algorithm: str, passphrase: bytes
) -> NewKey:
    """Generate a key and store it encrypted as ``seal_dir/file_name``."""
    key = generate_private_key(algorithm)
    write_private_key(seal_dir / file_name, key, passphrase)
    location = KeyLocation(store="file", algorithm=algorithm, path=file_name)
    return NewKey(location, key.public_key(), lambda data: _sign_sha256(key, data))


def new_token_key(store: Pkcs11KeyStore, algorithm: str, seal_code: str) -> NewKey:
    """Generate a key on the token, labelled with the seal code and a random id."""
    key_id = secrets.token_bytes(8)
    label = f"seal-{seal_code}-{key_id.hex()}"
    public_key = store.generate_key(algorithm, label, key_id)
    location = KeyLocation(
        store="pkcs11",
        algorithm=algorithm,
        token_label=store.token_label,
        key_label=label,
        key_id=key_id.hex(),
    )
    return NewKey(location, public_key, lambda data: store.sign_sha256(label, data))


def build_csr(authority: Authority, key: NewKey) -> bytes:
    """Return a PEM PKCS #10 request naming the authority, signed by ``key``.

    The subject carries the authority's name and its USCC as
    organizationIdentifier, the form the seal certificates of this product
    use. Raises KeyStoreError when the resulting signature does not verify.
    """
    subject = asn1_x509.Name.load(profiles.seal_name(authority).public_bytes())
    spki = asn1_keys.PublicKeyInfo.load(
        key.public_key.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )
    info = asn1_csr.CertificationRequestInfo(
        {"version": "v1", "subject": subject, "subject_pk_info": spki, "attributes": []}
    )
    algorithm = "sha256_ecdsa" if key.location.algorithm == "ec-p256" else "sha256_rsa"
    request = asn1_csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": algorithm},
            "signature": key.sign_sha256(info.dump()),
        }
    )
    der = request.dump()
    if not x509.load_der_x509_csr(der).is_signature_valid:
        raise KeyStoreError(
            "生成的证书签名请求（CSR）签名无效",
            fix="请检查密钥是否完整，或重新生成密钥",
        )
    return pem.armor("CERTIFICATE REQUEST", der)


def load_chain(data: bytes) -> list[x509.Certificate]:
    """Read PEM or DER certificates; raise InputError when there are none."""
    try:
        if b"-----BEGIN" in data:
            certificates = x509.load_pem_x509_certificates(data)
        else:
            certificates = [x509.load_der_x509_certificate(data)]
    except ValueError as error:
        raise InputError(
            f"证书文件无法解析：{error}",
            field="chain",
            value=f"{len(data)} 字节",
            fix="请提供 CA 签发的 PEM 证书链（印章证书在前）或 DER 证书",
        ) from error
    return certificates


def check_issued_chain(
    chain: Sequence[x509.Certificate],
    public_key: PublicKey,
    authority: Authority,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Check an issued chain and return the seal certificate and its CA path.

    The seal certificate is the one holding ``public_key``. It must name the
    authority's USCC, be valid at ``now``, allow signatures, and lead to one
    of ``trust_roots``. Raises InputError or TrustError naming the problem.
    """
    leaf = _certificate_for_key(chain, public_key)
    uscc = profiles.uscc_from_subject(profiles.to_asn1(leaf))
    if uscc != authority.code:
        raise InputError(
            f"证书中的机构代码 {uscc or '（无）'} 与印章所属机构"
            f" {authority.code} 不一致",
            field="chain",
            value=leaf.subject.rfc4514_string(),
            fix="请让 CA 按证书签名请求中的主体签发证书",
        )
    path = _validated_path(leaf, chain, trust_roots, now)
    return leaf, path


def certificate_info(certificate: x509.Certificate, *, dev_ca: bool) -> CertificateInfo:
    return CertificateInfo(
        serial=f"{certificate.serial_number:x}",
        sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        dev_ca=dev_ca,
    )


def public_key_of(
    location: KeyLocation, seal_dir: Path, passphrase: bytes
) -> PublicKey:
    """Return the public key of a file key (token keys: see the CSR)."""
    if location.store != "file" or location.path is None:
        raise KeyStoreError(
            "只能从文件密钥读取公钥", fix="令牌中的密钥请使用证书签名请求中的公钥"
        )
    return load_private_key(seal_dir / location.path, passphrase).public_key()


def file_signer(
    location: KeyLocation,
    seal_dir: Path,
    passphrase: bytes,
    certificate: asn1_x509.Certificate,
    chain: Sequence[asn1_x509.Certificate],
) -> Signer:
    assert location.path is not None
    key: PrivateKey = load_private_key(seal_dir / location.path, passphrase)
    return InMemorySigner(key, certificate, chain)


def token_signer(
    store: Pkcs11KeyStore,
    location: KeyLocation,
    certificate: asn1_x509.Certificate,
    chain: Sequence[asn1_x509.Certificate],
) -> Signer:
    if location.token_label != store.token_label:
        raise KeyStoreError(
            f"印章密钥在令牌 {location.token_label!r} 中，"
            f"当前打开的是 {store.token_label!r}",
            fix="请把 ELICENSE_PKCS11_TOKEN_LABEL 设为印章密钥所在的令牌标签",
        )
    assert location.key_label is not None
    return store.signer(location.key_label, certificate, chain)


def _sign_sha256(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _certificate_for_key(
    chain: Sequence[x509.Certificate], public_key: PublicKey
) -> x509.Certificate:
    wanted = _spki(public_key)
    for certificate in chain:
        if _spki(certificate.public_key()) == wanted:  # type: ignore[arg-type]
            return certificate
    raise InputError(
        f"证书链中的 {len(chain)} 张证书都不含本印章密钥的公钥",
        field="chain",
        value=", ".join(cert.subject.rfc4514_string() for cert in chain)[:200],
        fix="请导入 CA 按本印章的证书签名请求（request.csr）签发的证书",
    )


def _validated_path(
    leaf: x509.Certificate,
    chain: Sequence[x509.Certificate],
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    others = [profiles.to_asn1(cert) for cert in chain if cert != leaf]
    context = ValidationContext(
        trust_roots=[profiles.to_asn1(cert) for cert in trust_roots],
        other_certs=others,
        allow_fetching=False,
        # Revocation data of an outside CA is usually not at hand here;
        # the signer checks revocation again before every signature.
        revocation_mode="soft-fail",
        moment=now,
    )
    validator = CertificateValidator(profiles.to_asn1(leaf), validation_context=context)
    try:
        # pyhanko requires nonRepudiation of PDF signers by default too.
        path = asyncio.run(validator.async_validate_usage({"non_repudiation"}))
    except (PathBuildingError, PathValidationError, InvalidCertificateError) as error:
        raise TrustError(
            f"印章证书 {leaf.subject.rfc4514_string()} "
            f"不能链接到受信任的根证书：{error}",
            fix="请确认证书链完整、未过期，且签发 CA 已在信任列表中（elicense trust）",
        ) from error
    # The path runs from the root to the leaf; the chain lists the leaf's
    # issuer first, as TLS and CMS usually do.
    leaf_sha256 = profiles.to_asn1(leaf).sha256
    return [
        x509.load_der_x509_certificate(cert.dump())
        for cert in reversed(list(path))
        if cert.sha256 != leaf_sha256
    ]


def _spki(public_key: PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
