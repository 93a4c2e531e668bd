"""Development PKI: root CA, issuing CA, TSA, token signer and seals.

Layout under ``DATA_DIR``::

    pki/root-ca.key.p8, root-ca.pem          self-signed root (ECDSA P-256)
    pki/issuing-ca.key.p8, issuing-ca.pem    issues every other certificate
    pki/tsa.key.p8, tsa.pem                  RFC 3161 TSA (RSA-2048)
    pki/token-signer.key.p8, token-signer.pem  signs QR tokens
    pki/seals/SEAL_CODE/                     one folder per seal, see esign.seals
    pki/ca/NAME.cer                          CA certificates (DER), for AIA
    pki/crl/NAME.crl, NAME.json              current CRL (DER) and CA state
    trust/root-ca.pem                        the root, for outside validators

The TSA key is RSA because pyhanko's in-process timestamper signs with RSA
only. Every key file is encrypted PKCS#8 under one passphrase.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pyhanko.sign.signers.pdf_cms import Signer

from common.authority import Authority
from common.errors import KeyStoreError, NotFoundError
from esign import certificates as profiles
from esign.certificates import Issuer, PublicationUrls, to_asn1
from esign.keystore import (
    PrivateKey,
    load_private_key,
    write_private_key,
)
from esign.qrtoken import TokenSigner
from esign.revocation import RevocationState, crl_due_at, issue_crl, write_atomically
from esign.seals import SealRecord, SealRegistry, SealType
from esign.timestamps import BuiltinTimeStamper, Clock

logger = logging.getLogger(__name__)

ROOT_CA = "root-ca"
ISSUING_CA = "issuing-ca"
TSA = "tsa"
TOKEN_SIGNER = "token-signer"

ROOT_CN = "内蒙古自治区电子证照根CA (开发)"
ISSUING_CN = "内蒙古自治区电子证照签发CA (开发)"
TSA_CN = "内蒙古自治区电子证照时间戳服务 (开发)"
TOKEN_SIGNER_CN = "内蒙古自治区电子证照二维码签名 (开发)"

ROOT_LIFETIME = timedelta(days=20 * 365)
ISSUING_LIFETIME = timedelta(days=10 * 365)
TSA_LIFETIME = timedelta(days=10 * 365)
LEAF_LIFETIME = timedelta(days=5 * 365)


@dataclass(frozen=True)
class SealCredentials:
    """A seal ready to sign: certificate, chain up to the root, signer handle."""

    authority: Authority
    certificate: asn1_x509.Certificate
    chain: tuple[asn1_x509.Certificate, ...]
    signer: Signer


@dataclass(frozen=True)
class _CachedCrl:
    crl: asn1_crl.CertificateList
    due_at: datetime


@dataclass(frozen=True)
class ValidationData:
    """Trust anchors, intermediate certificates and CRLs used at signing.

    With ``allow_fetching`` the signer also fetches CRLs and OCSP responses
    from the URLs in the certificates, as seals certified by an outside CA
    need.
    """

    trust_roots: tuple[asn1_x509.Certificate, ...]
    other_certs: tuple[asn1_x509.Certificate, ...]
    crls: tuple[asn1_crl.CertificateList, ...]
    allow_fetching: bool = False


class DevPki:
    """Paths and loaders of a development PKI made by :func:`ensure_dev_pki`."""

    def __init__(self, data_dir: Path, passphrase: bytes, base_url: str) -> None:
        self.data_dir = data_dir
        self.pki_dir = data_dir / "pki"
        self.trust_root_path = data_dir / "trust" / "root-ca.pem"
        self.urls = PublicationUrls(base_url.rstrip("/"))
        self._passphrase = passphrase
        self._issuers: dict[str, Issuer] = {}
        self._crl_cache: dict[str, tuple[tuple[int, int], _CachedCrl]] = {}
        self._certificate_cache: dict[
            Path, tuple[tuple[int, int, int], asn1_x509.Certificate]
        ] = {}

    def __repr__(self) -> str:
        return f"DevPki(data_dir={str(self.data_dir)!r})"

    # Paths

    def key_path(self, name: str) -> Path:
        return self.pki_dir / f"{name}.key.p8"

    def certificate_path(self, name: str) -> Path:
        return self.pki_dir / f"{name}.pem"

    def seal_dir(self, authority_code: str) -> Path:
        """Return the folder of the authority's newest license seal."""
        return self.seals.seal_dir(self._license_seal(authority_code).code)

    def crl_path(self, ca_name: str) -> Path:
        return self.pki_dir / "crl" / f"{ca_name}.crl"

    def ca_der_path(self, ca_name: str) -> Path:
        return self.pki_dir / "ca" / f"{ca_name}.cer"

    def seal_codes(self) -> list[str]:
        return self.seals.codes()

    @property
    def seals(self) -> SealRegistry:
        return SealRegistry(self.pki_dir)

    def _license_seal(self, authority_code: str) -> SealRecord:
        found = self.seals.find(authority_code, SealType.LICENSE)
        if not found:
            raise NotFoundError(
                f"颁发机构 {authority_code} 没有证照专用章",
                fix="请先运行 elicense init 或 elicense seal request 为该机构制作印章",
            )
        return found[0]

    # Loaders

    def certificate(self, name: str) -> x509.Certificate:
        return _read_certificate(self.certificate_path(name))

    def trust_roots(self) -> list[asn1_x509.Certificate]:
        return [self._asn1_certificate(self.trust_root_path)]

    def ca_certificates(self) -> list[asn1_x509.Certificate]:
        return [
            self._asn1_certificate(self.certificate_path(name))
            for name in (ISSUING_CA, ROOT_CA)
        ]

    def _asn1_certificate(self, path: Path) -> asn1_x509.Certificate:
        """Return the certificate at ``path``, parsed once per version of the file.

        Signing validates the seal certificate against these objects for
        every document. asn1crypto caches the prepared form of each name
        on the parsed object, so reusing the objects saves that work too.
        """
        try:
            status = path.stat()
        except FileNotFoundError:
            return to_asn1(_read_certificate(path))  # raises NotFoundError
        key = (status.st_mtime_ns, status.st_size, status.st_ino)
        entry = self._certificate_cache.get(path)
        if entry is not None and entry[0] == key:
            return entry[1]
        certificate = to_asn1(_read_certificate(path))
        self._certificate_cache[path] = (key, certificate)
        return certificate

    def load_seal(self, authority: Authority | str) -> SealCredentials:
        """Load the newest license seal of an authority (object or USCC).

        Only seals whose key is in the file key store load here; the status
        is not checked (see ``esign.seal_lifecycle.SealManager``). Raises
        NotFoundError when the authority has no seal with a certificate,
        KeyStoreError when its key cannot be decrypted.
        """
        from esign.seal_lifecycle import file_credentials

        code = authority if isinstance(authority, str) else authority.code
        record = self._license_seal(code)
        if isinstance(authority, Authority):
            record = replace(record, authority=authority)
        return file_credentials(self.seals, record, self._passphrase)

    def load_timestamper(self, clock: Clock | None = None) -> BuiltinTimeStamper:
        """Load the in-process TSA; ``clock`` fixes its time in tests."""
        key = load_private_key(self.key_path(TSA), self._passphrase)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyStoreError(
                f"时间戳服务私钥 {self.key_path(TSA)} 不是 RSA 密钥",
                fix="请删除 pki 目录中的 tsa.* 文件后重新运行 elicense init",
            )
        return BuiltinTimeStamper(
            to_asn1(self.certificate(TSA)), key, self.ca_certificates(), clock=clock
        )

    def load_token_signer(self) -> TokenSigner:
        key = load_private_key(self.key_path(TOKEN_SIGNER), self._passphrase)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise KeyStoreError(
                f"二维码签名私钥 {self.key_path(TOKEN_SIGNER)} 不是 ECDSA 密钥",
                fix="请删除 pki 目录中的 token-signer.* 文件后重新运行 elicense init",
            )
        return TokenSigner(self.certificate(TOKEN_SIGNER), key)

    def crls(self, now: datetime | None = None) -> list[asn1_crl.CertificateList]:
        """Return the current CRL of each CA, re-issuing any that is due.

        Parsed CRLs are cached until their file changes, so calling this per
        signed document costs two ``stat`` calls.
        """
        moment = now or datetime.now(UTC)
        return [self._current_crl(name, moment) for name in (ROOT_CA, ISSUING_CA)]

    def _current_crl(self, ca_name: str, now: datetime) -> asn1_crl.CertificateList:
        cached = self._cached_crl(ca_name)
        if cached is None or now >= cached.due_at:
            self.refresh_crls(now)
            cached = self._cached_crl(ca_name)
        assert cached is not None  # refresh_crls wrote the file
        return cached.crl

    def _cached_crl(self, ca_name: str) -> _CachedCrl | None:
        path = self.crl_path(ca_name)
        try:
            status = path.stat()
        except FileNotFoundError:
            return None
        key = (status.st_mtime_ns, status.st_size)
        entry = self._crl_cache.get(ca_name)
        if entry is not None and entry[0] == key:
            return entry[1]
        der = path.read_bytes()
        cached = _CachedCrl(asn1_crl.CertificateList.load(der), crl_due_at(der))
        self._crl_cache[ca_name] = (key, cached)
        return cached

    def validation_data(self, now: datetime | None = None) -> ValidationData:
        return ValidationData(
            trust_roots=tuple(self.trust_roots()),
            other_certs=tuple(self.ca_certificates()),
            crls=tuple(self.crls(now)),
        )

    # CA operations, used by esign.revocation

    def issuer(self, ca_name: str) -> Issuer:
        if ca_name not in self._issuers:
            key = load_private_key(self.key_path(ca_name), self._passphrase)
            self._issuers[ca_name] = Issuer(ca_name, self.certificate(ca_name), key)
        return self._issuers[ca_name]

    def issuer_of(self, certificate: x509.Certificate) -> Issuer | None:
        for name in (ISSUING_CA, ROOT_CA):
            ca_certificate = self.certificate(name)
            if certificate.issuer == ca_certificate.subject:
                return self.issuer(name)
        return None

    def issuer_by_key_hash(
        self, key_hash: bytes, algorithm: hashes.HashAlgorithm
    ) -> Issuer | None:
        for name in (ISSUING_CA, ROOT_CA):
            public_key = self.certificate(name).public_key()
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                continue
            digest = hashes.Hash(algorithm)
            digest.update(_subject_public_key_bits(public_key))
            if digest.finalize() == key_hash:
                return self.issuer(name)
        return None

    def issue_seal_certificate(
        self, request: x509.CertificateSigningRequest, now: datetime
    ) -> x509.Certificate:
        """Issue a seal certificate for a CSR from the issuing CA.

        The subject is taken from the request as it is; the caller checks
        that it names the right authority.
        """
        if not request.is_signature_valid:
            raise KeyStoreError(
                "证书签名请求（CSR）的签名无效", fix="请重新生成证书签名请求"
            )
        public_key = request.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise KeyStoreError(
                f"证书签名请求中的密钥类型不受支持：{type(public_key).__name__}",
                fix="请使用 ECDSA P-256 或 RSA 密钥",
            )
        certificate = profiles.build_end_entity(
            request.subject,
            public_key,
            self.issuer(ISSUING_CA),
            self.urls,
            now,
            LEAF_LIFETIME,
        )
        _record_issued(self, ISSUING_CA, certificate)
        logger.info("issued seal certificate serial=%x", certificate.serial_number)
        return certificate

    def write_key(self, path: Path, key: PrivateKey) -> None:
        """Write ``key`` encrypted under this PKI's passphrase."""
        write_private_key(path, key, self._passphrase)

    def revocation_state(self, ca_name: str) -> RevocationState:
        return RevocationState.load(self.crl_path(ca_name).with_suffix(".json"))

    def publish_crl(
        self, issuer: Issuer, state: RevocationState, now: datetime
    ) -> None:
        crl_der = issue_crl(issuer, state, now)
        state.save(self.crl_path(issuer.name).with_suffix(".json"))
        write_atomically(self.crl_path(issuer.name), crl_der)
        logger.info("issued CRL ca=%s number=%d", issuer.name, state.crl_number)

    def refresh_crls(self, now: datetime) -> None:
        for name in (ROOT_CA, ISSUING_CA):
            path = self.crl_path(name)
            if not path.exists() or now >= crl_due_at(path.read_bytes()):
                self.publish_crl(self.issuer(name), self.revocation_state(name), now)


