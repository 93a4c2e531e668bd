"""Seal lifecycle: request, import, renew, suspend, resume, revoke, expire.

A seal starts pending with a key and a certificate signing request (CSR).
Importing the chain issued for that CSR makes it active. Renewal makes a new
key and CSR for the same seal code; the current certificate keeps signing
until the new chain is imported. Suspension only stops this service from
signing, while revocation also revokes the certificate when the development
CA issued it. Every change goes through :class:`esign.seals.SealRegistry`,
which records it in the seal's history.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from common.authority import Authority
from common.errors import ConflictError, InputError, KeyStoreError, NotFoundError
from esign.certificates import to_asn1
from esign.keystore import KEY_ALGORITHMS, Pkcs11KeyStore
from esign.revocation import revoke_certificate, write_atomically
from esign.seal_keys import (
    build_csr,
    certificate_info,
    check_issued_chain,
    file_signer,
    load_chain,
    new_file_key,
    new_token_key,
    token_signer,
)
from esign.seals import (
    CERTIFICATE_FILE,
    CHAIN_FILE,
    KEY_FILE,
    REQUEST_FILE,
    HistoryEntry,
    KeyLocation,
    PendingRequest,
    SealRecord,
    SealRegistry,
    SealStatus,
    SealType,
    SealUnusableError,
    default_artwork,
)

if TYPE_CHECKING:
    from esign.pki import DevPki, SealCredentials

logger = logging.getLogger(__name__)

PENDING_KEY_FILE = "pending.key.p8"
ARCHIVE_DIR = "archive"
SYSTEM_OPERATOR = "system"
KEY_STORES = ("file", "pkcs11")

Clock = Callable[[], datetime]
# Opens the configured PKCS#11 token; True requests a read-write session.
TokenOpener = Callable[[bool], Pkcs11KeyStore]


@dataclass(frozen=True)
class Expiring:
    """A seal whose certificate ends within the warning period."""

    seal: SealRecord
    days_left: int


class SealManager:
    """Change seals of one data directory: keys, certificates and status.

    ``open_token`` is needed only for seals whose key is on a PKCS#11 token.
    ``clock`` sets the time of every change, UTC now by default.
    """

    def __init__(
        self,
        pki: DevPki,
        passphrase: bytes,
        *,
        open_token: TokenOpener | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pki = pki
        self.registry = SealRegistry(pki.pki_dir)
        self._passphrase = passphrase
        self._open_token = open_token
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"SealManager(registry={self.registry!r})"

    # Request and certificates

    def request(
        self,
        authority: Authority,
        seal_type: SealType = SealType.LICENSE,
        *,
        key_store: str = "file",
        algorithm: str = "ec-p256",
        operator: str,
        reason: str,
    ) -> tuple[SealRecord, bytes]:
        """Register a new pending seal, generate its key and return its CSR (PEM)."""
        _check_key_choice(key_store, algorithm)
        now = self._clock()
        with self.registry.locked():
            code = self.registry.allocate_code(authority.region_code, seal_type)
            directory = self.registry.seal_dir(code)
            directory.mkdir(parents=True, exist_ok=True)
            try:
                location, csr = self._new_key_and_csr(
                    code, authority, key_store, algorithm, KEY_FILE
                )
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            write_atomically(directory / REQUEST_FILE, csr)
            record = SealRecord(
                code=code,
                seal_type=seal_type,
                authority=authority,
                artwork=default_artwork(authority, seal_type, code),
                status=SealStatus.PENDING,
                status_changed_at=now,
                created_at=now,
                pending=PendingRequest(location, now),
            )
            entry = HistoryEntry(
                now,
                "requested",
                operator,
                reason,
                SealStatus.PENDING,
                details={"key_store": key_store, "algorithm": algorithm},
            )
            self.registry.add(record, entry)
        return record, csr

    def renew(
        self,
        code: str,
        *,
        key_store: str | None = None,
        algorithm: str | None = None,
        operator: str,
        reason: str,
    ) -> tuple[SealRecord, bytes]:
        """Generate a new key and CSR for seal ``code``, keeping code and history.

        The current certificate keeps signing until the new chain is
        imported. Raises SealUnusableError for a revoked seal.
        """
        now = self._clock()
        with self.registry.locked():
            record = self.registry.get(code)
            _check_renewable(record)
            assert record.key is not None
            key_store = key_store or record.key.store
            algorithm = algorithm or record.key.algorithm
            _check_key_choice(key_store, algorithm)
            location, csr = self._new_key_and_csr(
                code, record.authority, key_store, algorithm, PENDING_KEY_FILE
            )
            write_atomically(self.registry.seal_dir(code) / REQUEST_FILE, csr)
            entry = HistoryEntry(
                now,
                "renewal_requested",
                operator,
                reason,
                record.status,
                certificate_serial=_serial(record),
                details={"key_store": key_store, "algorithm": algorithm},
            )
            record = self.registry.update(
                record, entry, pending=PendingRequest(location, now)
            )
        return record, csr

    def import_chain(
        self,
        code: str,
        chain_data: bytes,
        trust_roots: Sequence[x509.Certificate],
        *,
        operator: str,
        reason: str,
    ) -> SealRecord:
        """Check the chain issued for the open CSR and put it in use.

        The chain must contain a certificate for the requested key that names
        the seal's authority and leads to one of ``trust_roots`` or to the
        development root. A pending or expired seal becomes active.
        """
        now = self._clock()
        with self.registry.locked():
            record = self.registry.get(code)
            if record.pending is None:
                raise ConflictError(
                    f"印章 {code} 没有待导入证书的签名请求",
                    fix="请先运行 elicense seal request 或 elicense seal renew",
                )
            if record.status is SealStatus.REVOKED:
                _check_renewable(record)
            directory = self.registry.seal_dir(code)
            request = x509.load_pem_x509_csr((directory / REQUEST_FILE).read_bytes())
            roots = [*trust_roots, self.pki.certificate("root-ca")]
            leaf, path = check_issued_chain(
                load_chain(chain_data),
                request.public_key(),  # type: ignore[arg-type]
                record.authority,
                roots,
                now,
            )
            return self._put_in_use(record, leaf, path, now, operator, reason)

    def issue_with_dev_ca(self, code: str, *, operator: str, reason: str) -> SealRecord:
        """Have the development CA sign the open CSR, then import the result."""
        with self.registry.locked():
            directory = self.registry.seal_dir(code)
            try:
                pem = (directory / REQUEST_FILE).read_bytes()
            except FileNotFoundError:
                raise ConflictError(
                    f"印章 {code} 没有待签发的证书签名请求",
                    fix="请先运行 elicense seal request 或 elicense seal renew",
                ) from None
            certificate = self.pki.issue_seal_certificate(
                x509.load_pem_x509_csr(pem), self._clock()
            )
            chain = [certificate, *self._dev_chain()]
            data = b"".join(_pem(cert) for cert in chain)
            return self.import_chain(code, data, [], operator=operator, reason=reason)

    # Status

    def suspend(self, code: str, *, operator: str, reason: str) -> SealRecord:
        return self._change_status(
            code,
            "suspended",
            SealStatus.SUSPENDED,
            {SealStatus.ACTIVE},
            operator,
            reason,
        )

    def resume(self, code: str, *, operator: str, reason: str) -> SealRecord:
        return self._change_status(
            code, "resumed", SealStatus.ACTIVE, {SealStatus.SUSPENDED}, operator, reason
        )

    def revoke(
        self,
        code: str,
        *,
        operator: str,
        reason: str,
        revoked_at: datetime | None = None,
        crl_reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    ) -> SealRecord:
        """Revoke seal ``code`` for good and, if the development CA issued
        its certificate, revoke that certificate as of ``revoked_at``.

        ``revoked_at`` (default now) may lie in the past, for a key
        compromise found late, but not in the future. Signatures timestamped
        before it stay valid.

        NOTE: the key itself stays in its file or on its token; destroy it
        with the key store's own tools once the revocation is confirmed.
        """
        now = self._clock()
        # CRLs carry whole seconds. Truncating here keeps the history equal to
        # the CRL and counts a signature from that same second as revoked.
        moment = (revoked_at or now).astimezone(UTC).replace(microsecond=0)
        with self.registry.locked():
            record = self.registry.get(code)
            _check_revocable(record, moment, now)
            ca_revoked = False
            if record.certificate is not None and record.certificate.dev_ca:
                certificate = self.certificate(record)
                revoke_certificate(
                    self.pki, certificate, revoked_at=moment, reason=crl_reason, now=now
                )
                ca_revoked = True
            entry = HistoryEntry(
                now,
                "revoked",
                operator,
                reason,
                SealStatus.REVOKED,
                certificate_serial=_serial(record),
                details={
                    "revoked_at": moment.isoformat(),
                    "crl_reason": crl_reason.value,
                    "certificate_revoked_by_dev_ca": ca_revoked,
                },
            )
            return self.registry.update(record, entry, status=SealStatus.REVOKED)

    def refresh_expiry(self) -> list[SealRecord]:
        """Mark seals whose certificate has ended as expired; return them."""
        now = self._clock()
        expired = []
        with self.registry.locked():
            for record in self.registry.records():
                if not _has_expired(record, now):
                    continue
                assert record.certificate is not None
                ended = f"{record.certificate.not_after:%Y-%m-%d %H:%M} UTC"
                entry = HistoryEntry(
                    now,
                    "expired",
                    SYSTEM_OPERATOR,
                    f"证书已于 {ended} 到期",
                    SealStatus.EXPIRED,
                    certificate_serial=_serial(record),
                )
                updated = self.registry.update(record, entry, status=SealStatus.EXPIRED)
                expired.append(updated)
        return expired

    def expiring(self, within_days: int) -> list[Expiring]:
        """Return usable seals whose certificate ends within ``within_days``."""
        now = self._clock()
        found = []
        for record in self.registry.records():
            if record.certificate is None or record.status not in _IN_SERVICE:
                continue
            left = record.certificate.not_after - now
            if left <= timedelta(days=within_days):
                found.append(Expiring(record, max(left.days, 0)))
        return sorted(found, key=lambda item: item.seal.certificate.not_after)  # type: ignore[union-attr]

    # Signing

    def usable_seal(self, authority_code: str) -> SealRecord:
        """Return the authority's active license seal, or raise why none can sign.

        An active seal whose certificate has ended is marked expired first.
        Raises NotFoundError when the authority has no license seal and
        SealUnusableError when its seal is pending, suspended, revoked or
        expired.
        """
        seals = self.registry.find(authority_code, SealType.LICENSE)
        if not seals:
            raise NotFoundError(
                f"颁发机构 {authority_code} 没有证照专用章",
                fix="请运行 elicense seal request 申请印章并导入证书",
            )
        now = self._clock()
        for record in seals:
            if record.status is SealStatus.ACTIVE and _has_expired(record, now):
                self.refresh_expiry()
                record = self.registry.get(record.code)
            if record.status is SealStatus.ACTIVE:
                return record
        raise self._unusable(self.registry.get(seals[0].code))

    def credentials(
        self, record: SealRecord, token: Pkcs11KeyStore | None = None
    ) -> SealCredentials:
        """Load the certificate, chain and signer of ``record``.

        A seal whose key is on a token needs ``token``, an open store.
        """
        if record.key is not None and record.key.store == "pkcs11":
            if token is None:
                raise KeyStoreError(
                    f"印章 {record.code} 的密钥在 PKCS#11 令牌中，未配置令牌",
                    fix=(
                        "请设置 ELICENSE_PKCS11_MODULE、ELICENSE_PKCS11_TOKEN_LABEL"
                        " 和 PIN"
                    ),
                )
            return _credentials(
                self.registry,
                record,
                lambda cert, chain: token_signer(
                    token,
                    record.key,
                    cert,
                    chain,  # type: ignore[arg-type]
                ),
            )
        return file_credentials(self.registry, record, self._passphrase)

    def certificate(self, record: SealRecord) -> x509.Certificate:
        path = self.registry.seal_dir(record.code) / CERTIFICATE_FILE
        return x509.load_pem_x509_certificate(path.read_bytes())

    # Internals

    def _new_key_and_csr(
        self,
        code: str,
        authority: Authority,
        key_store: str,
        algorithm: str,
        file_name: str,
    ) -> tuple[KeyLocation, bytes]:
        if key_store == "file":
            directory = self.registry.seal_dir(code)
            key = new_file_key(directory, file_name, algorithm, self._passphrase)
            return key.location, build_csr(authority, key)
        if self._open_token is None:
            raise KeyStoreError(
                "未配置 PKCS#11 令牌，不能在令牌中生成印章密钥",
                fix="请设置 ELICENSE_PKCS11_MODULE 和 ELICENSE_PKCS11_TOKEN_LABEL，"
                "PIN 放在 ELICENSE_PKCS11_PIN 或 ELICENSE_PKCS11_PIN_FILE 中",
            )
        with self._open_token(True) as store:
            key = new_token_key(store, algorithm, code)
            return key.location, build_csr(authority, key)

    def _put_in_use(
        self,
        record: SealRecord,
        leaf: x509.Certificate,
        path: list[x509.Certificate],
        now: datetime,
        operator: str,
        reason: str,
    ) -> SealRecord:
        assert record.pending is not None
        directory = self.registry.seal_dir(record.code)
        if record.certificate is not None:
            archive = directory / ARCHIVE_DIR
            archive.mkdir(exist_ok=True)
            old = (directory / CERTIFICATE_FILE).read_bytes()
            write_atomically(archive / f"{record.certificate.serial}.pem", old)
        write_atomically(directory / CHAIN_FILE, b"".join(_pem(cert) for cert in path))
        write_atomically(directory / CERTIFICATE_FILE, _pem(leaf))
        key = record.pending.key
        # A renewed file key replaces the old one. NOTE: a replaced token key
        # stays on the token until removed with the token's tools.
        if key.store == "file" and key.path == PENDING_KEY_FILE:
            os.replace(directory / PENDING_KEY_FILE, directory / KEY_FILE)
            key = replace(key, path=KEY_FILE)
        (directory / REQUEST_FILE).unlink(missing_ok=True)
        info = certificate_info(leaf, dev_ca=self._issued_by_dev_ca(leaf))
        status = record.status
        if status in (SealStatus.PENDING, SealStatus.EXPIRED):
            status = SealStatus.ACTIVE
        entry = HistoryEntry(
            now,
            "activated" if record.certificate is None else "renewed",
            operator,
            reason,
            status,
            certificate_serial=info.serial,
            details={"not_after": info.not_after.isoformat(), "issuer": info.issuer},
        )
        return self.registry.update(
            record, entry, key=key, certificate=info, pending=None, status=status
        )

    def _change_status(
        self,
        code: str,
        action: str,
        target: SealStatus,
        allowed_from: set[SealStatus],
        operator: str,
        reason: str,
    ) -> SealRecord:
        now = self._clock()
        with self.registry.locked():
            record = self.registry.get(code)
            if record.status not in allowed_from:
                raise ConflictError(
                    f"印章 {code} 当前状态为{record.status.label}，"
                    f"不能{_ACTION_LABELS[action]}",
                    fix="请用 elicense seal show 查看印章状态和历史",
                )
            entry = HistoryEntry(
                now,
                action,
                operator,
                reason,
                target,
                certificate_serial=_serial(record),
            )
            return self.registry.update(record, entry, status=target)

    def _unusable(self, record: SealRecord) -> SealUnusableError:
        history = self.registry.history(record.code)
        last = history[-1] if history else None
        since = f"{record.status_changed_at:%Y-%m-%d %H:%M} UTC"
        reason_text = f"，原因：{last.reason}" if last and last.reason else ""
        code = record.code
        fixes = {
            SealStatus.PENDING: f"请导入 CA 签发的证书：elicense seal import {code}",
            SealStatus.SUSPENDED: f"请在恢复印章后重试：elicense seal resume {code}",
            SealStatus.REVOKED: (
                "已吊销的印章不能再用，请申请新印章：elicense seal request"
            ),
            SealStatus.EXPIRED: f"请延续印章并导入新证书：elicense seal renew {code}",
        }
        return SealUnusableError(
            f"颁发机构 {record.authority.name} 的{record.seal_type.label} {record.code}"
            f" 自 {since} 起{record.status.label}{reason_text}，不能签发证照",
            fix=fixes.get(record.status, "请用 elicense seal show 查看印章状态"),
        )

    def _dev_chain(self) -> list[x509.Certificate]:
        return [self.pki.certificate("issuing-ca"), self.pki.certificate("root-ca")]

    def _issued_by_dev_ca(self, certificate: x509.Certificate) -> bool:
        issuing_ca = self.pki.certificate("issuing-ca")
        if certificate.issuer != issuing_ca.subject:
            return False
        try:
            certificate.verify_directly_issued_by(issuing_ca)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def file_credentials(
    registry: SealRegistry, record: SealRecord, passphrase: bytes
) -> SealCredentials:
    """Load a seal whose key is in the file key store."""
    if record.key is None or record.key.store != "file":
        raise KeyStoreError(
            f"印章 {record.code} 没有文件密钥"
            f"（{record.key.store if record.key else '无密钥'}）",
            fix="令牌中的印章请通过签发服务使用，并配置 PKCS#11 令牌",
        )
    directory = registry.seal_dir(record.code)
    key = record.key
    return _credentials(
        registry,
        record,
        lambda cert, chain: file_signer(key, directory, passphrase, cert, chain),
    )


def _credentials(
    registry: SealRegistry, record: SealRecord, make_signer
) -> SealCredentials:
    from esign.pki import SealCredentials

    directory = registry.seal_dir(record.code)
    if record.certificate is None:
        raise NotFoundError(
            f"印章 {record.code} 还没有证书",
            fix=f"请导入 CA 签发的证书：elicense seal import {record.code}",
        )
    certificate = to_asn1(
        x509.load_pem_x509_certificate((directory / CERTIFICATE_FILE).read_bytes())
    )
    chain = tuple(
        to_asn1(cert)
        for cert in x509.load_pem_x509_certificates(
            (directory / CHAIN_FILE).read_bytes()
        )
    )
    signer = make_signer(certificate, chain)
    return SealCredentials(record.authority, certificate, chain, signer)


def create_dev_seal(
    pki: DevPki, authority: Authority, passphrase: bytes, now: datetime
) -> SealRecord:
    """Make a license seal with a file key and a development CA certificate."""
    manager = SealManager(pki, passphrase, clock=lambda: now)
    record, _ = manager.request(
        authority, operator="elicense init", reason="开发环境初始化：制作证照专用章"
    )
    return manager.issue_with_dev_ca(
        record.code, operator="elicense init", reason="开发 CA 签发印章证书"
    )


def adopt_legacy_seal(
    pki: DevPki,
    authority: Authority,
    legacy_dir: Path,
    passphrase: bytes,
    now: datetime,
) -> SealRecord:
    """Register a seal made before the registry existed (``seals/USCC/``).

    The folder is renamed to the new seal code; key and certificate stay.
    """
    registry = SealRegistry(pki.pki_dir)
    with registry.locked():
        code = registry.allocate_code(authority.region_code, SealType.LICENSE)
        directory = registry.seal_dir(code)
        os.replace(legacy_dir, directory)
        certificate = x509.load_pem_x509_certificate(
            (directory / CERTIFICATE_FILE).read_bytes()
        )
        chain = [pki.certificate("issuing-ca"), pki.certificate("root-ca")]
        write_atomically(directory / CHAIN_FILE, b"".join(_pem(cert) for cert in chain))
        info = certificate_info(certificate, dev_ca=True)
        record = SealRecord(
            code=code,
            seal_type=SealType.LICENSE,
            authority=authority,
            artwork=default_artwork(authority, SealType.LICENSE, code),
            status=SealStatus.ACTIVE,
            status_changed_at=now,
            created_at=now,
            key=KeyLocation(
                store="file", algorithm=_algorithm_of(certificate), path=KEY_FILE
            ),
            certificate=info,
        )
        entry = HistoryEntry(
            now,
            "adopted",
            "elicense init",
            f"登记已有印章（原目录 {legacy_dir.name}）",
            SealStatus.ACTIVE,
            certificate_serial=info.serial,
        )
        return registry.add(record, entry)


_IN_SERVICE = (SealStatus.ACTIVE, SealStatus.SUSPENDED)

_ACTION_LABELS = {"suspended": "暂停", "resumed": "恢复"}


def _check_key_choice(key_store: str, algorithm: str) -> None:
    if key_store not in KEY_STORES:
        raise InputError(
            f"不支持的密钥存储 {key_store!r}",
            field="key_store",
            value=key_store,
            fix="请选择 file 或 pkcs11",
        )
    if algorithm not in KEY_ALGORITHMS:
        raise InputError(
            f"不支持的密钥算法 {algorithm!r}",
            field="algorithm",
            value=algorithm,
            fix="请选择 " + "、".join(KEY_ALGORITHMS),
        )


def _check_renewable(record: SealRecord) -> None:
    if record.status is SealStatus.REVOKED:
        raise SealUnusableError(
            f"印章 {record.code} 已吊销，不能延续或导入证书",
            fix="请用 elicense seal request 申请新印章",
        )
    if record.key is None:
        raise ConflictError(
            f"印章 {record.code} 尚未启用，不能延续",
            fix=f"请先导入证书：elicense seal import {record.code}",
        )


def _check_revocable(record: SealRecord, moment: datetime, now: datetime) -> None:
    if record.status is SealStatus.REVOKED:
        raise ConflictError(
            f"印章 {record.code} 已于"
            f" {record.status_changed_at:%Y-%m-%d %H:%M} UTC 吊销",
            fix="无需再次吊销",
        )
    if moment > now:
        raise InputError(
            f"吊销时间 {moment.isoformat()} 晚于当前时间",
            field="revoked_at",
            value=moment.isoformat(),
            fix="吊销时间不能是将来的时间；不填则为当前时间",
        )
    if record.certificate is not None and moment < record.certificate.not_before:
        raise InputError(
            f"吊销时间 {moment.isoformat()} 早于证书生效时间"
            f" {record.certificate.not_before.isoformat()}",
            field="revoked_at",
            value=moment.isoformat(),
            fix="请填写证书有效期内的时间",
        )


def _has_expired(record: SealRecord, now: datetime) -> bool:
    return (
        record.certificate is not None
        and record.status in _IN_SERVICE
        and now >= record.certificate.not_after
    )


def _serial(record: SealRecord) -> str | None:
    return record.certificate.serial if record.certificate else None


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _algorithm_of(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    return "ec-p256"
