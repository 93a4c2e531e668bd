"""Seal registry: the seals of the issuing authorities, their state and history.

Each seal lives in its own folder under ``DATA_DIR/pki/seals/CODE/``::

    seal.json       current record (replaced atomically on every change)
    history.jsonl   one JSON line per change, only ever appended
    seal.pem        the certificate in use, chain.pem its CA certificates
    seal.key.p8     the key, when it is kept in the file key store
    seal.svg        the seal artwork
    request.csr     the open certificate signing request, if any

A seal code has 13 digits: the GB/T 2260 region code of the authority (6),
the seal type (2), a sequence number within region and type (4) and an
ISO/IEC 7064 MOD 11,10 check digit. It stays the same across renewals.
"""

from __future__ import annotations

import enum
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.authority import AdminLevel, Authority
from common.errors import ConflictError, InputError, NotFoundError, StorageError
from esign.revocation import write_atomically
from esign.seal_artwork import VectorSeal

logger = logging.getLogger(__name__)

RECORD_FILE = "seal.json"
HISTORY_FILE = "history.jsonl"
CERTIFICATE_FILE = "seal.pem"
CHAIN_FILE = "chain.pem"
KEY_FILE = "seal.key.p8"
ARTWORK_FILE = "seal.svg"
REQUEST_FILE = "request.csr"
FORMAT_VERSION = 1
SEAL_CODE_LENGTH = 13


class SealType(enum.StrEnum):
    """Kind of seal; the value is stored, the label is printed."""

    OFFICIAL = "official"  # 公章
    LICENSE = "license"  # 证照专用章

    @property
    def label(self) -> str:
        return {SealType.OFFICIAL: "公章", SealType.LICENSE: "证照专用章"}[self]

    @property
    def code_digits(self) -> str:
        return {SealType.OFFICIAL: "01", SealType.LICENSE: "05"}[self]


class SealStatus(enum.StrEnum):
    """State of a seal. Only an active seal may sign."""

    PENDING = "pending"  # requested, no certificate imported yet
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    SealStatus.PENDING: "待激活",
    SealStatus.ACTIVE: "启用",
    SealStatus.SUSPENDED: "暂停",
    SealStatus.REVOKED: "已吊销",
    SealStatus.EXPIRED: "已过期",
}


class SealUnusableError(ConflictError):
    """The seal exists but its status forbids signing."""


@dataclass(frozen=True)
class KeyLocation:
    """Location of a seal key: ``file`` (relative path) or ``pkcs11`` (labels)."""

    store: str  # "file" or "pkcs11"
    algorithm: str  # "ec-p256", "rsa-2048" or "rsa-3072"
    path: str | None = None
    token_label: str | None = None
    key_label: str | None = None
    key_id: str | None = None  # hex


@dataclass(frozen=True)
class CertificateInfo:
    """Facts of the certificate in use, copied from it at import."""

    serial: str  # hex
    sha256: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    dev_ca: bool  # issued by this data directory's development CA


@dataclass(frozen=True)
class PendingRequest:
    """An open certificate signing request for a new or renewed key."""

    key: KeyLocation
    requested_at: datetime