def ensure_dev_pki(
    data_dir: Path,
    authorities: Iterable[Authority],
    *,
    base_url: str,
    passphrase: bytes,
    now: datetime | None = None,
) -> DevPki:
    """Create what is missing of the development PKI and return it.

    Running it again keeps every existing key and certificate, adds seals for
    new authorities and re-issues CRLs that are due. Raises KeyStoreError
    when existing keys do not decrypt with ``passphrase``.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    pki = DevPki(data_dir, passphrase, base_url)
    pki.pki_dir.mkdir(parents=True, exist_ok=True)
    _ensure_root(pki, moment)
    _ensure_issuing_ca(pki, moment)
    _ensure_leaf(pki, TSA, moment)
    _ensure_leaf(pki, TOKEN_SIGNER, moment)
    for authority in authorities:
        _ensure_seal(pki, authority, moment)
    pki.refresh_crls(moment)
    return pki


def _ensure_root(pki: DevPki, now: datetime) -> None:
    if pki.certificate_path(ROOT_CA).exists():
        pki.issuer(ROOT_CA)  # fails early on a wrong passphrase
        return
    if pki.certificate_path(ISSUING_CA).exists():
        raise KeyStoreError(
            f"{pki.pki_dir} 中有签发 CA 却没有根 CA 证书，开发 PKI 不完整",
            fix="请删除整个 pki 和 trust 目录后重新运行 elicense init",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = profiles.build_root(ROOT_CN, key, now, ROOT_LIFETIME)
    _store(pki, ROOT_CA, key, certificate, ca=True)
    pki.trust_root_path.parent.mkdir(parents=True, exist_ok=True)
    pki.trust_root_path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
    )
    logger.info("created root CA in %s", pki.pki_dir)


def _ensure_issuing_ca(pki: DevPki, now: datetime) -> None:
    if pki.certificate_path(ISSUING_CA).exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = profiles.build_issuing_ca(
        ISSUING_CN, key, pki.issuer(ROOT_CA), pki.urls, now, ISSUING_LIFETIME
    )
    _record_issued(pki, ROOT_CA, certificate)
    _store(pki, ISSUING_CA, key, certificate, ca=True)
    logger.info("created issuing CA in %s", pki.pki_dir)


def _ensure_leaf(pki: DevPki, name: str, now: datetime) -> None:
    if pki.certificate_path(name).exists():
        return
    issuer = pki.issuer(ISSUING_CA)
    key: PrivateKey
    if name == TSA:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certificate = profiles.build_tsa(
            TSA_CN, key, issuer, pki.urls, now, TSA_LIFETIME
        )
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = profiles.ca_name(TOKEN_SIGNER_CN)
        certificate = profiles.build_end_entity(
            subject, key, issuer, pki.urls, now, LEAF_LIFETIME, document_signing=False
        )
    _record_issued(pki, ISSUING_CA, certificate)
    _store(pki, name, key, certificate)
    logger.info("created %s certificate serial=%x", name, certificate.serial_number)


def _ensure_seal(pki: DevPki, authority: Authority, now: datetime) -> None:
    """Register a license seal for ``authority`` unless it has one."""
    from esign.seal_lifecycle import adopt_legacy_seal, create_dev_seal

    if pki.seals.find(authority.code, SealType.LICENSE):
        return
    legacy = pki.pki_dir / "seals" / authority.code
    if (legacy / "seal.pem").exists():
        adopt_legacy_seal(pki, authority, legacy, pki._passphrase, now)
        return
    create_dev_seal(pki, authority, pki._passphrase, now)


def _store(
    pki: DevPki,
    name: str,
    key: PrivateKey,
    certificate: x509.Certificate,
    *,
    ca: bool = False,
) -> None:
    pki.write_key(pki.key_path(name), key)
    pki.certificate_path(name).write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
    )
    if ca:
        der_path = pki.ca_der_path(name)
        der_path.parent.mkdir(parents=True, exist_ok=True)
        der_path.write_bytes(certificate.public_bytes(serialization.Encoding.DER))


def _record_issued(pki: DevPki, ca_name: str, certificate: x509.Certificate) -> None:
    state = pki.revocation_state(ca_name)
    state.issued.add(certificate.serial_number)
    state.save(pki.crl_path(ca_name).with_suffix(".json"))


def _read_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise NotFoundError(
            f"证书文件 {path} 不存在", fix="请先运行 elicense init 生成开发 PKI"
        ) from None


def _subject_public_key_bits(public_key: ec.EllipticCurvePublicKey) -> bytes:
    # OCSP hashes the subjectPublicKey BIT STRING content, not the whole SPKI.
    # For EC keys that content is the uncompressed point.
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
