"""The trust list: recognised CAs and what each may sign for (CA证书互认).

A trust list entry names a CA, its jurisdiction, the license types and
issuing authorities it may sign for, its certificates, the certificates of
the QR token signers it vouches for, and a status history. The list is a
JSON document so that deployments can exchange it; ``verifier.trust_exchange``
signs and checks the exchanged form.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from asn1crypto import crl, pem, x509

from common.errors import InputError, TrustError

logger = logging.getLogger(__name__)

TRUST_LIST_FILE = "trust-list.json"
ANY = "*"


@dataclass(frozen=True)
class StatusChange:
    """One entry of a CA's status history."""

    status: str  # "recognised" or "withdrawn"
    since: datetime
    reason: str = ""


@dataclass(frozen=True)
class RecognisedCA:
    """One CA of the trust list."""

    id: str
    name: str
    region: str
    department: str
    certificates: tuple[x509.Certificate, ...]
    token_signers: tuple[x509.Certificate, ...] = ()
    license_types: tuple[str, ...] = (ANY,)
    issuer_codes: tuple[str, ...] = (ANY,)
    history: tuple[StatusChange, ...] = ()
    # SHA-256 (hex) of the other deployment's root when imported, else None.
    imported_from: str | None = None

    @property
    def fingerprints(self) -> frozenset[bytes]:
        return frozenset(cert.sha256 for cert in self.certificates)

    def status_at(self, moment: datetime) -> StatusChange | None:
        """Return the status in force at ``moment`` (None before recognition)."""
        current = None
        for change in sorted(self.history, key=lambda change: change.since):
            if change.since <= moment:
                current = change
        return current

    def allows(self, license_type: str | None, issuer_code: str | None) -> bool:
        type_ok = ANY in self.license_types or license_type in self.license_types
        issuer_ok = ANY in self.issuer_codes or any(
            issuer_code is not None and issuer_code.startswith(prefix)
            for prefix in self.issuer_codes
        )
        return type_ok and issuer_ok


@dataclass
class TrustList:
    """All recognised CAs, plus locally known CRLs of those CAs."""

    cas: list[RecognisedCA] = field(default_factory=list)
    crls: list[crl.CertificateList] = field(default_factory=list)
    # Issue time of the last signed list imported per anchor (SHA-256 hex),
    # so that an older list cannot be replayed over a newer one.
    imports: dict[str, str] = field(default_factory=dict)
    # Folder of the local CAs' CRLs, re-read when a file changes, so that a
    # running service applies a seal revocation made after it started.
    crl_dir: Path | None = None
    _crl_stamp: tuple[tuple[str, int, int], ...] = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as JSON and DER, not as asn1crypto objects: certificates
        # that pyhanko had already walked unpickled into broken objects in
        # the verification worker ("argument of type 'NoneType' ...").
        crls = [crl_object.dump() for crl_object in self.crls]
        return (_trust_list_from_state, (self.to_json(), crls))

    # Certificates for pyhanko's validation context.
    def anchor_certificates(self) -> list[x509.Certificate]:
        return [cert for ca in self.cas for cert in ca.certificates if cert.self_issued]

    def intermediate_certificates(self) -> list[x509.Certificate]:
        return [
            cert for ca in self.cas for cert in ca.certificates if not cert.self_issued
        ]

    def token_certificates(self) -> list[x509.Certificate]:
        return [cert for ca in self.cas for cert in ca.token_signers]

    def current_crls(self) -> list[crl.CertificateList]:
        if self.crl_dir is not None:
            self._reload_crls_if_changed()
        return list(self.crls)

    def _reload_crls_if_changed(self) -> None:
        assert self.crl_dir is not None
        paths = sorted(self.crl_dir.glob("*.crl"))
        stamp = tuple(
            (path.name, path.stat().st_mtime_ns, path.stat().st_size) for path in paths
        )
        if stamp != self._crl_stamp:
            self.crls = [_load_crl(path) for path in paths]
            self._crl_stamp = stamp

    def ca_of_path(self, path: Iterable[x509.Certificate] | None) -> RecognisedCA | None:
        """Return the entry whose certificates appear in a validation path."""
        if path is None:
            return None
        fingerprints = {cert.sha256 for cert in path}
        for ca in self.cas:
            if ca.fingerprints & fingerprints:
                return ca
        return None

    def ca_for_certificate(self, cert: x509.Certificate) -> RecognisedCA | None:
        for ca in self.cas:
            if cert.sha256 in ca.fingerprints:
                return ca
            if any(cert.sha256 == signer.sha256 for signer in ca.token_signers):
                return ca
        return None

    def ca_name_for(self, path: Iterable[x509.Certificate] | None) -> str:
        ca = self.ca_of_path(path)
        return ca.name if ca else "未知"

    def withdrawal_before(
        self, path: Iterable[x509.Certificate] | None, moment: datetime
    ) -> str | None:
        """Explain why the CA was not recognised at ``moment``, or return None."""
        ca = self.ca_of_path(path)
        if ca is None:
            return "签名证书所属 CA 不在信任列表中"
        status = ca.status_at(moment)
        if status is None:
            return f"签名时间 {moment:%Y-%m-%d %H:%M} 时 CA「{ca.name}」尚未被互认"
        if status.status != "recognised":
            return (
                f"CA「{ca.name}」已于 {status.since:%Y-%m-%d %H:%M} 撤销互认"
                f"（{status.reason or '未说明原因'}），签名时间晚于撤销时间"
            )
        return None

    def scope_refusal(
        self,
        path: Iterable[x509.Certificate] | None,
        license_type: str | None,
        issuer_code: str | None,
    ) -> str | None:
        """Explain why the CA may not sign this license, or return None."""
        ca = self.ca_of_path(path)
        if ca is None:
            return "签名证书所属 CA 不在信任列表中"
        if ca.allows(license_type, issuer_code):
            return None
        return (
            f"CA「{ca.name}」已被互认，但未被授权为证照类型 {license_type} "
            f"或颁发机构 {issuer_code} 签发印章证书"
        )

    # Serialisation
    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "cas": [_ca_to_json(ca) for ca in self.cas],
            "imports": dict(self.imports),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "信任列表") -> TrustList:
        try:
            cas = [_ca_from_json(entry) for entry in data["cas"]]
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                f"{source} 格式错误：{error!r}",
                fix="请使用 elicense trust export 导出的信任列表",
            ) from error
        imports = data.get("imports", {})
        if not isinstance(imports, dict):
            raise InputError(f"{source} 格式错误：imports 不是对象")
        return cls(cas=cas, imports={str(k): str(v) for k, v in imports.items()})

    def save(self, trust_dir: Path) -> Path:
        path = trust_dir / TRUST_LIST_FILE
        text = json.dumps(self.to_json(), ensure_ascii=False, indent=1)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, trust_dir: Path, crl_dir: Path | None = None) -> TrustList:
        path = trust_dir / TRUST_LIST_FILE
        if not path.exists():
            raise TrustError(
                f"信任列表 {path} 不存在", fix="请先运行 elicense init 创建数据目录"
            )
        trust = cls.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        if crl_dir is not None and crl_dir.is_dir():
            trust.crl_dir = crl_dir
            trust.current_crls()
        return trust

    def add_or_replace(self, ca: RecognisedCA) -> None:
        self.cas = [existing for existing in self.cas if existing.id != ca.id] + [ca]

    def get(self, ca_id: str) -> RecognisedCA:
        for ca in self.cas:
            if ca.id == ca_id:
                return ca
        known = "、".join(ca.id for ca in self.cas)
        raise InputError(
            f"信任列表中没有 CA {ca_id}",
            field="ca_id",
            value=ca_id,
            fix=f"请使用 elicense trust list 列出的编号之一：{known}",
        )

    def replace(self, ca: RecognisedCA) -> None:
        """Replace the entry with the same id, keeping its position."""
        self.cas = [ca if existing.id == ca.id else existing for existing in self.cas]