@dataclass(frozen=True)
class SealRecord:
    """One seal: owner, code, type, artwork, key, certificate and status."""

    code: str
    seal_type: SealType
    authority: Authority
    artwork: VectorSeal
    status: SealStatus
    status_changed_at: datetime
    created_at: datetime
    key: KeyLocation | None = None
    certificate: CertificateInfo | None = None
    pending: PendingRequest | None = None

    @property
    def level(self) -> AdminLevel:
        return self.authority.level


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a seal: action, time, operator, reason and new status."""

    at: datetime
    action: str
    operator: str
    reason: str
    status: SealStatus
    certificate_serial: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class SealRegistry:
    """The seals stored under ``DATA_DIR/pki/seals``.

    Changes take an exclusive lock on the folder, so two processes cannot
    interleave their updates of one seal.
    """

    def __init__(self, pki_dir: Path) -> None:
        self.root = pki_dir / "seals"

    def __repr__(self) -> str:
        return f"SealRegistry(root={str(self.root)!r})"

    def seal_dir(self, code: str) -> Path:
        return self.root / code

    # Reading

    def codes(self) -> list[str]:
        return sorted(path.parent.name for path in self.root.glob(f"*/{RECORD_FILE}"))

    def records(self) -> list[SealRecord]:
        return [self.get(code) for code in self.codes()]

    def get(self, code: str) -> SealRecord:
        """Return the seal ``code``, or raise NotFoundError when none is stored.

        The file is read on every call, but it is parsed again only when its
        bytes changed, because issuing checks the seals of an authority for
        every license and parsing the records cost more than reading them.
        """
        path = self.seal_dir(code) / RECORD_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"印章 {code} 不存在",
                fix="请用 elicense seal list 查看已登记的印章编码",
            ) from None
        cached = _PARSED_RECORDS.get(path)
        if cached is not None and cached[0] == data:
            return cached[1]
        try:
            record = _record_from_json(json.loads(data.decode("utf-8")))
        except (KeyError, TypeError, ValueError) as error:
            raise StorageError(
                f"印章记录 {path} 已损坏：{error!r}",
                fix="请从备份恢复该文件，历史见同目录的 history.jsonl",
            ) from error
        _PARSED_RECORDS[path] = (data, record)
        return record

    def find(
        self, authority_code: str, seal_type: SealType = SealType.LICENSE
    ) -> list[SealRecord]:
        """Return the seals of one authority and type, newest first."""
        seals = [
            seal
            for seal in self.records()
            if seal.authority.code == authority_code and seal.seal_type is seal_type
        ]
        return sorted(seals, key=lambda seal: seal.created_at, reverse=True)

    def history(self, code: str) -> list[HistoryEntry]:
        """Return every recorded change of seal ``code``, oldest first."""
        self.get(code)
        path = self.seal_dir(code) / HISTORY_FILE
        if not path.exists():
            return []
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            try:
                entries.append(_entry_from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError):
                # A crash during an append can leave a partial last line.
                logger.warning(
                    "skipped damaged history line %d of seal %s", number, code
                )
        return entries

    # Changing

    def allocate_code(self, region_code: str, seal_type: SealType) -> str:
        """Return the next free seal code; call it while holding :meth:`locked`."""
        prefix = region_code + seal_type.code_digits
        used = [int(code[8:12]) for code in self.codes() if code.startswith(prefix)]
        sequence = max(used, default=0) + 1
        if sequence > 9999:
            raise ConflictError(
                f"区划 {region_code} 的{seal_type.label}编码已用完",
                fix="请联系系统管理员扩展印章编码规则",
            )
        body = f"{prefix}{sequence:04d}"
        return body + str(check_digit(body))

    def add(self, record: SealRecord, entry: HistoryEntry) -> SealRecord:
        """Store a new seal and its first history entry, and export its artwork.

        Call it while holding :meth:`locked`, with a code from
        :meth:`allocate_code`. Raises ConflictError when the code is taken.
        """
        directory = self.seal_dir(record.code)
        if (directory / RECORD_FILE).exists():
            raise ConflictError(
                f"印章编码 {record.code} 已被占用", fix="请重试，系统会分配下一个编码"
            )
        directory.mkdir(parents=True, exist_ok=True)
        svg = record.artwork.to_svg().encode("utf-8")
        write_atomically(directory / ARTWORK_FILE, svg)
        self._save(record, entry)
        logger.info(
            "registered seal %s authority=%s type=%s",
            record.code,
            record.authority.code,
            record.seal_type,
        )
        return record

    def update(
        self, record: SealRecord, entry: HistoryEntry, **changes: Any
    ) -> SealRecord:
        """Store ``record`` with ``changes`` applied and append ``entry``.

        The caller must hold :meth:`locked` and have read ``record`` inside it.
        """
        updated = replace(record, **changes)
        if updated.status is not record.status:
            updated = replace(updated, status_changed_at=entry.at)
        self._save(updated, entry)
        logger.info(
            "seal %s %s status=%s operator=%s",
            record.code,
            entry.action,
            updated.status,
            entry.operator,
        )
        return updated

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's exclusive lock: a ``flock`` on ``seals/.lock``.

        The lock is re-entrant within one thread, so an operation may call
        another that also locks.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        folder_lock = _folder_lock(self.root.resolve())
        with folder_lock.held():
            yield

    def _save(self, record: SealRecord, entry: HistoryEntry) -> None:
        # NOTE: the history line is written before the record. A crash between
        # the two leaves a history entry for a change the record does not show.
        directory = self.seal_dir(record.code)
        _append_line(directory / HISTORY_FILE, _entry_to_json(entry))
        text = json.dumps(_record_to_json(record), ensure_ascii=False, indent=1)
        write_atomically(directory / RECORD_FILE, text.encode("utf-8"))


class _FolderLock:
    """A ``flock`` shared by the threads of this process, re-entrant per thread."""

    def __init__(self, root: Path) -> None:
        self._path = root / ".lock"
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._handle: Any = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._handle = open(self._path, "a+b")  # noqa: SIM115
                fcntl.flock(self._handle, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._handle, fcntl.LOCK_UN)
                    self._handle.close()


# The last parsed record of each seal.json path, with the bytes it was parsed
# from. Records are frozen, so callers may share them.
_PARSED_RECORDS: dict[Path, tuple[bytes, SealRecord]] = {}

_FOLDER_LOCKS: dict[Path, _FolderLock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


def _folder_lock(root: Path) -> _FolderLock:
    with _FOLDER_LOCKS_GUARD:
        if root not in _FOLDER_LOCKS:
            _FOLDER_LOCKS[root] = _FolderLock(root)
        return _FOLDER_LOCKS[root]


def default_artwork(authority: Authority, seal_type: SealType, code: str) -> VectorSeal:
    """Build the standard artwork: the authority name, in Inner Mongolia with
    its Mongolian form on the outer ring, the seal type and the seal code."""
    from templates.mongolian import authority_name_mn

    mongolian = (
        authority_name_mn(authority.name) if authority.is_inner_mongolia else None
    )
    return VectorSeal(authority.name, mongolian, seal_type.label, code)


def check_digit(digits: str) -> int:
    """Return the ISO/IEC 7064 MOD 11,10 check digit of a digit string."""
    product = 10
    for character in digits:
        total = (product + int(character)) % 10 or 10
        product = (total * 2) % 11
    return (11 - product) % 10


def validate_seal_code(code: str) -> str:
    """Return ``code`` stripped, or raise InputError when it is malformed."""
    text = code.strip()
    if len(text) != SEAL_CODE_LENGTH or not text.isascii() or not text.isdigit():
        raise InputError(
            f"印章编码应为 {SEAL_CODE_LENGTH} 位数字，收到 {text!r}",
            field="seal_code",
            value=code,
            fix="请用 elicense seal list 查看印章编码",
        )
    if check_digit(text[:-1]) != int(text[-1]):
        raise InputError(
            f"印章编码 {text} 的校验位不正确",
            field="seal_code",
            value=code,
            fix="请核对编码是否抄错",
        )
    return text


def _append_line(path: Path, data: dict[str, Any]) -> None:
    line = (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(descriptor, line)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# JSON form


def _record_to_json(record: SealRecord) -> dict[str, Any]:
    authority = record.authority
    return {
        "format": FORMAT_VERSION,
        "code": record.code,
        "type": record.seal_type.value,
        "authority": {
            "code": authority.code,
            "name": authority.name,
            "region_code": authority.region_code,
            "level": authority.level.value,
            "department": authority.department,
        },
        "artwork": asdict(record.artwork),
        "status": record.status.value,
        "status_changed_at": record.status_changed_at.isoformat(),
        "created_at": record.created_at.isoformat(),
        "key": asdict(record.key) if record.key else None,
        "certificate": _certificate_to_json(record.certificate),
        "pending": _pending_to_json(record.pending),
    }


def _certificate_to_json(info: CertificateInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    data = asdict(info)
    data["not_before"] = info.not_before.isoformat()
    data["not_after"] = info.not_after.isoformat()
    return data


def _pending_to_json(pending: PendingRequest | None) -> dict[str, Any] | None:
    if pending is None:
        return None
    return {
        "key": asdict(pending.key),
        "requested_at": pending.requested_at.isoformat(),
    }


def _record_from_json(data: dict[str, Any]) -> SealRecord:
    authority = data["authority"]
    certificate = data.get("certificate")
    pending = data.get("pending")
    return SealRecord(
        code=data["code"],
        seal_type=SealType(data["type"]),
        authority=Authority(
            code=authority["code"],
            name=authority["name"],
            region_code=authority["region_code"],
            department=authority["department"],
        ),
        artwork=VectorSeal(**data["artwork"]),
        status=SealStatus(data["status"]),
        status_changed_at=_moment(data["status_changed_at"]),
        created_at=_moment(data["created_at"]),
        key=KeyLocation(**data["key"]) if data.get("key") else None,
        certificate=_certificate_from_json(certificate) if certificate else None,
        pending=(
            PendingRequest(
                KeyLocation(**pending["key"]), _moment(pending["requested_at"])
            )
            if pending
            else None
        ),
    )


def _certificate_from_json(data: dict[str, Any]) -> CertificateInfo:
    return CertificateInfo(
        **{
            **data,
            "not_before": _moment(data["not_before"]),
            "not_after": _moment(data["not_after"]),
        }
    )


def _entry_to_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "action": entry.action,
        "operator": entry.operator,
        "reason": entry.reason,
        "status": entry.status.value,
        "certificate_serial": entry.certificate_serial,
        "details": entry.details,
    }


def _entry_from_json(data: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=_moment(data["at"]),
        action=data["action"],
        operator=data["operator"],
        reason=data["reason"],
        status=SealStatus(data["status"]),
        certificate_serial=data.get("certificate_serial"),
        details=data.get("details") or {},
    )


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