def _trust_list_from_state(data: dict[str, Any], crls: list[bytes]) -> TrustList:
    trust = TrustList.from_json(data)
    trust.crls = [crl.CertificateList.load(der) for der in crls]
    return trust


def _load_crl(path: Path) -> crl.CertificateList:
    data = path.read_bytes()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return crl.CertificateList.load(data)


def certificate_to_pem(cert: x509.Certificate) -> str:
    return pem.armor("CERTIFICATE", cert.dump()).decode("ascii")


def certificates_from_pem(text: str) -> list[x509.Certificate]:
    return [
        x509.Certificate.load(der)
        for _, _, der in pem.unarmor(text.encode("ascii"), multiple=True)
    ]


def _ca_to_json(ca: RecognisedCA) -> dict[str, Any]:
    return {
        "id": ca.id,
        "name": ca.name,
        "jurisdiction": {"region": ca.region, "department": ca.department},
        "license_types": list(ca.license_types),
        "issuer_codes": list(ca.issuer_codes),
        "certificates": [certificate_to_pem(cert) for cert in ca.certificates],
        "token_signers": [certificate_to_pem(cert) for cert in ca.token_signers],
        "history": [
            {"status": change.status, "since": change.since.isoformat(), "reason": change.reason}
            for change in ca.history
        ],
        "imported_from": ca.imported_from,
    }


def _ca_from_json(entry: dict[str, Any]) -> RecognisedCA:
    certificates = tuple(
        cert for text in entry["certificates"] for cert in certificates_from_pem(text)
    )
    if not certificates:
        raise ValueError(f"CA {entry['id']} 没有证书")
    return RecognisedCA(
        id=entry["id"],
        name=entry["name"],
        region=entry["jurisdiction"]["region"],
        department=entry["jurisdiction"].get("department", ""),
        certificates=certificates,
        token_signers=tuple(
            cert
            for text in entry.get("token_signers", [])
            for cert in certificates_from_pem(text)
        ),
        license_types=tuple(entry.get("license_types", [ANY])),
        issuer_codes=tuple(entry.get("issuer_codes", [ANY])),
        history=tuple(
            StatusChange(
                change["status"],
                _aware(datetime.fromisoformat(change["since"])),
                change.get("reason", ""),
            )
            for change in entry.get("history", [])
        ),
        imported_from=entry.get("imported_from"),
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
